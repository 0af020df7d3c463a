//! The registry store: one trait, one implementation per database.
//!
//! Callers (admin CLI, HTTP API, gateway) only see [`Store`]; the embedded
//! SQLite backend ([`sqlite::SqliteStore`]) is the default, the PostgreSQL
//! backend ([`postgres::PostgresStore`]) lets several gateways share one
//! registry. Every admin change writes its audit event in the same
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
//! The trait is synchronous; async callers run it on the blocking pool
//! (`tokio::task::spawn_blocking`). Both backends may also be called from
//! a runtime thread without panicking (they block it meanwhile).

pub mod pg_tls;
pub mod postgres;
pub mod sqlite;

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

/// What [`Store::subscribe`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The newest revision seen (0 before the first read).
    pub revision: i64,
    /// When the database last answered the feed (`None`: not yet).
    pub confirmed: Option<Instant>,
    /// Why the last attempt failed, while the database does not answer.
    pub error: Option<String>,
}

impl Change {
    /// Nothing read yet.
    pub fn unknown() -> Change {
        Change {
            revision: 0,
            confirmed: None,
            error: None,
        }
    }
}

/// Result of store calls.
pub type StoreResult<T> = Result<T, RegistryError>;

/// The registry's records. Implementations are cheap to share (`Arc<dyn Store>`).
pub trait Store: Send + Sync + 'static {
    // --- users ---
    /// Create an enabled user. `Conflict` if the name exists.
    fn add_user(&self, name: &str, actor: &Actor) -> StoreResult<User>;
    /// One user.
    fn get_user(&self, name: &str) -> StoreResult<Option<User>>;
    /// All users, by name.
    fn list_users(&self) -> StoreResult<Vec<User>>;
    /// Enable or disable. `NotFound` if missing.
    fn set_user_enabled(&self, name: &str, enabled: bool, actor: &Actor) -> StoreResult<User>;

    // --- keys ---
    /// Store a new key, or return the existing record when the same key is
    /// already registered to the same user (idempotent; `bool` = created).
    /// `Conflict` if it belongs to another user. The user must exist unless
    /// `create_user` is set (then it is created, enabled).
    fn add_key(
        &self,
        key: NewKey,
        create_user: bool,
        actor: &Actor,
    ) -> StoreResult<(KeyRecord, bool)>;
    /// Remember that `fingerprint` was submitted (with a valid proof) for
    /// `user`, an account that does not exist: audited as
    /// `key.submit.unknown_user`. The same limit as for pending keys
    /// applies per name ([`MAX_PENDING_PER_USER`], `TooManyPending`), so a
    /// caller cannot tell known from unknown names by it. Entries older than
    /// [`UNKNOWN_SUBMISSION_KEEP_SECS`] are forgotten.
    fn note_unknown_submission(
        &self,
        fingerprint: &str,
        user: &str,
        actor: &Actor,
    ) -> StoreResult<()>;
    /// Was `fingerprint` submitted for the (unknown) account `user` lately?
    fn unknown_submission(&self, fingerprint: &str, user: &str) -> StoreResult<bool>;
    /// One key by fingerprint.
    fn get_key(&self, fingerprint: &str) -> StoreResult<Option<KeyRecord>>;
    /// Keys, optionally only one status, newest first.
    fn list_keys(&self, status: Option<KeyStatus>) -> StoreResult<Vec<KeyRecord>>;
    /// Approve or revoke. Approving a revoked key is refused (`Conflict`).
    fn set_key_status(
        &self,
        fingerprint: &str,
        status: KeyStatus,
        actor: &Actor,
    ) -> StoreResult<KeyRecord>;

    // --- rules ---
    /// Add a validated rule. `NotFound` for an unknown user; `Conflict` for a
    /// duplicate name or local port of that user.
    fn add_rule(&self, rule: RuleRecord, actor: &Actor) -> StoreResult<RuleRecord>;
    /// Rules, optionally of one user, by user then local port.
    fn list_rules(&self, user: Option<&str>) -> StoreResult<Vec<RuleRecord>>;
    /// Remove a rule. `NotFound` if missing.
    fn remove_rule(&self, user: &str, name: &str, actor: &Actor) -> StoreResult<()>;

    // --- admin tokens ---
    /// Store a token's hash under a unique name, valid until revoked.
    fn add_token(&self, name: &str, token_hash: &str, actor: &Actor) -> StoreResult<TokenRecord> {
        self.add_token_until(name, token_hash, None, actor)
    }
    /// Store a token's hash under a unique name, valid until `expires_at`
    /// (`None`: until revoked). Audited (`token.create`).
    fn add_token_until(
        &self,
        name: &str,
        token_hash: &str,
        expires_at: Option<Timestamp>,
        actor: &Actor,
    ) -> StoreResult<TokenRecord>;
    /// Find the valid (not expired) token with this hash and mark it used.
    fn use_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>>;
    /// Every token (expired ones too), by name; never their hashes.
    fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>>;
    /// Withdraw a token for good: the next request with it (API or a web
    /// session signed in with it) is refused. Audited (`token.revoke`).
    /// `NotFound` if there is no token of that name.
    fn revoke_token(&self, name: &str, actor: &Actor) -> StoreResult<TokenRecord>;

    // --- enrollment invites ---
    /// Store an invite for an existing user (`NotFound` otherwise). Audited
    /// (`invite.create`; the detail names the id, expiry and `approve`).
    fn add_invite(&self, invite: &NewInvite, actor: &Actor) -> StoreResult<InviteRecord>;
    /// Every invite (used, revoked and expired ones too), newest first.
    fn list_invites(&self) -> StoreResult<Vec<InviteRecord>>;
    /// Withdraw an invite: it is refused from now on. Audited
    /// (`invite.revoke`). `NotFound` if there is no such invite,
    /// `Conflict` if it was used or revoked already.
    fn revoke_invite(&self, id: &str, actor: &Actor) -> StoreResult<InviteRecord>;
    /// Use an invite: when `id` names an invite whose secret hashes to
    /// `secret_hash` and that is neither used, revoked nor expired, store
    /// `key` for the invite's user (approved if the invite says so,
    /// otherwise pending; `key.user` and `key.status` are ignored) and mark
    /// the invite used, in one transaction (audited `key.enroll`). Any
    /// refusal stores nothing. `Conflict` if the key is already registered.
    fn redeem_invite(
        &self,
        id: &str,
        secret_hash: &str,
        key: NewKey,
        actor: &Actor,
    ) -> StoreResult<Result<KeyRecord, InviteRefusal>>;

    // --- gateway ---
    /// Facts for a login decision (key by fingerprint, user by name).
    fn login_facts(&self, user: &str, fingerprint: &str) -> StoreResult<LoginFacts>;
    /// Fingerprints of keys that may log in right now, with their user:
    /// approved keys of enabled users.
    fn allowed_keys(&self) -> StoreResult<Vec<(String, String)>>;
    /// A counter that grows with every change that affects logins or rules
    /// (and with every disconnect request).
    fn revision(&self) -> StoreResult<i64>;
    /// Follow the revision without asking: the receiver is updated when it
    /// moves (PostgreSQL: at once, by `NOTIFY`; SQLite: within 250 ms), and
    /// at least every few seconds with [`Change::confirmed`] refreshed, or
    /// [`Change::error`] set while the database does not answer.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<Change>;

    // --- live sessions (written by gateways) ---
    /// Register a session that just logged in; returns its id.
    fn session_open(&self, session: &NewSession) -> StoreResult<i64>;
    /// Write byte counts and mark the sessions alive at `at` (one call for
    /// all of a gateway's sessions). Unknown or ended ids are ignored.
    fn session_progress(&self, at: Timestamp, updates: &[SessionProgress]) -> StoreResult<()>;
    /// A session ended: final counts and the reason. Ending an ended
    /// session changes nothing.
    fn session_close(
        &self,
        progress: SessionProgress,
        at: Timestamp,
        reason: &str,
    ) -> StoreResult<()>;
    /// Sessions not ended whose gateway reported them within
    /// [`SESSION_STALE_SECS`], oldest first.
    fn list_live_sessions(&self) -> StoreResult<Vec<SessionRecord>>;
    /// One session, live or ended.
    fn get_session(&self, id: i64) -> StoreResult<Option<SessionRecord>>;
    /// Ask the session's gateway to disconnect it: audited
    /// (`session.disconnect`) and a revision bump, so every gateway looks.
    /// `NotFound` unless the session is live.
    fn request_disconnect(&self, id: i64, actor: &Actor) -> StoreResult<SessionRecord>;
    /// Ids of `gateway`'s open sessions whose disconnect was requested.
    fn disconnect_requests(&self, gateway: &str) -> StoreResult<Vec<i64>>;
    /// A gateway (re)starts: its sessions still open from an earlier run
    /// are marked ended with `reason`; old ended sessions are pruned.
    /// Returns how many were ended.
    fn end_gateway_sessions(&self, gateway: &str, at: Timestamp, reason: &str) -> StoreResult<u64>;

    // --- audit ---
    /// Append an event (gateway events; admin changes record their own).
    fn record(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Write a gateway's grouped background writes (audit events and last
    /// logins) in one transaction: all or nothing. An invalid event fails
    /// the whole group (the gateway checks them before).
    fn record_background(&self, writes: &BackgroundWrites) -> StoreResult<()>;
    /// Read events, newest first.
    fn audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>>;
    /// Delete at most `batch` events older than `before` (oldest first) in
    /// one short transaction; returns how many went. Retention calls it
    /// repeatedly, so no single call holds the database for long.
    fn prune_audit(&self, before: Timestamp, batch: u32) -> StoreResult<u64>;
}

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

    /// A key to store: valid, matching its fingerprint, not revoked.
    pub fn new_key(key: &NewKey) -> StoreResult<(validate::ValidKey, Device)> {
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
    pub fn too_many_pending(user: &str) -> RegistryError {
        RegistryError::TooManyPending(format!(
            "account {user} already has {MAX_PENDING_PER_USER} keys waiting for approval; \
             ask your administrator to approve or revoke them first"
        ))
    }

    /// A token hash: 64 hex digits.
    pub fn token(name: &str, token_hash: &str) -> StoreResult<()> {
        validate::token_name(name)?;
        if token_hash.len() != 64 || !token_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RegistryError::invalid(
                "token hash",
                "expected 64 hex digits",
            ));
        }
        Ok(())
    }

    /// The audit detail of a new token (its name and expiry, never its hash).
    pub fn token_detail(name: &str, expires_at: Option<Timestamp>) -> serde_json::Value {
        match expires_at {
            Some(at) => serde_json::json!({ "token": name, "expires_at": at }),
            None => serde_json::json!({ "token": name }),
        }
    }

    /// A new invite's fields.
    pub fn invite(i: &NewInvite) -> StoreResult<()> {
        validate::user_name(&i.user)?;
        invite_id(&i.id)?;
        if i.secret_hash.len() != 64 || !i.secret_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RegistryError::invalid(
                "invite secret hash",
                "expected 64 hex digits",
            ));
        }
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
    pub fn invite_id(id: &str) -> StoreResult<()> {
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(RegistryError::invalid(
                "invite id",
                "letters and digits, as `pra-registry invite list` shows it",
            ));
        }
        Ok(())
    }

    /// The audit detail of a new invite (never its secret or hash).
    pub fn invite_detail(i: &NewInvite) -> serde_json::Value {
        serde_json::json!({
            "invite": i.id,
            "expires_at": i.expires_at,
            "approve": i.approve,
            "gateways": i.gateways,
        })
    }

    /// Whether `invite` (whose secret hashes to `stored_hash`) may be used
    /// with `secret_hash` at `now`.
    pub fn redeemable(
        invite: Option<(InviteRecord, String)>,
        secret_hash: &str,
        now: Timestamp,
    ) -> Result<InviteRecord, InviteRefusal> {
        let Some((invite, stored_hash)) = invite else {
            return Err(InviteRefusal::Unknown);
        };
        if stored_hash.len() != secret_hash.len()
            || stored_hash
                .bytes()
                .zip(secret_hash.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                != 0
        {
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
    pub fn revocable(i: &InviteRecord) -> StoreResult<()> {
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
    pub fn audit_event(e: &AuditEvent) -> StoreResult<()> {
        if e.kind.is_empty() || e.actor.is_empty() {
            return Err(RegistryError::invalid(
                "audit event",
                "kind and actor are required",
            ));
        }
        Ok(())
    }

    /// A new session's text fields.
    pub fn session(s: &NewSession) -> StoreResult<()> {
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
    pub fn transition(
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

    /// Audit page size: 0 = default, capped.
    pub fn audit_limit(limit: u32) -> u32 {
        use super::sqlite::{AUDIT_DEFAULT_LIMIT, AUDIT_MAX_LIMIT};
        match limit {
            0 => AUDIT_DEFAULT_LIMIT,
            n => n.min(AUDIT_MAX_LIMIT),
        }
    }
}
