//! Records kept by the registry.

use pra_proto::api::{Device, KeyStatus};
use serde::{Deserialize, Serialize};

/// Unix time in seconds.
pub type Timestamp = i64;

/// Seconds since the Unix epoch, now.
pub fn now() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Who made a change: recorded in the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Actor {
    /// The admin CLI on the registry host (OS user name).
    Cli(String),
    /// An API token, by its name.
    Token(String),
    /// An employee's submission through the public API (source address).
    Submitter(String),
    /// The gateway itself (gateway id).
    Gateway(String),
    /// An admin signed in to the web page, by the name of the token used.
    Web(String),
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Cli(u) => write!(f, "cli:{u}"),
            Actor::Token(n) => write!(f, "token:{n}"),
            Actor::Submitter(s) => write!(f, "submitter:{s}"),
            Actor::Gateway(g) => write!(f, "gateway:{g}"),
            Actor::Web(n) => write!(f, "web:{n}"),
        }
    }
}

/// An account allowed to connect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Account name (unique).
    pub name: String,
    /// Disabled users cannot log in; their live sessions are ended.
    pub enabled: bool,
    /// When the account was created.
    pub created_at: Timestamp,
}

/// A registered public key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// `SHA256:` fingerprint (unique).
    pub fingerprint: String,
    /// Owner.
    pub user: String,
    /// OpenSSH public-key line (algorithm, base64, comment).
    pub public_key: String,
    /// Key algorithm name (e.g. `ssh-ed25519`).
    pub algorithm: String,
    /// The PC the key was made on, as submitted.
    pub device: Device,
    /// pending / approved / revoked.
    pub status: KeyStatus,
    /// When it was submitted or imported.
    pub submitted_at: Timestamp,
    /// Who approved it (actor), if approved.
    pub approved_by: Option<String>,
    /// When it was approved.
    pub approved_at: Option<Timestamp>,
    /// Who revoked it, if revoked.
    pub revoked_by: Option<String>,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
    /// Last successful login with it.
    pub last_seen: Option<Timestamp>,
}

/// A new key to store (already validated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewKey {
    /// `SHA256:` fingerprint.
    pub fingerprint: String,
    /// Owner (must exist, or be created when `create_user` is set).
    pub user: String,
    /// Normalized OpenSSH public-key line.
    pub public_key: String,
    /// Key algorithm name.
    pub algorithm: String,
    /// Device description.
    pub device: Device,
    /// Initial status (pending for submissions; approved for `import --approve`).
    pub status: KeyStatus,
}

/// A fixed forward for one user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRecord {
    /// Owner.
    pub user: String,
    /// Rule name, unique per user.
    pub name: String,
    /// Client-side port on 127.0.0.1, unique per user.
    pub local_port: u16,
    /// Target host as written by the admin.
    pub target_host: String,
    /// Target port.
    pub target_port: u16,
}

impl RuleRecord {
    /// Rule `name` of `user`: 127.0.0.1:`local_port` to `target_host:target_port`.
    pub fn new(
        user: &str,
        name: &str,
        local_port: u16,
        target_host: &str,
        target_port: u16,
    ) -> RuleRecord {
        RuleRecord {
            user: user.into(),
            name: name.into(),
            local_port,
            target_host: target_host.into(),
            target_port,
        }
    }
}

/// An admin API token (only its hash is stored).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Name given at creation (unique).
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// Last time it authorized a request.
    pub last_used: Option<Timestamp>,
    /// It stops being valid at this time (`None`: only when revoked).
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
}

/// Something worth recording: admin changes, logins, refusals, sessions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Dotted kind, e.g. `user.add`, `key.approve`, `login.refused`,
    /// `forward.refused`, `session.start`, `session.end`.
    pub kind: String,
    /// Who did it.
    pub actor: String,
    /// User concerned, if any.
    pub user: Option<String>,
    /// Key fingerprint concerned, if any.
    pub fingerprint: Option<String>,
    /// Source address (IP:port) for network events.
    pub source: Option<String>,
    /// Free-form details as JSON (reason, target, bytes …). Never secrets.
    pub detail: serde_json::Value,
}

/// What a gateway writes in the background, grouped: everything that
/// queued up while the previous group was being written goes into one
/// transaction (one flush to disk instead of one per event).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackgroundWrites {
    /// Audit events, in the order they happened.
    pub events: Vec<AuditEvent>,
    /// Keys that logged in, with when ("last seen": never moves backwards;
    /// a key removed meanwhile is skipped).
    pub last_seen: Vec<(String, Timestamp)>,
    /// Sessions that logged in (the live-sessions list); their ids come
    /// back in this order.
    pub opened: Vec<NewSession>,
    /// Sessions that ended: final counts, when, and why (see
    /// `Store::session_close`).
    pub closed: Vec<(SessionProgress, Timestamp, String)>,
}

/// A stored audit event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Sequence number (increasing).
    pub id: i64,
    /// When it happened.
    pub at: Timestamp,
    /// The event.
    #[serde(flatten)]
    pub event: AuditEvent,
}

/// Filter for reading the audit log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this user.
    pub user: Option<String>,
    /// Only kinds starting with this prefix (e.g. `login`).
    pub kind_prefix: Option<String>,
    /// Only entries with id below this (paging backwards).
    pub before_id: Option<i64>,
    /// At most this many, newest first (0 = default 100).
    pub limit: u32,
}

/// What the gateway needs to decide a login: key + owner state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginFacts {
    /// The key, if registered.
    pub key: Option<KeyRecord>,
    /// The user named in the login, if it exists.
    pub user: Option<User>,
}

/// A session that logs in on a gateway, as the gateway registers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSession {
    /// Which gateway serves it (`--gateway-id`, default `HOSTNAME:PORT`).
    pub gateway: String,
    /// Account.
    pub user: String,
    /// Key fingerprint.
    pub fingerprint: String,
    /// Client address (IP:port) as the gateway sees it.
    pub source: String,
    /// When it logged in.
    pub started_at: Timestamp,
}

/// Byte counts of one session, written by its gateway every few seconds
/// and when it ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionProgress {
    /// The session ([`SessionRecord::id`]).
    pub id: i64,
    /// Client → targets.
    pub bytes_up: u64,
    /// Targets → client.
    pub bytes_down: u64,
}

/// A gateway session as the registry keeps it (the live-sessions list).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Registry-wide id (`pra-registry session disconnect ID`).
    pub id: i64,
    /// The gateway that serves it.
    pub gateway: String,
    /// Account.
    pub user: String,
    /// Key fingerprint.
    pub fingerprint: String,
    /// Client address (IP:port).
    pub source: String,
    /// When it logged in.
    pub started_at: Timestamp,
    /// When its gateway last reported it alive (byte counts written).
    pub heartbeat_at: Timestamp,
    /// Client → targets, as of the last report.
    pub bytes_up: u64,
    /// Targets → client, as of the last report.
    pub bytes_down: u64,
    /// When it ended (`None` while live).
    pub ended_at: Option<Timestamp>,
    /// Why it ended.
    pub end_reason: Option<String>,
    /// Who asked for it to be disconnected, if anyone.
    pub disconnect_requested_by: Option<String>,
    /// When.
    pub disconnect_requested_at: Option<Timestamp>,
}

/// A new enrollment invite (only the secret's hash is stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewInvite {
    /// Its id (random, shown by `invite list`).
    pub id: String,
    /// The account a key enrolled with it belongs to (must exist).
    pub user: String,
    /// Lower-case hex SHA-256 of the one-time secret.
    pub secret_hash: String,
    /// Gateway addresses written into the invite string.
    pub gateways: Vec<String>,
    /// A key enrolled with it is approved at once.
    pub approve: bool,
    /// It is refused from this time on.
    pub expires_at: Timestamp,
}

/// A stored invite (never its secret or the secret's hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteRecord {
    /// Its id.
    pub id: String,
    /// The account.
    pub user: String,
    /// Gateway addresses written into the invite string.
    pub gateways: Vec<String>,
    /// A key enrolled with it is approved at once.
    pub approve: bool,
    /// When it was created.
    pub created_at: Timestamp,
    /// Who created it.
    pub created_by: String,
    /// It is refused from this time on.
    pub expires_at: Timestamp,
    /// When it was used (it works once).
    pub used_at: Option<Timestamp>,
    /// The key enrolled with it.
    pub used_fingerprint: Option<String>,
    /// When an admin withdrew it.
    pub revoked_at: Option<Timestamp>,
}

impl InviteRecord {
    /// `outstanding`, `used`, `revoked` or `expired` at `now`.
    pub fn state(&self, now: Timestamp) -> &'static str {
        if self.used_at.is_some() {
            "used"
        } else if self.revoked_at.is_some() {
            "revoked"
        } else if now >= self.expires_at {
            "expired"
        } else {
            "outstanding"
        }
    }
}

/// Why an invite cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InviteRefusal {
    /// No invite with that id, or the secret does not match (not told apart).
    Unknown,
    /// It was used already (an invite works once).
    Used,
    /// An admin withdrew it.
    Revoked,
    /// Past its expiry.
    Expired,
}

/// An admin page sign-in session as stored, so that every `serve` on the
/// same database knows it. It is keyed by the SHA-256 of the cookie value;
/// the value itself is never stored. Times are milliseconds since the epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebSession {
    /// SHA-256 of the cookie value, 64 hex digits.
    pub id_hash: String,
    /// Name of the admin token that signed in.
    pub token_name: String,
    /// SHA-256 of that token.
    pub token_hash: String,
    /// The synchronizer token every form of this session carries.
    pub csrf: String,
    /// Signed in over HTTPS: only accepted over HTTPS.
    pub secure: bool,
    /// When it signed in.
    pub created_ms: i64,
    /// Its last request.
    pub last_seen_ms: i64,
    /// The one-time message for the next page: (is it an error, text).
    pub flash: Option<(bool, String)>,
}
