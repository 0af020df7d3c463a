//! The registry store: one type, its rules written once, two databases.
//!
//! Callers (admin CLI, HTTP API, gateway) only see [`Store`], whose methods
//! hold every check, audit event and revision bump, over a
//! [`registry::Backend`]: the embedded SQLite database ([`Store::sqlite`])
//! is the default, PostgreSQL ([`Store::postgres`]) lets several gateways
//! share one registry.
//! A backend keeps only its connections, value mapping and dialect; the
//! schema is written once (`sqlite::MIGRATIONS`, which PostgreSQL
//! translates). Every admin change writes its audit event in the same
//! transaction and bumps the store's *revision*, a counter that running
//! gateways follow through [`Store::subscribe`] (PostgreSQL: `LISTEN
//! pra_revision`, with a re-check every 2 s as a safety net; SQLite: a
//! poll of one row every 250 ms) to apply revocations, disabled accounts,
//! rule changes and disconnect requests made by another process.
//!
//! Gateways also record their sessions here ([`Store::session_open`] …), so
//! the admin CLI and API can list the live sessions of every gateway and
//! ask for one to be disconnected.
//!
//! The store is synchronous; async callers run it on the blocking pool
//! (`tokio::task::spawn_blocking`). Both backends may also be called from
//! a runtime thread without panicking (they block it meanwhile).

pub mod pg_tls;
pub mod postgres;
pub mod registry;
pub mod sqlite;

pub use registry::Store;

use crate::error::RegistryError;
use crate::model::*;
use pra_proto::api::KeyStatus;
use std::time::Instant;

/// A session whose gateway has not reported it for this long is hidden
/// from the live list (its gateway crashed or lost the database).
pub const SESSION_STALE_SECS: i64 = 60;

/// Ended sessions are kept this long (the audit log keeps them for good).
pub const SESSION_KEEP_SECS: i64 = 30 * 24 * 3600;

/// Pending keys one account may have from public submissions; more are
/// refused ([`RegistryError::TooManyPending`], HTTP 429) until an admin
/// approves or revokes some. Keys an admin imports are not counted against it.
pub const MAX_PENDING_PER_USER: usize = 5;

/// Submissions for accounts that do not exist are remembered this long (so
/// that the key's holder can be told "no such account").
pub const UNKNOWN_SUBMISSION_KEEP_SECS: i64 = 7 * 24 * 3600;

/// Default page of audit entries.
pub const AUDIT_DEFAULT_LIMIT: u32 = 100;
/// Largest page of audit entries.
pub const AUDIT_MAX_LIMIT: u32 = 1000;

/// What [`Store::subscribe`] reports (by default: nothing read yet).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// The newest revision seen (0 before the first read).
    pub revision: i64,
    /// When the database last answered the feed (`None`: not yet).
    pub confirmed: Option<Instant>,
    /// Why the last attempt failed, while the database does not answer.
    pub error: Option<String>,
}

impl Change {
    /// The database did not answer: note `error`; whether that is news.
    pub(crate) fn failed(&mut self, error: &str) -> bool {
        let news = self.error.as_deref() != Some(error);
        self.error = Some(error.to_owned());
        news
    }
}

/// Result of store calls.
pub type StoreResult<T> = Result<T, RegistryError>;

/// An admin change's audit event (the actor's source address is kept for
/// submissions).
pub(crate) fn event(
    kind: &str,
    actor: &Actor,
    user: Option<&str>,
    fingerprint: Option<&str>,
) -> AuditEvent {
    let source = match actor {
        Actor::Submitter(s) => Some(s.clone()),
        _ => None,
    };
    AuditEvent {
        kind: kind.to_string(),
        actor: actor.to_string(),
        user: user.map(str::to_string),
        fingerprint: fingerprint.map(str::to_string),
        source,
        detail: serde_json::Value::Object(Default::default()),
    }
}

/// Refusals both backends give before touching the database.
pub(crate) mod checks {
    use super::*;
    use crate::validate;
    use pra_proto::api::Device;
    use subtle::ConstantTimeEq;

    /// A key to store: valid, matching its fingerprint, not revoked.
    pub(crate) fn new_key(key: &NewKey) -> StoreResult<(validate::ValidKey, Device)> {
        // Defense in depth: whatever the caller checked, only a valid key
        // whose fingerprint matches its line is stored.
        let valid = validate::public_key(&key.public_key)?;
        if valid.fingerprint != key.fingerprint || valid.algorithm != key.algorithm {
            return Err(RegistryError::invalid(
                "public key",
                "the fingerprint or algorithm does not match the key",
            ));
        }
        validate::user_name(&key.user)?;
        let device = validate::device(&key.device)?;
        if key.status == KeyStatus::Revoked {
            return Err(RegistryError::invalid(
                "key status",
                "a new key is pending or approved",
            ));
        }
        Ok((valid, device))
    }

    /// The refusal when an account has [`MAX_PENDING_PER_USER`] pending keys.
    pub(crate) fn too_many_pending(user: &str) -> RegistryError {
        RegistryError::TooManyPending(format!(
            "account {user} already has {MAX_PENDING_PER_USER} keys waiting for approval; \
             ask your administrator to approve or revoke them first"
        ))
    }

    /// A hash (of a token, an invite secret, a session id): 64 hex digits.
    pub(crate) fn hash(field: &'static str, hash: &str) -> StoreResult<()> {
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RegistryError::invalid(field, "expected 64 hex digits"));
        }
        Ok(())
    }

    /// A new invite's fields.
    pub(crate) fn invite(i: &NewInvite) -> StoreResult<()> {
        validate::user_name(&i.user)?;
        invite_id(&i.id)?;
        hash("invite secret hash", &i.secret_hash)?;
        if i.gateways.is_empty()
            || i.gateways.len() > 16
            || i.gateways
                .iter()
                .any(|g| g.is_empty() || g.len() > 255 || !g.chars().all(|c| c.is_ascii_graphic()))
        {
            return Err(RegistryError::invalid(
                "gateway",
                "1 to 16 addresses, HOST or HOST:PORT",
            ));
        }
        Ok(())
    }

    /// An invite id: 1 to 64 letters and digits.
    pub(crate) fn invite_id(id: &str) -> StoreResult<()> {
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(RegistryError::invalid(
                "invite id",
                "letters and digits, as `pra-registry invite list` shows it",
            ));
        }
        Ok(())
    }

    /// Whether `invite` (whose secret hashes to `stored_hash`) may be used
    /// with `secret_hash` at `now`.
    pub(crate) fn redeemable(
        invite: Option<(InviteRecord, String)>,
        secret_hash: &str,
        now: Timestamp,
    ) -> Result<InviteRecord, InviteRefusal> {
        let Some((invite, stored_hash)) = invite else {
            return Err(InviteRefusal::Unknown);
        };
        // In constant time: how much of a guess matched must not show.
        if !bool::from(stored_hash.as_bytes().ct_eq(secret_hash.as_bytes())) {
            return Err(InviteRefusal::Unknown);
        }
        if invite.used_at.is_some() {
            Err(InviteRefusal::Used)
        } else if invite.revoked_at.is_some() {
            Err(InviteRefusal::Revoked)
        } else if now >= invite.expires_at {
            Err(InviteRefusal::Expired)
        } else {
            Ok(invite)
        }
    }

    /// Why an invite cannot be revoked, if it cannot.
    pub(crate) fn revocable(i: &InviteRecord) -> StoreResult<()> {
        if i.used_at.is_some() {
            return Err(RegistryError::Conflict(format!(
                "invite {} was already used{}; revoke the key instead (`pra-registry key revoke FINGERPRINT`)",
                i.id,
                i.used_fingerprint
                    .as_deref()
                    .map(|f| format!(" (key {f})"))
                    .unwrap_or_default()
            )));
        }
        if i.revoked_at.is_some() {
            return Err(RegistryError::Conflict(format!(
                "invite {} is already revoked",
                i.id
            )));
        }
        Ok(())
    }

    /// An audit event needs a kind and an actor.
    pub(crate) fn audit_event(e: &AuditEvent) -> StoreResult<()> {
        if e.kind.is_empty() || e.actor.is_empty() {
            return Err(RegistryError::invalid(
                "audit event",
                "kind and actor are required",
            ));
        }
        Ok(())
    }

    /// A new session's text fields.
    pub(crate) fn session(s: &NewSession) -> StoreResult<()> {
        for (field, value, max) in [
            ("gateway id", &s.gateway, 255),
            ("user", &s.user, 255),
            ("fingerprint", &s.fingerprint, 255),
            ("source", &s.source, 255),
        ] {
            if value.is_empty()
                || value.chars().count() > max
                || value.chars().any(char::is_control)
            {
                return Err(RegistryError::invalid(
                    field,
                    format!("1 to {max} printable characters"),
                ));
            }
        }
        Ok(())
    }

    /// How the key-status transition is named, or why it is refused.
    pub(crate) fn transition(
        fingerprint: &str,
        from: KeyStatus,
        to: KeyStatus,
    ) -> StoreResult<&'static str> {
        match (from, to) {
            (_, KeyStatus::Pending) => Err(RegistryError::invalid(
                "key status",
                "a key can be approved or revoked, not set back to pending",
            )),
            (KeyStatus::Revoked, KeyStatus::Approved) => Err(RegistryError::Conflict(format!(
                "key {fingerprint} was revoked and cannot be approved again; the employee \
                 generates a new key (`pra keygen --force`) and submits it"
            ))),
            (_, KeyStatus::Approved) => Ok("key.approve"),
            (_, KeyStatus::Revoked) => Ok("key.revoke"),
        }
    }
}
