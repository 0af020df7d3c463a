//! `pra connect` (issue 5).
use crate::error::{ClientError, ClientResult};
use crate::home::Home;
use pra_proto::codes::Code;
use std::process::ExitCode;

/// `pra connect`.
pub fn run(_home: &Home, _json: bool) -> ClientResult<ExitCode> {
    Err(ClientError::new(Code::RulesNotFetched, "not built yet"))
}
