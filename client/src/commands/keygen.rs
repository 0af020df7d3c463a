//! `pra keygen` (issue 4).
use crate::error::{ClientError, ClientResult};
use crate::home::Home;
use pra_proto::codes::Code;
use std::process::ExitCode;

/// `pra keygen`.
pub fn run(_home: &Home, _user: &str, _force: bool) -> ClientResult<ExitCode> {
    Err(ClientError::new(Code::KeyMissing, "not built yet"))
}
