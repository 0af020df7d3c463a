//! The embedded SQLite backend: one file, `registry.db`, in the data folder.
//!
//! - WAL journal, `busy_timeout`, foreign keys, `synchronous=FULL` (an admin
//!   change that was acknowledged survives a power cut).
//! - Schema migrations keyed by `PRAGMA user_version`, applied in one
//!   `BEGIN IMMEDIATE` transaction, so two processes opening a fresh folder
//!   at once cannot both migrate.
//! - `PRAGMA quick_check` at open. A file that exists but cannot be opened,
//!   is empty, is not a SQLite database, is another program's database, is
//!   damaged or comes from a newer version is refused with an error that
//!   names it; it is never replaced by a fresh database.
//! - One connection behind a mutex: the CLI and a running `serve` each hold
//!   their own, and SQLite's file locking (with the busy timeout) orders
//!   their writes. Every write is an `IMMEDIATE` transaction.

use super::{
    Change, MAX_PENDING_PER_USER, SESSION_KEEP_SECS, SESSION_STALE_SECS, Store, StoreResult,
    UNKNOWN_SUBMISSION_KEEP_SECS, checks, event,
};
use crate::error::RegistryError;
use crate::model::*;
use crate::validate;
use pra_proto::api::{Device, KeyStatus};
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior, params,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// File name of the database inside the data folder.
pub const DB_FILE: &str = "registry.db";
/// `PRAGMA application_id` of PRA registry databases ("PRA1").
pub const APPLICATION_ID: i32 = 0x5052_4131;
/// How long a statement waits for another process's write lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Default and largest page of audit entries.
pub const AUDIT_DEFAULT_LIMIT: u32 = 100;
/// Largest page of audit entries.
pub const AUDIT_MAX_LIMIT: u32 = 1000;
/// How often [`Store::subscribe`] reads the revision.
pub const FEED_POLL: Duration = Duration::from_millis(250);

/// Schema migrations; `MIGRATIONS[i]` brings `user_version` from `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    name        TEXT PRIMARY KEY NOT NULL,
    enabled     INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE keys (
    fingerprint        TEXT PRIMARY KEY NOT NULL,
    user               TEXT NOT NULL REFERENCES users(name),
    public_key         TEXT NOT NULL,
    algorithm          TEXT NOT NULL,
    device_computer    TEXT NOT NULL,
    device_os_user     TEXT NOT NULL,
    device_description TEXT NOT NULL,
    device_tag         TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'revoked')),
    submitted_at       INTEGER NOT NULL,
    approved_by        TEXT,
    approved_at        INTEGER,
    revoked_by         TEXT,
    revoked_at         INTEGER,
    last_seen          INTEGER
) STRICT;
CREATE INDEX keys_by_user ON keys(user);
CREATE INDEX keys_by_status ON keys(status);

CREATE TABLE rules (
    user         TEXT NOT NULL REFERENCES users(name),
    name         TEXT NOT NULL,
    local_port   INTEGER NOT NULL CHECK (local_port BETWEEN 1 AND 65535),
    target_host  TEXT NOT NULL CHECK (length(target_host) BETWEEN 1 AND 253),
    target_port  INTEGER NOT NULL CHECK (target_port BETWEEN 1 AND 65535),
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (user, name),
    UNIQUE (user, local_port)
) STRICT;

CREATE TABLE tokens (
    name        TEXT PRIMARY KEY NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    last_used   INTEGER
) STRICT;

CREATE TABLE audit (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    actor        TEXT NOT NULL,
    user         TEXT,
    fingerprint  TEXT,
    source       TEXT,
    detail       TEXT NOT NULL
) STRICT;
CREATE INDEX audit_by_user ON audit(user, id);

CREATE TABLE meta (
    key    TEXT PRIMARY KEY NOT NULL,
    value  INTEGER NOT NULL
) STRICT;
INSERT INTO meta (key, value) VALUES ('revision', 0);
"#,
    r#"
CREATE TABLE sessions (
    id                       INTEGER PRIMARY KEY AUTOINCREMENT,
    gateway                  TEXT NOT NULL,
    user                     TEXT NOT NULL,
    fingerprint              TEXT NOT NULL,
    source                   TEXT NOT NULL,
    started_at               INTEGER NOT NULL,
    heartbeat_at             INTEGER NOT NULL,
    bytes_up                 INTEGER NOT NULL DEFAULT 0 CHECK (bytes_up >= 0),
    bytes_down               INTEGER NOT NULL DEFAULT 0 CHECK (bytes_down >= 0),
    ended_at                 INTEGER,
    end_reason               TEXT,
    disconnect_requested_by  TEXT,
    disconnect_requested_at  INTEGER
) STRICT;
CREATE INDEX sessions_open ON sessions(gateway) WHERE ended_at IS NULL;
CREATE INDEX sessions_ended ON sessions(ended_at) WHERE ended_at IS NOT NULL;
"#,
    r#"
ALTER TABLE tokens ADD COLUMN expires_at INTEGER;
CREATE INDEX audit_by_at ON audit(at);

CREATE TABLE unknown_submissions (
    fingerprint   TEXT NOT NULL,
    user          TEXT NOT NULL,
    submitted_at  INTEGER NOT NULL,
    PRIMARY KEY (fingerprint, user)
) STRICT;
CREATE INDEX unknown_submissions_by_user ON unknown_submissions(user);
CREATE INDEX unknown_submissions_by_time ON unknown_submissions(submitted_at);
"#,
    r#"
CREATE TABLE invites (
    id                TEXT PRIMARY KEY NOT NULL,
    user              TEXT NOT NULL REFERENCES users(name),
    secret_hash       TEXT NOT NULL UNIQUE,
    gateways          TEXT NOT NULL,
    approve           INTEGER NOT NULL CHECK (approve IN (0, 1)),
    created_at        INTEGER NOT NULL,
    created_by        TEXT NOT NULL,
    expires_at        INTEGER NOT NULL,
    used_at           INTEGER,
    used_fingerprint  TEXT,
    revoked_at        INTEGER
) STRICT;
"#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

fn db(e: rusqlite::Error) -> RegistryError {
    RegistryError::Database(e.to_string())
}

/// The SQLite-backed [`Store`].
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    feed: Mutex<Option<watch::Sender<Change>>>,
    /// Tells the feed's poller thread to end (set when the store is dropped).
    stop: Arc<AtomicBool>,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Open (or, when the folder holds no database yet, create) the
    /// registry database in `data_dir`.
    pub fn open(data_dir: &Path) -> StoreResult<SqliteStore> {
        let path = data_dir.join(DB_FILE);
        let shown = path.display().to_string();
        let refuse = |reason: String| {
            RegistryError::Database(format!(
                "{shown}: {reason}; it was left untouched (restore it from a backup, or move it \
                 away to start an empty registry)"
            ))
        };
        create_data_dir(data_dir).map_err(|e| {
            RegistryError::Database(format!(
                "cannot create the data folder {}: {e}",
                data_dir.display()
            ))
        })?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = match std::fs::metadata(&path) {
            Ok(meta) if !meta.is_file() => return Err(refuse("it is not a regular file".into())),
            Ok(meta) if meta.len() == 0 => {
                return Err(refuse(
                    "the file is empty (0 bytes), not a registry database".into(),
                ));
            }
            Ok(_) => Connection::open_with_flags(&path, flags)
                .map_err(|e| refuse(format!("cannot open it: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let conn =
                    Connection::open_with_flags(&path, flags | OpenFlags::SQLITE_OPEN_CREATE)
                        .map_err(|e| {
                            RegistryError::Database(format!("cannot create {shown}: {e}"))
                        })?;
                restrict_permissions(&path);
                conn
            }
            Err(e) => return Err(refuse(format!("cannot read it: {e}"))),
        };
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;

        // Integrity first: a damaged or foreign file must not be written to.
        check_integrity(&conn).map_err(refuse)?;
        let header = |pragma: &str| -> Result<i64, RegistryError> {
            conn.query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))
                .map_err(|e| refuse(format!("cannot read its header: {e}")))
        };
        let app_id = header("application_id")?;
        let version = header("user_version")?;
        if app_id != 0 && app_id != i64::from(APPLICATION_ID) {
            return Err(refuse(format!(
                "it is another program's SQLite database (application id {app_id:#x})"
            )));
        }
        if version == 0 {
            let tables: i64 = conn
                .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
                .map_err(db)?;
            if tables > 0 {
                return Err(refuse(
                    "it is a SQLite database but not a PRA registry (it has tables but no \
                     registry schema)"
                        .into(),
                ));
            }
        }
        if version > SCHEMA_VERSION {
            return Err(refuse(format!(
                "it was written by a newer pra-registry (schema {version}, this build knows up \
                 to {SCHEMA_VERSION}); upgrade pra-registry"
            )));
        }

        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|e| refuse(format!("cannot switch it to WAL mode: {e}")))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(refuse(format!("it cannot use WAL mode (got {mode})")));
        }
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")
            .map_err(db)?;
        let mut conn = conn;
        migrate(&mut conn).map_err(refuse)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            path,
            feed: Mutex::new(None),
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> StoreResult<MutexGuard<'_, Connection>> {
        self.conn
            .lock()
            .map_err(|_| RegistryError::Database("the database connection is unusable".into()))
    }

    /// Run `f` in an `IMMEDIATE` transaction and commit when it succeeds.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self.lock()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let out = f(&tx)?;
        tx.commit().map_err(db)?;
        Ok(out)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let conn = self.lock()?;
        f(&conn)
    }
}

fn create_data_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            tracing::warn!(%e, path = %path.display(), "cannot restrict the database file to its owner");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn check_integrity(conn: &Connection) -> Result<(), String> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check")
        .map_err(|e| format!("it is not a usable SQLite database ({e})"))?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| format!("it is not a usable SQLite database ({e})"))?;
    if rows.len() == 1 && rows[0] == "ok" {
        Ok(())
    } else {
        let first = rows.first().map(String::as_str).unwrap_or("no answer");
        Err(format!(
            "the integrity check failed ({} problem(s), first: {})",
            rows.len(),
            pra_proto::sanitize::sanitize(first, 200)
        ))
    }
}

fn migrate(conn: &mut Connection) -> Result<(), String> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| format!("cannot start the schema migration: {e}"))?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if version > SCHEMA_VERSION {
        return Err(format!(
            "it was written by a newer pra-registry (schema {version})"
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql)
            .map_err(|e| format!("schema migration {} failed: {e}", i + 1))?;
    }
    if version < SCHEMA_VERSION {
        tx.execute_batch(&format!(
            "PRAGMA user_version = {SCHEMA_VERSION}; PRAGMA application_id = {APPLICATION_ID};"
        ))
        .map_err(|e| e.to_string())?;
        tracing::info!(
            from = version,
            to = SCHEMA_VERSION,
            "registry schema migrated"
        );
    }
    tx.commit()
        .map_err(|e| format!("cannot commit the schema migration: {e}"))
}

// --- row mapping ------------------------------------------------------------

const USER_COLS: &str = "name, enabled, created_at";
const KEY_COLS: &str = "fingerprint, user, public_key, algorithm, device_computer, device_os_user, \
     device_description, device_tag, status, submitted_at, approved_by, approved_at, revoked_by, \
     revoked_at, last_seen";
const RULE_COLS: &str = "user, name, local_port, target_host, target_port";
const TOKEN_COLS: &str = "name, created_at, last_used, expires_at";

const INVITE_COLS: &str = "id, user, gateways, approve, created_at, created_by, expires_at, \
     used_at, used_fingerprint, revoked_at";

fn invite_row(r: &Row<'_>) -> rusqlite::Result<InviteRecord> {
    let gateways: String = r.get(2)?;
    Ok(InviteRecord {
        id: r.get(0)?,
        user: r.get(1)?,
        gateways: serde_json::from_str(&gateways).unwrap_or_default(),
        approve: r.get(3)?,
        created_at: r.get(4)?,
        created_by: r.get(5)?,
        expires_at: r.get(6)?,
        used_at: r.get(7)?,
        used_fingerprint: r.get(8)?,
        revoked_at: r.get(9)?,
    })
}

fn get_invite_in(conn: &Connection, id: &str) -> StoreResult<Option<InviteRecord>> {
    conn.query_row(
        &format!("SELECT {INVITE_COLS} FROM invites WHERE id = ?1"),
        [id],
        invite_row,
    )
    .optional()
    .map_err(db)
}

fn token_row(r: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        name: r.get(0)?,
        created_at: r.get(1)?,
        last_used: r.get(2)?,
        expires_at: r.get(3)?,
    })
}

fn user_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        name: r.get(0)?,
        enabled: r.get(1)?,
        created_at: r.get(2)?,
    })
}

fn key_row(r: &Row<'_>) -> rusqlite::Result<KeyRecord> {
    let status: String = r.get(8)?;
    Ok(KeyRecord {
        fingerprint: r.get(0)?,
        user: r.get(1)?,
        public_key: r.get(2)?,
        algorithm: r.get(3)?,
        device: Device {
            computer: r.get(4)?,
            os_user: r.get(5)?,
            description: r.get(6)?,
            tag: r.get(7)?,
        },
        status: KeyStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                8,
                rusqlite::types::Type::Text,
                format!("unknown key status {status:?}").into(),
            )
        })?,
        submitted_at: r.get(9)?,
        approved_by: r.get(10)?,
        approved_at: r.get(11)?,
        revoked_by: r.get(12)?,
        revoked_at: r.get(13)?,
        last_seen: r.get(14)?,
    })
}

fn rule_row(r: &Row<'_>) -> rusqlite::Result<RuleRecord> {
    Ok(RuleRecord {
        user: r.get(0)?,
        name: r.get(1)?,
        local_port: r.get(2)?,
        target_host: r.get(3)?,
        target_port: r.get(4)?,
    })
}

const SESSION_COLS: &str = "id, gateway, user, fingerprint, source, started_at, heartbeat_at, \
     bytes_up, bytes_down, ended_at, end_reason, disconnect_requested_by, disconnect_requested_at";

fn session_row(r: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: r.get(0)?,
        gateway: r.get(1)?,
        user: r.get(2)?,
        fingerprint: r.get(3)?,
        source: r.get(4)?,
        started_at: r.get(5)?,
        heartbeat_at: r.get(6)?,
        bytes_up: r.get::<_, i64>(7)?.max(0) as u64,
        bytes_down: r.get::<_, i64>(8)?.max(0) as u64,
        ended_at: r.get(9)?,
        end_reason: r.get(10)?,
        disconnect_requested_by: r.get(11)?,
        disconnect_requested_at: r.get(12)?,
    })
}

fn get_session_in(conn: &Connection, id: i64) -> StoreResult<Option<SessionRecord>> {
    conn.query_row(
        &format!("SELECT {SESSION_COLS} FROM sessions WHERE id = ?1"),
        [id],
        session_row,
    )
    .optional()
    .map_err(db)
}

/// Byte counts are stored as SQL integers (i64).
pub(crate) fn bytes(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Reads the revision on its own read-only connection every [`FEED_POLL`]
/// and tells the subscribers; ends when the store is dropped.
struct Poller {
    path: PathBuf,
    tx: watch::Sender<Change>,
    stop: Arc<AtomicBool>,
}

impl Poller {
    fn read(conn: &mut Option<Connection>, path: &Path) -> Result<i64, String> {
        if conn.is_none() {
            let c = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            c.busy_timeout(BUSY_TIMEOUT).map_err(|e| e.to_string())?;
            *conn = Some(c);
        }
        let c = conn.as_ref().ok_or("no connection")?;
        let r = c
            .query_row("SELECT value FROM meta WHERE key = 'revision'", [], |r| {
                r.get(0)
            })
            .map_err(|e| format!("cannot read the revision: {e}"));
        if r.is_err() {
            *conn = None;
        }
        r
    }

    fn run(self) {
        let mut conn = None;
        let mut last_sent = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            let result = Self::read(&mut conn, &self.path);
            self.tx.send_if_modified(|c| match &result {
                Ok(rev) => {
                    let moved = *rev != c.revision || c.error.is_some() || c.confirmed.is_none();
                    c.revision = *rev;
                    c.confirmed = Some(Instant::now());
                    c.error = None;
                    // Refresh `confirmed` for the subscribers every second.
                    let notify = moved || last_sent.elapsed() >= Duration::from_secs(1);
                    if notify {
                        last_sent = Instant::now();
                    }
                    notify
                }
                Err(e) => {
                    let changed = c.error.as_deref() != Some(e.as_str());
                    c.error = Some(e.clone());
                    changed
                }
            });
            std::thread::sleep(FEED_POLL);
        }
    }
}

fn get_user_in(conn: &Connection, name: &str) -> StoreResult<Option<User>> {
    conn.query_row(
        &format!("SELECT {USER_COLS} FROM users WHERE name = ?1"),
        [name],
        user_row,
    )
    .optional()
    .map_err(db)
}

fn get_key_in(conn: &Connection, fingerprint: &str) -> StoreResult<Option<KeyRecord>> {
    conn.query_row(
        &format!("SELECT {KEY_COLS} FROM keys WHERE fingerprint = ?1"),
        [fingerprint],
        key_row,
    )
    .optional()
    .map_err(db)
}

fn insert_audit(conn: &Connection, at: Timestamp, e: &AuditEvent) -> StoreResult<()> {
    checks::audit_event(e)?;
    conn.execute(
        "INSERT INTO audit (at, kind, actor, user, fingerprint, source, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            at,
            e.kind,
            e.actor,
            e.user,
            e.fingerprint,
            e.source,
            e.detail.to_string()
        ],
    )
    .map_err(db)?;
    Ok(())
}

/// Audit an admin change and bump the revision, inside the caller's transaction.
/// Insert a checked new key and audit it as `kind` (inside `tx`).
fn insert_key_in(
    tx: &Transaction<'_>,
    key: &NewKey,
    valid: &crate::validate::ValidKey,
    device: &pra_proto::api::Device,
    actor: &Actor,
    now: Timestamp,
    kind: &str,
) -> StoreResult<KeyRecord> {
    let approved = key.status == KeyStatus::Approved;
    let approved_by = approved.then(|| actor.to_string());
    let approved_at = approved.then_some(now);
    tx.execute(
        &format!(
            "INSERT INTO keys ({KEY_COLS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, NULL, NULL, NULL)"
        ),
        params![
            key.fingerprint,
            key.user,
            valid.line,
            key.algorithm,
            device.computer,
            device.os_user,
            device.description,
            device.tag,
            key.status.as_str(),
            now,
            approved_by,
            approved_at,
        ],
    )
    .map_err(db)?;
    let mut e = event(kind, actor, Some(&key.user), Some(&key.fingerprint));
    e.detail = serde_json::json!({
        "status": key.status.as_str(),
        "algorithm": key.algorithm,
        "computer": device.computer,
    });
    admin_change(tx, now, e)?;
    get_key_in(tx, &key.fingerprint)?.ok_or_else(|| {
        RegistryError::Database("the new key vanished inside its transaction".into())
    })
}

fn admin_change(tx: &Transaction<'_>, at: Timestamp, e: AuditEvent) -> StoreResult<()> {
    insert_audit(tx, at, &e)?;
    tx.execute(
        "UPDATE meta SET value = value + 1 WHERE key = 'revision'",
        [],
    )
    .map_err(db)?;
    Ok(())
}

fn add_user_in(
    tx: &Transaction<'_>,
    name: &str,
    actor: &Actor,
    now: Timestamp,
    via: Option<&str>,
) -> StoreResult<User> {
    validate::user_name(name)?;
    if get_user_in(tx, name)?.is_some() {
        return Err(RegistryError::Conflict(format!(
            "user {name} already exists"
        )));
    }
    tx.execute(
        "INSERT INTO users (name, enabled, created_at) VALUES (?1, 1, ?2)",
        params![name, now],
    )
    .map_err(db)?;
    let mut e = event("user.add", actor, Some(name), None);
    if let Some(via) = via {
        e.detail = serde_json::json!({ "via": via });
    }
    admin_change(tx, now, e)?;
    Ok(User {
        name: name.to_string(),
        enabled: true,
        created_at: now,
    })
}

impl Store for SqliteStore {
    fn add_user(&self, name: &str, actor: &Actor) -> StoreResult<User> {
        self.write(|tx| add_user_in(tx, name, actor, now(), None))
    }

    fn get_user(&self, name: &str) -> StoreResult<Option<User>> {
        self.read(|c| get_user_in(c, name))
    }

    fn list_users(&self) -> StoreResult<Vec<User>> {
        self.read(|c| {
            let mut stmt = c
                .prepare(&format!("SELECT {USER_COLS} FROM users ORDER BY name"))
                .map_err(db)?;
            let rows = stmt.query_map([], user_row).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    fn set_user_enabled(&self, name: &str, enabled: bool, actor: &Actor) -> StoreResult<User> {
        self.write(|tx| {
            let mut user = get_user_in(tx, name)?
                .ok_or_else(|| RegistryError::NotFound(format!("no user named {name}")))?;
            if user.enabled == enabled {
                return Ok(user);
            }
            tx.execute(
                "UPDATE users SET enabled = ?1 WHERE name = ?2",
                params![enabled, name],
            )
            .map_err(db)?;
            let kind = if enabled {
                "user.enable"
            } else {
                "user.disable"
            };
            admin_change(tx, now(), event(kind, actor, Some(name), None))?;
            user.enabled = enabled;
            Ok(user)
        })
    }

    fn add_key(
        &self,
        key: NewKey,
        create_user: bool,
        actor: &Actor,
    ) -> StoreResult<(KeyRecord, bool)> {
        let (valid, device) = checks::new_key(&key)?;
        self.write(|tx| {
            let now = now();
            if let Some(existing) = get_key_in(tx, &key.fingerprint)? {
                if existing.user == key.user {
                    return Ok((existing, false));
                }
                return Err(RegistryError::Conflict(format!(
                    "key {} is already registered to another user",
                    key.fingerprint
                )));
            }
            if get_user_in(tx, &key.user)?.is_none() {
                if create_user {
                    add_user_in(tx, &key.user, actor, now, Some("key.import"))?;
                } else {
                    return Err(RegistryError::NotFound(format!(
                        "no user named {}",
                        key.user
                    )));
                }
            }
            if matches!(actor, Actor::Submitter(_)) && key.status == KeyStatus::Pending {
                let pending: i64 = tx
                    .query_row(
                        "SELECT count(*) FROM keys WHERE user = ?1 AND status = 'pending'",
                        [&key.user],
                        |r| r.get(0),
                    )
                    .map_err(db)?;
                if pending >= MAX_PENDING_PER_USER as i64 {
                    return Err(checks::too_many_pending(&key.user));
                }
            }
            let kind = match actor {
                Actor::Submitter(_) => "key.submit",
                _ => "key.import",
            };
            let record = insert_key_in(tx, &key, &valid, &device, actor, now, kind)?;
            Ok((record, true))
        })
    }

    fn note_unknown_submission(
        &self,
        fingerprint: &str,
        user: &str,
        actor: &Actor,
    ) -> StoreResult<()> {
        validate::fingerprint(fingerprint)?;
        validate::user_name(user)?;
        self.write(|tx| {
            let now = now();
            tx.execute(
                "DELETE FROM unknown_submissions WHERE submitted_at < ?1",
                [now - UNKNOWN_SUBMISSION_KEEP_SECS],
            )
            .map_err(db)?;
            let (seen, count): (bool, i64) = tx
                .query_row(
                    "SELECT coalesce(max(fingerprint = ?1), 0), count(*) \
                     FROM unknown_submissions WHERE user = ?2",
                    params![fingerprint, user],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(db)?;
            if !seen && count >= MAX_PENDING_PER_USER as i64 {
                return Err(checks::too_many_pending(user));
            }
            tx.execute(
                "INSERT INTO unknown_submissions (fingerprint, user, submitted_at) \
                 VALUES (?1, ?2, ?3) ON CONFLICT (fingerprint, user) \
                 DO UPDATE SET submitted_at = excluded.submitted_at",
                params![fingerprint, user, now],
            )
            .map_err(db)?;
            insert_audit(
                tx,
                now,
                &event(
                    "key.submit.unknown_user",
                    actor,
                    Some(user),
                    Some(fingerprint),
                ),
            )
        })
    }

    fn unknown_submission(&self, fingerprint: &str, user: &str) -> StoreResult<bool> {
        self.read(|c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM unknown_submissions \
                 WHERE fingerprint = ?1 AND user = ?2 AND submitted_at >= ?3)",
                params![fingerprint, user, now() - UNKNOWN_SUBMISSION_KEEP_SECS],
                |r| r.get(0),
            )
            .map_err(db)
        })
    }

    fn get_key(&self, fingerprint: &str) -> StoreResult<Option<KeyRecord>> {
        self.read(|c| get_key_in(c, fingerprint))
    }

    fn list_keys(&self, status: Option<KeyStatus>) -> StoreResult<Vec<KeyRecord>> {
        self.read(|c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {KEY_COLS} FROM keys WHERE ?1 IS NULL OR status = ?1 \
                     ORDER BY submitted_at DESC, fingerprint"
                ))
                .map_err(db)?;
            let rows = stmt
                .query_map([status.map(KeyStatus::as_str)], key_row)
                .map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    fn set_key_status(
        &self,
        fingerprint: &str,
        status: KeyStatus,
        actor: &Actor,
    ) -> StoreResult<KeyRecord> {
        self.write(|tx| {
            let key = get_key_in(tx, fingerprint)?
                .ok_or_else(|| RegistryError::NotFound(format!("no key {fingerprint}")))?;
            if key.status == status {
                return Ok(key);
            }
            let now = now();
            let who = actor.to_string();
            let kind = checks::transition(fingerprint, key.status, status)?;
            let sql = if status == KeyStatus::Approved {
                "UPDATE keys SET status = 'approved', approved_by = ?1, approved_at = ?2 \
                 WHERE fingerprint = ?3"
            } else {
                "UPDATE keys SET status = 'revoked', revoked_by = ?1, revoked_at = ?2 \
                 WHERE fingerprint = ?3"
            };
            tx.execute(sql, params![who, now, fingerprint])
                .map_err(db)?;
            let mut e = event(kind, actor, Some(&key.user), Some(fingerprint));
            e.detail = serde_json::json!({ "from": key.status.as_str() });
            admin_change(tx, now, e)?;
            get_key_in(tx, fingerprint)?
                .ok_or_else(|| RegistryError::NotFound(format!("no key {fingerprint}")))
        })
    }

    fn add_rule(&self, rule: RuleRecord, actor: &Actor) -> StoreResult<RuleRecord> {
        let rule = validate::rule(
            &rule.user,
            &rule.name,
            i64::from(rule.local_port),
            &rule.target_host,
            i64::from(rule.target_port),
        )?;
        self.write(|tx| {
            if get_user_in(tx, &rule.user)?.is_none() {
                return Err(RegistryError::NotFound(format!("no user named {}", rule.user)));
            }
            let clash: Option<(String, i64)> = tx
                .query_row(
                    "SELECT name, local_port FROM rules WHERE user = ?1 AND (name = ?2 OR local_port = ?3)",
                    params![rule.user, rule.name, rule.local_port],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db)?;
            if let Some((name, port)) = clash {
                return Err(RegistryError::Conflict(if name == rule.name {
                    format!("user {} already has a rule named {name}", rule.user)
                } else {
                    format!(
                        "user {} already uses local port {port} (rule {name})",
                        rule.user
                    )
                }));
            }
            let now = now();
            tx.execute(
                "INSERT INTO rules (user, name, local_port, target_host, target_port, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    rule.user,
                    rule.name,
                    rule.local_port,
                    rule.target_host,
                    rule.target_port,
                    now
                ],
            )
            .map_err(db)?;
            let mut e = event("rule.add", actor, Some(&rule.user), None);
            e.detail = serde_json::json!({
                "rule": rule.name,
                "local_port": rule.local_port,
                "target_host": rule.target_host,
                "target_port": rule.target_port,
            });
            admin_change(tx, now, e)?;
            Ok(rule)
        })
    }

    fn list_rules(&self, user: Option<&str>) -> StoreResult<Vec<RuleRecord>> {
        self.read(|c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {RULE_COLS} FROM rules WHERE ?1 IS NULL OR user = ?1 \
                     ORDER BY user, local_port"
                ))
                .map_err(db)?;
            let rows = stmt.query_map([user], rule_row).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    fn remove_rule(&self, user: &str, name: &str, actor: &Actor) -> StoreResult<()> {
        self.write(|tx| {
            let rule: Option<RuleRecord> = tx
                .query_row(
                    &format!("SELECT {RULE_COLS} FROM rules WHERE user = ?1 AND name = ?2"),
                    params![user, name],
                    rule_row,
                )
                .optional()
                .map_err(db)?;
            let Some(rule) = rule else {
                return Err(RegistryError::NotFound(format!(
                    "user {user} has no rule named {name}"
                )));
            };
            tx.execute(
                "DELETE FROM rules WHERE user = ?1 AND name = ?2",
                params![user, name],
            )
            .map_err(db)?;
            let mut e = event("rule.remove", actor, Some(user), None);
            e.detail = serde_json::json!({
                "rule": rule.name,
                "local_port": rule.local_port,
                "target_host": rule.target_host,
                "target_port": rule.target_port,
            });
            admin_change(tx, now(), e)
        })
    }

    fn add_token_until(
        &self,
        name: &str,
        token_hash: &str,
        expires_at: Option<Timestamp>,
        actor: &Actor,
    ) -> StoreResult<TokenRecord> {
        checks::token(name, token_hash)?;
        self.write(|tx| {
            let exists: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM tokens WHERE name = ?1)",
                    [name],
                    |r| r.get(0),
                )
                .map_err(db)?;
            if exists {
                return Err(RegistryError::Conflict(format!(
                    "a token named {name} already exists"
                )));
            }
            let now = now();
            tx.execute(
                "INSERT INTO tokens (name, token_hash, created_at, created_by, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![name, token_hash, now, actor.to_string(), expires_at],
            )
            .map_err(db)?;
            let mut e = event("token.create", actor, None, None);
            e.detail = checks::token_detail(name, expires_at);
            admin_change(tx, now, e)?;
            Ok(TokenRecord {
                name: name.to_string(),
                created_at: now,
                last_used: None,
                expires_at,
            })
        })
    }

    fn use_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        self.write(|tx| {
            let now = now();
            let found: Option<TokenRecord> = tx
                .query_row(
                    &format!(
                        "SELECT {TOKEN_COLS} FROM tokens WHERE token_hash = ?1 \
                         AND (expires_at IS NULL OR expires_at > ?2)"
                    ),
                    params![token_hash, now],
                    token_row,
                )
                .optional()
                .map_err(db)?;
            let Some(mut token) = found else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE tokens SET last_used = ?1 WHERE token_hash = ?2",
                params![now, token_hash],
            )
            .map_err(db)?;
            token.last_used = Some(now);
            Ok(Some(token))
        })
    }

    fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        self.read(|c| {
            let mut stmt = c
                .prepare(&format!("SELECT {TOKEN_COLS} FROM tokens ORDER BY name"))
                .map_err(db)?;
            let rows = stmt.query_map([], token_row).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    fn revoke_token(&self, name: &str, actor: &Actor) -> StoreResult<TokenRecord> {
        self.write(|tx| {
            let token = tx
                .query_row(
                    &format!("SELECT {TOKEN_COLS} FROM tokens WHERE name = ?1"),
                    [name],
                    token_row,
                )
                .optional()
                .map_err(db)?
                .ok_or_else(|| RegistryError::NotFound(format!("no token named {name}")))?;
            tx.execute("DELETE FROM tokens WHERE name = ?1", [name])
                .map_err(db)?;
            let mut e = event("token.revoke", actor, None, None);
            e.detail = serde_json::json!({ "token": name });
            admin_change(tx, now(), e)?;
            Ok(token)
        })
    }

    fn add_invite(&self, invite: &NewInvite, actor: &Actor) -> StoreResult<InviteRecord> {
        checks::invite(invite)?;
        self.write(|tx| {
            if get_user_in(tx, &invite.user)?.is_none() {
                return Err(RegistryError::NotFound(format!(
                    "no user named {} (add it first: `pra-registry user add {}`)",
                    invite.user, invite.user
                )));
            }
            if get_invite_in(tx, &invite.id)?.is_some() {
                return Err(RegistryError::Conflict(format!(
                    "an invite with id {} already exists",
                    invite.id
                )));
            }
            let now = now();
            let gateways = serde_json::to_string(&invite.gateways)
                .map_err(|e| RegistryError::Database(e.to_string()))?;
            tx.execute(
                "INSERT INTO invites (id, user, secret_hash, gateways, approve, created_at, \
                 created_by, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    invite.id,
                    invite.user,
                    invite.secret_hash,
                    gateways,
                    invite.approve,
                    now,
                    actor.to_string(),
                    invite.expires_at
                ],
            )
            .map_err(db)?;
            let mut e = event("invite.create", actor, Some(&invite.user), None);
            e.detail = checks::invite_detail(invite);
            admin_change(tx, now, e)?;
            get_invite_in(tx, &invite.id)?
                .ok_or_else(|| RegistryError::Database("the new invite vanished".into()))
        })
    }

    fn list_invites(&self) -> StoreResult<Vec<InviteRecord>> {
        self.read(|c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {INVITE_COLS} FROM invites ORDER BY created_at DESC, id"
                ))
                .map_err(db)?;
            let rows = stmt.query_map([], invite_row).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    fn revoke_invite(&self, id: &str, actor: &Actor) -> StoreResult<InviteRecord> {
        checks::invite_id(id)?;
        self.write(|tx| {
            let invite = get_invite_in(tx, id)?
                .ok_or_else(|| RegistryError::NotFound(format!("no invite with id {id}")))?;
            checks::revocable(&invite)?;
            let now = now();
            tx.execute(
                "UPDATE invites SET revoked_at = ?1 WHERE id = ?2",
                params![now, id],
            )
            .map_err(db)?;
            let mut e = event("invite.revoke", actor, Some(&invite.user), None);
            e.detail = serde_json::json!({ "invite": id });
            admin_change(tx, now, e)?;
            Ok(InviteRecord {
                revoked_at: Some(now),
                ..invite
            })
        })
    }

    fn redeem_invite(
        &self,
        id: &str,
        secret_hash: &str,
        key: NewKey,
        actor: &Actor,
    ) -> StoreResult<Result<KeyRecord, InviteRefusal>> {
        if checks::invite_id(id).is_err() {
            return Ok(Err(InviteRefusal::Unknown));
        }
        self.write(|tx| {
            let now = now();
            let found = match get_invite_in(tx, id)? {
                Some(invite) => {
                    let hash: String = tx
                        .query_row("SELECT secret_hash FROM invites WHERE id = ?1", [id], |r| {
                            r.get(0)
                        })
                        .map_err(db)?;
                    Some((invite, hash))
                }
                None => None,
            };
            let invite = match checks::redeemable(found, secret_hash, now) {
                Ok(invite) => invite,
                Err(refusal) => return Ok(Err(refusal)),
            };
            let key = NewKey {
                user: invite.user.clone(),
                status: if invite.approve {
                    KeyStatus::Approved
                } else {
                    KeyStatus::Pending
                },
                ..key
            };
            let (valid, device) = checks::new_key(&key)?;
            if get_key_in(tx, &key.fingerprint)?.is_some() {
                return Err(RegistryError::Conflict(format!(
                    "key {} is already registered",
                    key.fingerprint
                )));
            }
            let record = insert_key_in(tx, &key, &valid, &device, actor, now, "key.enroll")?;
            tx.execute(
                "UPDATE invites SET used_at = ?1, used_fingerprint = ?2 WHERE id = ?3",
                params![now, key.fingerprint, id],
            )
            .map_err(db)?;
            Ok(Ok(record))
        })
    }

    fn login_facts(&self, user: &str, fingerprint: &str) -> StoreResult<LoginFacts> {
        self.read(|c| {
            Ok(LoginFacts {
                key: get_key_in(c, fingerprint)?,
                user: get_user_in(c, user)?,
            })
        })
    }

    fn allowed_keys(&self) -> StoreResult<Vec<(String, String)>> {
        self.read(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT k.fingerprint, k.user FROM keys k JOIN users u ON u.name = k.user \
                     WHERE k.status = 'approved' AND u.enabled = 1 ORDER BY k.user, k.fingerprint",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    fn revision(&self) -> StoreResult<i64> {
        self.read(|c| {
            c.query_row("SELECT value FROM meta WHERE key = 'revision'", [], |r| {
                r.get(0)
            })
            .map_err(db)
        })
    }

    fn subscribe(&self) -> watch::Receiver<Change> {
        let mut feed = self.feed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = feed.as_ref() {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(Change::unknown());
        let poller = Poller {
            path: self.path.clone(),
            tx: tx.clone(),
            stop: Arc::clone(&self.stop),
        };
        let spawned = std::thread::Builder::new()
            .name("pra-sqlite-feed".into())
            .spawn(move || poller.run());
        if let Err(e) = spawned {
            tx.send_replace(Change {
                error: Some(format!("cannot start the revision poller: {e}")),
                ..Change::unknown()
            });
        }
        *feed = Some(tx);
        rx
    }

    fn session_open(&self, session: &NewSession) -> StoreResult<i64> {
        checks::session(session)?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO sessions (gateway, user, fingerprint, source, started_at, heartbeat_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![
                    session.gateway,
                    session.user,
                    session.fingerprint,
                    session.source,
                    session.started_at
                ],
            )
            .map_err(db)?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn session_progress(&self, at: Timestamp, updates: &[SessionProgress]) -> StoreResult<()> {
        if updates.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE sessions SET bytes_up = ?1, bytes_down = ?2, heartbeat_at = ?3 \
                     WHERE id = ?4 AND ended_at IS NULL",
                )
                .map_err(db)?;
            for u in updates {
                stmt.execute(params![bytes(u.bytes_up), bytes(u.bytes_down), at, u.id])
                    .map_err(db)?;
            }
            Ok(())
        })
    }

    fn session_close(
        &self,
        progress: SessionProgress,
        at: Timestamp,
        reason: &str,
    ) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE sessions SET bytes_up = ?1, bytes_down = ?2, heartbeat_at = ?3, \
                 ended_at = ?3, end_reason = ?4 WHERE id = ?5 AND ended_at IS NULL",
                params![
                    bytes(progress.bytes_up),
                    bytes(progress.bytes_down),
                    at,
                    reason,
                    progress.id
                ],
            )
            .map_err(db)?;
            Ok(())
        })
    }

    fn list_live_sessions(&self) -> StoreResult<Vec<SessionRecord>> {
        self.read(|c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {SESSION_COLS} FROM sessions \
                     WHERE ended_at IS NULL AND heartbeat_at >= ?1 ORDER BY started_at, id"
                ))
                .map_err(db)?;
            let rows = stmt
                .query_map([now() - SESSION_STALE_SECS], session_row)
                .map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    fn get_session(&self, id: i64) -> StoreResult<Option<SessionRecord>> {
        self.read(|c| get_session_in(c, id))
    }

    fn request_disconnect(&self, id: i64, actor: &Actor) -> StoreResult<SessionRecord> {
        self.write(|tx| {
            let now = now();
            let session = get_session_in(tx, id)?
                .filter(|s| s.ended_at.is_none() && s.heartbeat_at >= now - SESSION_STALE_SECS)
                .ok_or_else(|| RegistryError::NotFound(format!("no live session {id}")))?;
            if session.disconnect_requested_at.is_some() {
                return Ok(session);
            }
            tx.execute(
                "UPDATE sessions SET disconnect_requested_by = ?1, disconnect_requested_at = ?2 \
                 WHERE id = ?3",
                params![actor.to_string(), now, id],
            )
            .map_err(db)?;
            let mut e = event(
                "session.disconnect",
                actor,
                Some(&session.user),
                Some(&session.fingerprint),
            );
            e.source = Some(session.source.clone());
            e.detail = serde_json::json!({ "session": id, "gateway": session.gateway });
            admin_change(tx, now, e)?;
            get_session_in(tx, id)?
                .ok_or_else(|| RegistryError::NotFound(format!("no live session {id}")))
        })
    }

    fn disconnect_requests(&self, gateway: &str) -> StoreResult<Vec<i64>> {
        self.read(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT id FROM sessions WHERE gateway = ?1 AND ended_at IS NULL \
                     AND disconnect_requested_at IS NOT NULL ORDER BY id",
                )
                .map_err(db)?;
            let rows = stmt.query_map([gateway], |r| r.get(0)).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }

    fn end_gateway_sessions(&self, gateway: &str, at: Timestamp, reason: &str) -> StoreResult<u64> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE sessions SET ended_at = ?1, end_reason = ?2 \
                     WHERE gateway = ?3 AND ended_at IS NULL",
                    params![at, reason, gateway],
                )
                .map_err(db)?;
            tx.execute(
                "DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ?1",
                [at - SESSION_KEEP_SECS],
            )
            .map_err(db)?;
            Ok(n as u64)
        })
    }

    fn record(&self, event: &AuditEvent) -> StoreResult<()> {
        self.write(|tx| insert_audit(tx, now(), event))
    }

    fn record_background(&self, writes: &BackgroundWrites) -> StoreResult<()> {
        // insert_audit checks each event; a refused one rolls the group back.
        self.write(|tx| {
            for e in &writes.events {
                insert_audit(tx, now(), e)?;
            }
            let mut seen = tx
                .prepare_cached(
                    "UPDATE keys SET last_seen = max(coalesce(last_seen, ?1), ?1) \
                     WHERE fingerprint = ?2",
                )
                .map_err(db)?;
            for (fingerprint, at) in &writes.last_seen {
                seen.execute(params![at, fingerprint]).map_err(db)?;
            }
            Ok(())
        })
    }

    fn prune_audit(&self, before: Timestamp, batch: u32) -> StoreResult<u64> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "DELETE FROM audit WHERE id IN \
                     (SELECT id FROM audit WHERE at < ?1 ORDER BY at, id LIMIT ?2)",
                    params![before, batch],
                )
                .map_err(db)?;
            Ok(n as u64)
        })
    }

    fn audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        let limit = checks::audit_limit(query.limit);
        self.read(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT id, at, kind, actor, user, fingerprint, source, detail FROM audit \
                     WHERE (?1 IS NULL OR user = ?1) \
                       AND (?2 IS NULL OR substr(kind, 1, length(?2)) = ?2) \
                       AND (?3 IS NULL OR id < ?3) \
                     ORDER BY id DESC LIMIT ?4",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map(
                    params![query.user, query.kind_prefix, query.before_id, limit],
                    |r| {
                        let detail: String = r.get(7)?;
                        Ok(AuditEntry {
                            id: r.get(0)?,
                            at: r.get(1)?,
                            event: AuditEvent {
                                kind: r.get(2)?,
                                actor: r.get(3)?,
                                user: r.get(4)?,
                                fingerprint: r.get(5)?,
                                source: r.get(6)?,
                                detail: serde_json::from_str(&detail)
                                    .unwrap_or(serde_json::Value::String(detail)),
                            },
                        })
                    },
                )
                .map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::validate::tests::ed25519_line;

    fn cli() -> Actor {
        Actor::Cli("root".into())
    }

    fn new_key(seed: u8, user: &str, status: KeyStatus) -> NewKey {
        let v = validate::public_key(&ed25519_line(seed, "k")).unwrap();
        NewKey {
            fingerprint: v.fingerprint,
            user: user.into(),
            public_key: v.line,
            algorithm: v.algorithm,
            device: Device {
                computer: "PC-01".into(),
                ..Device::default()
            },
            status,
        }
    }

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        (dir, s)
    }

    #[test]
    fn users_keys_rules_round_trip_with_audit_and_revision() {
        let (_d, s) = store();
        assert_eq!(s.revision().unwrap(), 0);
        s.add_user("alice", &cli()).unwrap();
        assert!(matches!(
            s.add_user("alice", &cli()),
            Err(RegistryError::Conflict(_))
        ));
        assert_eq!(s.revision().unwrap(), 1);

        let (k, created) = s
            .add_key(
                new_key(1, "alice", KeyStatus::Pending),
                false,
                &Actor::Submitter("10.0.0.1:5000".into()),
            )
            .unwrap();
        assert!(created);
        assert_eq!(k.status, KeyStatus::Pending);
        let (again, created) = s
            .add_key(new_key(1, "alice", KeyStatus::Pending), false, &cli())
            .unwrap();
        assert!(!created);
        assert_eq!(again, k);
        assert!(s.allowed_keys().unwrap().is_empty());

        let k = s
            .set_key_status(&k.fingerprint, KeyStatus::Approved, &cli())
            .unwrap();
        assert_eq!(k.approved_by.as_deref(), Some("cli:root"));
        assert_eq!(
            s.allowed_keys().unwrap(),
            vec![(k.fingerprint.clone(), "alice".into())]
        );
        s.set_user_enabled("alice", false, &cli()).unwrap();
        assert!(s.allowed_keys().unwrap().is_empty());
        s.set_user_enabled("alice", true, &cli()).unwrap();

        s.record_background(&BackgroundWrites {
            events: Vec::new(),
            last_seen: vec![(k.fingerprint.clone(), 1234)],
        })
        .unwrap();
        let facts = s.login_facts("alice", &k.fingerprint).unwrap();
        assert_eq!(facts.key.unwrap().last_seen, Some(1234));
        assert!(facts.user.unwrap().enabled);

        let r = s
            .add_rule(
                RuleRecord {
                    user: "alice".into(),
                    name: "smtp".into(),
                    local_port: 10025,
                    target_host: "[::1]".into(),
                    target_port: 25,
                },
                &cli(),
            )
            .unwrap();
        assert_eq!(r.target_host, "::1");
        assert_eq!(s.list_rules(Some("alice")).unwrap(), vec![r]);
        s.remove_rule("alice", "smtp", &cli()).unwrap();
        assert!(s.list_rules(None).unwrap().is_empty());

        let revoked = s
            .set_key_status(&k.fingerprint, KeyStatus::Revoked, &cli())
            .unwrap();
        assert_eq!(revoked.revoked_by.as_deref(), Some("cli:root"));
        assert!(matches!(
            s.set_key_status(&k.fingerprint, KeyStatus::Approved, &cli()),
            Err(RegistryError::Conflict(_))
        ));

        let kinds: Vec<String> = s
            .audit(&AuditQuery::default())
            .unwrap()
            .into_iter()
            .map(|e| e.event.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                "key.revoke",
                "rule.remove",
                "rule.add",
                "user.enable",
                "user.disable",
                "key.approve",
                "key.submit",
                "user.add"
            ]
        );
        // every admin change bumped the revision once; a login did not
        assert_eq!(s.revision().unwrap(), 8);
        let submit = s
            .audit(&AuditQuery {
                kind_prefix: Some("key.sub".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(submit.len(), 1);
        assert_eq!(submit[0].event.source.as_deref(), Some("10.0.0.1:5000"));
        let page = s
            .audit(&AuditQuery {
                limit: 2,
                ..Default::default()
            })
            .unwrap();
        let next = s
            .audit(&AuditQuery {
                limit: 2,
                before_id: Some(page[1].id),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(next[0].event.kind, "rule.add");
    }

    #[test]
    fn refusals_change_nothing() {
        let (_d, s) = store();
        s.add_user("alice", &cli()).unwrap();
        s.add_user("bob", &cli()).unwrap();
        s.add_key(new_key(1, "alice", KeyStatus::Pending), false, &cli())
            .unwrap();
        s.add_rule(
            RuleRecord {
                user: "alice".into(),
                name: "smtp".into(),
                local_port: 10025,
                target_host: "mail".into(),
                target_port: 25,
            },
            &cli(),
        )
        .unwrap();
        let rev = s.revision().unwrap();
        let audit = s.audit(&AuditQuery::default()).unwrap().len();
        let rule = |name: &str, port: u16, host: &str, user: &str| RuleRecord {
            user: user.into(),
            name: name.into(),
            local_port: port,
            target_host: host.into(),
            target_port: 25,
        };

        let errors: Vec<RegistryError> = vec![
            s.add_key(new_key(1, "bob", KeyStatus::Pending), false, &cli())
                .unwrap_err(),
            s.add_key(new_key(2, "nobody", KeyStatus::Pending), false, &cli())
                .unwrap_err(),
            s.add_key(new_key(2, "alice", KeyStatus::Revoked), false, &cli())
                .unwrap_err(),
            s.add_key(
                NewKey {
                    public_key: ed25519_line(9, "x"),
                    ..new_key(2, "alice", KeyStatus::Pending)
                },
                false,
                &cli(),
            )
            .unwrap_err(),
            s.add_rule(rule("smtp", 10026, "mail", "alice"), &cli())
                .unwrap_err(),
            s.add_rule(rule("imap", 10025, "mail", "alice"), &cli())
                .unwrap_err(),
            s.add_rule(rule("imap", 10026, "mail", "nobody"), &cli())
                .unwrap_err(),
            s.add_rule(rule("imap", 0, "mail", "alice"), &cli())
                .unwrap_err(),
            s.add_rule(rule("imap", 10026, "", "alice"), &cli())
                .unwrap_err(),
            s.add_rule(rule("imap", 10026, "a b", "alice"), &cli())
                .unwrap_err(),
            s.add_rule(rule("imap", 10026, "a\0b", "alice"), &cli())
                .unwrap_err(),
            s.add_rule(rule("imap", 10026, &"a".repeat(254), "alice"), &cli())
                .unwrap_err(),
            s.remove_rule("alice", "nope", &cli()).unwrap_err(),
            s.set_user_enabled("nobody", false, &cli()).unwrap_err(),
            s.add_user("bad name", &cli()).unwrap_err(),
            s.set_key_status("SHA256:none", KeyStatus::Approved, &cli())
                .unwrap_err(),
            s.add_token("t", "short", &cli()).unwrap_err(),
        ];
        assert_eq!(errors.len(), 17);
        assert_eq!(s.revision().unwrap(), rev);
        assert_eq!(s.audit(&AuditQuery::default()).unwrap().len(), audit);
        assert_eq!(s.list_keys(None).unwrap().len(), 1);
        assert_eq!(s.list_rules(None).unwrap().len(), 1);
        assert_eq!(s.list_users().unwrap().len(), 2);
        assert!(matches!(errors[0], RegistryError::Conflict(_)));
        assert!(matches!(errors[1], RegistryError::NotFound(_)));
        assert!(matches!(errors[4], RegistryError::Conflict(_)));
        assert!(matches!(errors[5], RegistryError::Conflict(_)));
        assert!(matches!(errors[6], RegistryError::NotFound(_)));
    }

    #[test]
    fn create_user_on_import() {
        let (_d, s) = store();
        let (k, _) = s
            .add_key(new_key(3, "carol", KeyStatus::Approved), true, &cli())
            .unwrap();
        assert_eq!(k.status, KeyStatus::Approved);
        assert_eq!(k.approved_by.as_deref(), Some("cli:root"));
        assert!(s.get_user("carol").unwrap().unwrap().enabled);
        assert_eq!(s.allowed_keys().unwrap().len(), 1);
    }

    #[test]
    fn tokens_are_found_by_hash_and_marked_used() {
        let (_d, s) = store();
        let hash = "a".repeat(64);
        s.add_token("ci", &hash, &cli()).unwrap();
        assert!(matches!(
            s.add_token("ci", &"b".repeat(64), &cli()),
            Err(RegistryError::Conflict(_))
        ));
        assert!(s.use_token(&"c".repeat(64)).unwrap().is_none());
        let t = s.use_token(&hash).unwrap().unwrap();
        assert_eq!(t.name, "ci");
        assert!(t.last_used.is_some());
    }

    #[test]
    fn reopens_and_survives_a_second_connection() {
        let dir = tempfile::tempdir().unwrap();
        let a = SqliteStore::open(dir.path()).unwrap();
        let b = SqliteStore::open(dir.path()).unwrap();
        a.add_user("alice", &cli()).unwrap();
        assert!(b.get_user("alice").unwrap().is_some());
        b.add_user("bob", &cli()).unwrap();
        assert_eq!(a.revision().unwrap(), 2);
        drop((a, b));
        let c = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(c.list_users().unwrap().len(), 2);
    }

    #[test]
    fn many_threads_share_one_store() {
        let (_d, s) = store();
        let s = std::sync::Arc::new(s);
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for j in 0..10 {
                        s.add_user(&format!("u{i}-{j}"), &cli()).unwrap();
                        s.revision().unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(s.list_users().unwrap().len(), 80);
        assert_eq!(s.revision().unwrap(), 80);
    }

    fn refused_untouched(dir: &Path, contents: Option<&[u8]>, word: &str) {
        let err = SqliteStore::open(dir).unwrap_err().to_string();
        assert!(err.contains(word), "{err}");
        assert!(err.contains("left untouched"), "{err}");
        if let Some(c) = contents {
            assert_eq!(std::fs::read(dir.join(DB_FILE)).unwrap(), c);
        }
    }

    #[test]
    fn refuses_unusable_files_and_leaves_them_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);

        std::fs::write(&path, b"").unwrap();
        refused_untouched(dir.path(), Some(b""), "empty");

        let garbage =
            b"this is not a database at all, just some text that is long enough".repeat(100);
        std::fs::write(&path, &garbage).unwrap();
        refused_untouched(dir.path(), Some(&garbage), "not a usable SQLite database");

        std::fs::remove_file(&path).unwrap();
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("CREATE TABLE photos (id INTEGER); INSERT INTO photos VALUES (1);")
                .unwrap();
        }
        let foreign = std::fs::read(&path).unwrap();
        refused_untouched(dir.path(), Some(&foreign), "not a PRA registry");

        std::fs::remove_file(&path).unwrap();
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("PRAGMA application_id = 1234;").unwrap();
        }
        refused_untouched(dir.path(), None, "another program");

        std::fs::remove_file(&path).unwrap();
        {
            let s = SqliteStore::open(dir.path()).unwrap();
            s.lock()
                .unwrap()
                .execute_batch("PRAGMA user_version = 99;")
                .unwrap();
        }
        refused_untouched(dir.path(), None, "newer pra-registry");

        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        refused_untouched(dir.path(), None, "not a regular file");
    }

    #[test]
    fn refuses_a_damaged_database() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SqliteStore::open(dir.path()).unwrap();
            for i in 0..300 {
                s.add_user(&format!("user{i:03}"), &cli()).unwrap();
            }
        }
        let path = dir.path().join(DB_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        assert!(
            bytes.len() > 4 * 4096,
            "database too small to damage: {}",
            bytes.len()
        );
        let page = 4096;
        for b in &mut bytes[page + 100..3 * page] {
            *b = 0xa5;
        }
        std::fs::write(&path, &bytes).unwrap();
        refused_untouched(dir.path(), Some(&bytes), "");
    }
}
