//! Key hand-over with an invite over the gateway's SSH port.
//!
//! The client logs in as [`ENROLL_USER`] with password authentication, the
//! password being `ID:SECRET` from the invite; it then opens one session
//! channel and sends one `exec` request: [`ENROLL_COMMAND`], a space and an
//! [`EnrollRequest`] as JSON. The gateway answers one [`EnrollReply`] (JSON,
//! one line) on the channel and closes it. Nothing else is allowed on such
//! a connection (see `docs/protocol.md`).

use crate::api::{Device, KeyStatus};
use crate::proof::Proof;
use serde::{Deserialize, Serialize};

/// The SSH user name of an enrollment login.
pub const ENROLL_USER: &str = "pra-enroll";
/// The `exec` command that carries the key.
pub const ENROLL_COMMAND: &str = "pra-enroll";
/// Largest `exec` request the gateway reads for it.
pub const MAX_REQUEST: usize = 16 * 1024;

/// The password of an enrollment login: `ID:SECRET`.
pub fn password(id: &str, secret: &str) -> String {
    format!("{id}:{secret}")
}

/// What the client hands over (the proof is made for
/// [`crate::proof::Action::Submit`] and the invite's user).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// One OpenSSH public-key line.
    pub public_key: String,
    /// The PC the key was made on.
    pub device: Device,
    /// Proof that the sender holds the private key.
    pub proof: Proof,
}

/// Why the gateway refused an enrollment whose secret was right.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollRefusal {
    /// The invite was used already.
    Used,
    /// An admin revoked it.
    Revoked,
    /// It expired.
    Expired,
    /// The request was malformed, the key invalid or its proof wrong.
    Invalid,
    /// The key is registered already.
    KeyExists,
    /// The registry database could not be written.
    Unavailable,
}

/// The gateway's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollReply {
    /// The key is stored with this status (`pending` or `approved`).
    Enrolled {
        /// The key's fingerprint.
        fingerprint: String,
        /// The account.
        user: String,
        /// `pending` or `approved`.
        status: KeyStatus,
    },
    /// Refused; nothing stored.
    Refused {
        /// Why.
        reason: EnrollRefusal,
    },
}
