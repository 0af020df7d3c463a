//! JSON bodies of the registry HTTP API (`/api/v1/…`).
//!
//! Errors are always `{"code": "...", "message": "..."}` with a stable
//! [`ApiErrorCode`] so that the CLI and GUI can tell "pending" from "revoked"
//! without reading prose.

use serde::{Deserialize, Serialize};

/// Status of a registered key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    /// Submitted, waiting for an admin.
    Pending,
    /// May log in.
    Approved,
    /// Refused for good.
    Revoked,
}

impl KeyStatus {
    /// Lower-case spelling used in the CLI, the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Pending => "pending",
            KeyStatus::Approved => "approved",
            KeyStatus::Revoked => "revoked",
        }
    }

    /// Parse the lower-case spelling.
    pub fn parse(s: &str) -> Option<KeyStatus> {
        match s {
            "pending" => Some(KeyStatus::Pending),
            "approved" => Some(KeyStatus::Approved),
            "revoked" => Some(KeyStatus::Revoked),
            _ => None,
        }
    }
}

impl std::fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a client tells the registry about the PC a key was made on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// Computer (host) name.
    pub computer: String,
    /// OS user name on that computer.
    #[serde(default)]
    pub os_user: String,
    /// Human description: OS, board/product, CPU.
    #[serde(default)]
    pub description: String,
    /// Stable tag derived from the hardware identity (not the binding secret):
    /// two keys with the same tag were made on the same (or a cloned) PC.
    #[serde(default)]
    pub tag: String,
}

/// `POST /api/v1/keys`: an employee submits a public key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySubmission {
    /// Account name the key is for.
    pub user: String,
    /// One OpenSSH public-key line.
    pub public_key: String,
    /// The PC the key was made on.
    pub device: Device,
    /// Proof that the submitter holds the private key (see [`crate::proof`]).
    pub proof: crate::proof::Proof,
}

/// `POST /api/v1/keys/status`: the holder of a key asks for its status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyStatusQuery {
    /// Account name the key is for.
    pub user: String,
    /// One OpenSSH public-key line.
    pub public_key: String,
    /// Proof that the asker holds the private key.
    pub proof: crate::proof::Proof,
}

/// Answer to a submission or a status query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyStatusReply {
    /// `SHA256:` fingerprint.
    pub fingerprint: String,
    /// Account the key belongs to.
    pub user: String,
    /// Current status.
    pub status: KeyStatus,
}

/// `GET /api/v1/health`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Always `"ok"` when the registry answers.
    pub status: String,
    /// Program version.
    pub version: String,
}

/// Stable error codes of the HTTP API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiErrorCode {
    /// The body is not valid JSON or misses fields.
    BadJson,
    /// The public key cannot be parsed or is not acceptable.
    InvalidPublicKey,
    /// A private key was sent; it was not stored.
    PrivateKeyRefused,
    /// The key is too weak (RSA < 3072 bits, DSA).
    WeakKey,
    /// The proof of possession is missing, stale or does not verify.
    InvalidProof,
    /// A field (user, host, port, comment …) is not valid.
    InvalidField,
    /// The key is registered to another user, or the name is taken.
    Conflict,
    /// No such user, key or rule.
    NotFound,
    /// No or malformed `Authorization: Bearer` header.
    Unauthorized,
    /// The token is not valid.
    Forbidden,
    /// The body is larger than allowed.
    PayloadTooLarge,
    /// Too many requests from this source.
    RateLimited,
    /// The request (headers or body) was not received in time.
    RequestTimeout,
    /// The registry failed internally; nothing was changed.
    Internal,
    /// The account already has as many pending keys as allowed; an admin
    /// must approve or revoke some first.
    TooManyPending,
    /// The status of a key submitted for an account that does not exist
    /// (told only to the holder of that key).
    NoSuchAccount,
}

impl ApiErrorCode {
    /// The snake_case spelling on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiErrorCode::BadJson => "bad_json",
            ApiErrorCode::InvalidPublicKey => "invalid_public_key",
            ApiErrorCode::PrivateKeyRefused => "private_key_refused",
            ApiErrorCode::WeakKey => "weak_key",
            ApiErrorCode::InvalidProof => "invalid_proof",
            ApiErrorCode::InvalidField => "invalid_field",
            ApiErrorCode::Conflict => "conflict",
            ApiErrorCode::NotFound => "not_found",
            ApiErrorCode::Unauthorized => "unauthorized",
            ApiErrorCode::Forbidden => "forbidden",
            ApiErrorCode::PayloadTooLarge => "payload_too_large",
            ApiErrorCode::RateLimited => "rate_limited",
            ApiErrorCode::RequestTimeout => "request_timeout",
            ApiErrorCode::Internal => "internal",
            ApiErrorCode::TooManyPending => "too_many_pending",
            ApiErrorCode::NoSuchAccount => "no_such_account",
        }
    }
}

/// Body of every API error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Stable code.
    pub code: ApiErrorCode,
    /// Human explanation (already sanitized by the server).
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_spelling_is_pinned() {
        for (code, s) in [
            (ApiErrorCode::BadJson, "bad_json"),
            (ApiErrorCode::InvalidPublicKey, "invalid_public_key"),
            (ApiErrorCode::PrivateKeyRefused, "private_key_refused"),
            (ApiErrorCode::WeakKey, "weak_key"),
            (ApiErrorCode::InvalidProof, "invalid_proof"),
            (ApiErrorCode::InvalidField, "invalid_field"),
            (ApiErrorCode::Conflict, "conflict"),
            (ApiErrorCode::NotFound, "not_found"),
            (ApiErrorCode::Unauthorized, "unauthorized"),
            (ApiErrorCode::Forbidden, "forbidden"),
            (ApiErrorCode::PayloadTooLarge, "payload_too_large"),
            (ApiErrorCode::RateLimited, "rate_limited"),
            (ApiErrorCode::RequestTimeout, "request_timeout"),
            (ApiErrorCode::Internal, "internal"),
            (ApiErrorCode::TooManyPending, "too_many_pending"),
            (ApiErrorCode::NoSuchAccount, "no_such_account"),
        ] {
            assert_eq!(code.as_str(), s);
            assert_eq!(
                serde_json::to_string(&code).unwrap_or_default(),
                format!("\"{s}\"")
            );
        }
    }

    #[test]
    fn key_status_round_trips() {
        for s in [KeyStatus::Pending, KeyStatus::Approved, KeyStatus::Revoked] {
            assert_eq!(KeyStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(KeyStatus::parse("Approved"), None);
    }
}
