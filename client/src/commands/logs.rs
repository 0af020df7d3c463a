//! `pra logs export` (issue 5).
use crate::error::{ClientError, ClientResult};
use crate::home::Home;
use pra_proto::codes::Code;
use std::path::Path;
use std::process::ExitCode;

/// `pra logs export`.
pub fn export(_home: &Home, _file: Option<&Path>) -> ClientResult<ExitCode> {
    Err(ClientError::new(Code::LogExportFailed, "not built yet"))
}
