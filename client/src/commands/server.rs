//! `pra server set|show` (issue 4).
use crate::error::{ClientError, ClientResult};
use crate::home::Home;
use pra_proto::codes::Code;
use std::process::ExitCode;

/// `pra server set`.
pub fn set(_home: &Home, _address: &str, _host_key: Option<&str>) -> ClientResult<ExitCode> {
    Err(ClientError::new(Code::ConfigInvalid, "not built yet"))
}
/// `pra server show`.
pub fn show(_home: &Home) -> ClientResult<ExitCode> {
    Err(ClientError::new(Code::ConfigInvalid, "not built yet"))
}
