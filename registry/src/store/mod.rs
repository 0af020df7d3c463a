//! The registry store: one trait, one implementation per database.
//!
//! Callers (admin CLI, HTTP API, gateway) only see [`Store`]; the embedded
//! SQLite backend ([`sqlite::SqliteStore`]) is the default, and a PostgreSQL
//! backend can be added behind the same trait. Every admin change writes its
//! audit event in the same transaction and bumps the store's *revision*, a
//! counter that running gateways poll (or are notified of) to apply
//! revocations and rule changes made by another process.
//!
//! The trait is synchronous; async callers run it on the blocking pool
//! (`tokio::task::spawn_blocking`).

pub mod sqlite;

use crate::error::RegistryError;
use crate::model::*;
use pra_proto::api::KeyStatus;

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
    /// Record a successful login (last seen).
    fn touch_key(&self, fingerprint: &str, at: Timestamp) -> StoreResult<()>;

    // --- rules ---
    /// Add a validated rule. `NotFound` for an unknown user; `Conflict` for a
    /// duplicate name or local port of that user.
    fn add_rule(&self, rule: RuleRecord, actor: &Actor) -> StoreResult<RuleRecord>;
    /// Rules, optionally of one user, by user then local port.
    fn list_rules(&self, user: Option<&str>) -> StoreResult<Vec<RuleRecord>>;
    /// Remove a rule. `NotFound` if missing.
    fn remove_rule(&self, user: &str, name: &str, actor: &Actor) -> StoreResult<()>;

    // --- admin tokens ---
    /// Store a token's hash under a unique name.
    fn add_token(&self, name: &str, token_hash: &str, actor: &Actor) -> StoreResult<TokenRecord>;
    /// Find the token with this hash and mark it used.
    fn use_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>>;

    // --- gateway ---
    /// Facts for a login decision (key by fingerprint, user by name).
    fn login_facts(&self, user: &str, fingerprint: &str) -> StoreResult<LoginFacts>;
    /// Fingerprints of keys that may log in right now, with their user:
    /// approved keys of enabled users.
    fn allowed_keys(&self) -> StoreResult<Vec<(String, String)>>;
    /// A counter that grows with every change that affects logins or rules.
    fn revision(&self) -> StoreResult<i64>;

    // --- audit ---
    /// Append an event (gateway events; admin changes record their own).
    fn record(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Read events, newest first.
    fn audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>>;
}
