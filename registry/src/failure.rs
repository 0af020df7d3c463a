//! [`Failure`]: every admin command's failure is one line, `ERR(103xx)
//! what happened: what to do`, and a non-zero exit status.

use crate::error::RegistryError;
use pra_proto::codes::Code;
use pra_proto::sanitize::sanitize;

/// A failure of a command: one line with its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Stable code.
    pub code: Code,
    /// What happened.
    pub what: String,
    /// What to do.
    pub fix: String,
}

impl Failure {
    /// A failure with a specific fix.
    pub fn new(code: Code, what: impl Into<String>, fix: impl Into<String>) -> Failure {
        Failure {
            code,
            what: what.into(),
            fix: fix.into(),
        }
    }

    /// The one line shown.
    pub fn line(&self) -> String {
        pra_proto::codes::line(self.code, &self.what, &self.fix)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line())
    }
}

impl std::error::Error for Failure {}

impl From<RegistryError> for Failure {
    fn from(e: RegistryError) -> Failure {
        let code = match &e {
            RegistryError::Invalid { .. } => Code::RegistryInvalid,
            RegistryError::Conflict(_) | RegistryError::TooManyPending(_) => Code::RegistryConflict,
            RegistryError::NotFound(_) => Code::RegistryNotFound,
            RegistryError::Database(_) | RegistryError::HostKey { .. } => Code::RegistryDatabase,
            RegistryError::Gateway(_) => Code::RegistryListen,
        };
        Failure::new(code, sanitize(&e.to_string(), 600), code.fix())
    }
}

impl From<crate::serve::BindError> for Failure {
    fn from(e: crate::serve::BindError) -> Failure {
        Failure::new(
            Code::RegistryListen,
            e.to_string(),
            Code::RegistryListen.fix(),
        )
    }
}

pub(crate) fn io_failure(what: String) -> Failure {
    Failure::new(
        Code::RegistryInvalid,
        what,
        "check the file name and its permissions",
    )
}

/// The output could not be written (a closed pipe, a full disk).
pub(crate) fn output_failure(e: &std::io::Error) -> Failure {
    Failure::new(
        Code::RegistryInvalid,
        format!("cannot write the output: {e}"),
        "check where the output goes",
    )
}
