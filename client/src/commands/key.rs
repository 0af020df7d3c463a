//! `pra key show|export|submit` (issue 4).
use crate::error::{ClientError, ClientResult};
use crate::home::Home;
use pra_proto::codes::Code;
use std::path::Path;
use std::process::ExitCode;

/// `pra key show`.
pub fn show(_home: &Home) -> ClientResult<ExitCode> {
    Err(ClientError::new(Code::KeyMissing, "not built yet"))
}
/// `pra key export`.
pub fn export(_home: &Home, _file: Option<&Path>) -> ClientResult<ExitCode> {
    Err(ClientError::new(Code::KeyMissing, "not built yet"))
}
/// `pra key submit`.
pub fn submit(_home: &Home, _registry: &str) -> ClientResult<ExitCode> {
    Err(ClientError::new(Code::KeyMissing, "not built yet"))
}
