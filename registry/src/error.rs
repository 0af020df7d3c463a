//! Errors of the registry library.

use pra_proto::api::ApiErrorCode;

/// Everything that can go wrong in the registry, with its stable API code.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Input failed validation; `field` names what is wrong.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which field (e.g. `local port`, `public key`).
        field: &'static str,
        /// Why.
        reason: String,
        /// Stable code (invalid_field, invalid_public_key, weak_key …).
        code: ApiErrorCode,
    },
    /// Already exists or belongs to someone else.
    #[error("{0}")]
    Conflict(String),
    /// No such record.
    #[error("{0}")]
    NotFound(String),
    /// A per-account limit is reached (e.g. pending keys); nothing was stored.
    #[error("{0}")]
    TooManyPending(String),
    /// The database cannot be opened, is damaged, or a query failed.
    #[error("database error: {0}")]
    Database(String),
    /// The SSH gateway's host key cannot be read, created or used.
    #[error("gateway host key {path}: {reason}")]
    HostKey {
        /// The key file.
        path: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The SSH gateway cannot keep serving (its listener failed).
    #[error("ssh gateway: {0}")]
    Gateway(String),
}

impl RegistryError {
    /// Stable code for API answers.
    pub fn code(&self) -> ApiErrorCode {
        match self {
            RegistryError::Invalid { code, .. } => *code,
            RegistryError::Conflict(_) => ApiErrorCode::Conflict,
            RegistryError::NotFound(_) => ApiErrorCode::NotFound,
            RegistryError::TooManyPending(_) => ApiErrorCode::TooManyPending,
            RegistryError::Database(_)
            | RegistryError::HostKey { .. }
            | RegistryError::Gateway(_) => ApiErrorCode::Internal,
        }
    }

    /// Shorthand for an invalid field.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        RegistryError::Invalid {
            field,
            reason: reason.into(),
            code: ApiErrorCode::InvalidField,
        }
    }
}
