//! Errors of the client library. Every variant maps to a stable [`Code`]
//! and knows the fix to tell the user, so the CLI and the GUI print the same
//! one line: `ERR(10193) what happened: what to do`.

use pra_proto::codes::Code;

/// A failure the user can meet, with its code and fix.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A failure that has a code, a description and a fix.
    #[error("{what}")]
    Coded {
        /// Stable code the helpdesk looks up.
        code: Code,
        /// What happened (specific: names the file, port, address …).
        what: String,
        /// What to do about it.
        fix: String,
    },
}

impl ClientError {
    /// A failure with the code's own generic fix.
    pub fn new(code: Code, what: impl Into<String>) -> Self {
        ClientError::Coded {
            code,
            what: what.into(),
            fix: code.fix().to_string(),
        }
    }

    /// A failure with a specific fix.
    pub fn with_fix(code: Code, what: impl Into<String>, fix: impl Into<String>) -> Self {
        ClientError::Coded {
            code,
            what: what.into(),
            fix: fix.into(),
        }
    }

    /// The stable code.
    pub fn code(&self) -> Code {
        match self {
            ClientError::Coded { code, .. } => *code,
        }
    }

    /// What to do.
    pub fn fix(&self) -> &str {
        match self {
            ClientError::Coded { fix, .. } => fix,
        }
    }

    /// The one line shown to the user.
    pub fn line(&self) -> String {
        pra_proto::codes::line(self.code(), &self.to_string(), self.fix())
    }
}

/// Result of client operations.
pub type ClientResult<T> = Result<T, ClientError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_has_code_cause_and_fix() {
        let e = ClientError::with_fix(
            Code::PortBusy,
            "local port 10025 is in use",
            "close the other program",
        );
        assert_eq!(
            e.line(),
            "WAR(10102) local port 10025 is in use: close the other program"
        );
        assert_eq!(
            ClientError::new(Code::KeyMissing, "no key").fix(),
            Code::KeyMissing.fix()
        );
    }
}
