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

use super::registry::{Backend, Feed, Mode, REVISION, Row, Step, Tx, Val};
use super::{Change, Store, StoreResult};
use crate::error::RegistryError;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// File name of the database inside the data folder.
pub const DB_FILE: &str = "registry.db";
/// `PRAGMA application_id` of PRA registry databases ("PRA1").
pub const APPLICATION_ID: i32 = 0x5052_4131;
/// How long a statement waits for another process's write lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How often [`Store::subscribe`] reads the revision.
pub const FEED_POLL: Duration = Duration::from_millis(250);

/// Schema migrations; `MIGRATIONS[i]` brings the schema from `i` to `i + 1`
/// (SQLite: `user_version`). PostgreSQL runs them translated to its types.
pub(super) const MIGRATIONS: &[&str] = &[
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
    r#"
CREATE TABLE web_sessions (
    id_hash       TEXT PRIMARY KEY NOT NULL CHECK (length(id_hash) = 64),
    token_name    TEXT NOT NULL,
    token_hash    TEXT NOT NULL,
    csrf          TEXT NOT NULL,
    secure        INTEGER NOT NULL CHECK (secure IN (0, 1)),
    created_ms    INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    flash_error   INTEGER CHECK (flash_error IN (0, 1)),
    flash_text    TEXT
) STRICT;
CREATE INDEX web_sessions_by_last_seen ON web_sessions(last_seen_ms);
"#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

fn db(e: rusqlite::Error) -> RegistryError {
    RegistryError::Database(e.to_string())
}

/// The SQLite database under [`Store::sqlite`]: one connection behind a mutex.
#[derive(Debug)]
pub struct Sqlite {
    conn: Mutex<Connection>,
    path: PathBuf,
    feed: Feed,
    /// Tells the feed's poller thread to end (set when the store is dropped).
    stop: Arc<AtomicBool>,
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Store {
    /// Open (or, when the folder holds no database yet, create) the SQLite
    /// registry database in `data_dir`.
    pub fn sqlite(data_dir: &Path) -> StoreResult<Store> {
        let path = data_dir.join(DB_FILE);
        let shown = path.display().to_string();
        let refuse = |reason: String| {
            RegistryError::Database(format!(
                "{shown}: {reason}; it was left untouched (restore it from a backup, or move it \
                 away to start an empty registry)"
            ))
        };
        crate::private_files::create_dir(data_dir).map_err(|e| {
            RegistryError::Database(format!(
                "cannot create the data folder {}: {e}",
                data_dir.display()
            ))
        })?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = match std::fs::metadata(&path) {
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
                crate::private_files::restrict(&path);
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
            return Err(refuse(newer_schema(version)));
        }

        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|e| refuse(format!("cannot switch it to WAL mode: {e}")))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(refuse(format!("it cannot use WAL mode (got {mode})")));
        }
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")
            .map_err(db)?;
        migrate(&mut conn).map_err(refuse)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Store(Box::new(Sqlite {
            conn: Mutex::new(conn),
            path,
            feed: Feed::default(),
            stop: Arc::new(AtomicBool::new(false)),
        })))
    }
}

fn check_integrity(conn: &Connection) -> Result<(), String> {
    let rows: Vec<String> = conn
        .prepare("PRAGMA quick_check")
        .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect())
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

/// Why a database of schema `version` (newer than this build's) is refused.
pub(super) fn newer_schema(version: i64) -> String {
    format!(
        "it was written by a newer pra-registry (schema {version}, this build knows up to \
         {SCHEMA_VERSION}); upgrade pra-registry"
    )
}

fn migrate(conn: &mut Connection) -> Result<(), String> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| format!("cannot start the schema migration: {e}"))?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if version > SCHEMA_VERSION {
        return Err(newer_schema(version));
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

/// Reads the revision on its own read-only connection every [`FEED_POLL`]
/// and tells the subscribers; ends when the store is dropped.
fn poll(path: &Path, tx: &watch::Sender<Change>, stop: &AtomicBool) {
    let mut conn = None;
    let mut read = || -> Result<i64, String> {
        let c = match &mut conn {
            Some(c) => c,
            None => {
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let c = Connection::open_with_flags(path, flags)
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                c.busy_timeout(BUSY_TIMEOUT).map_err(|e| e.to_string())?;
                conn.insert(c)
            }
        };
        let r = c.query_row(REVISION, [], |r| r.get(0));
        // A failed read opens a new connection next time.
        r.map_err(|e| format!("cannot read the revision: {e}"))
            .inspect_err(|_| conn = None)
    };
    let mut last_sent = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let result = read();
        tx.send_if_modified(|c| match &result {
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
            Err(e) => c.failed(e),
        });
        std::thread::sleep(FEED_POLL);
    }
}

// --- values and transactions ------------------------------------------------

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Val::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Val::Int(i) => ToSqlOutput::from(*i),
            Val::Bool(b) => ToSqlOutput::from(i64::from(*b)),
            Val::Text(s) => ToSqlOutput::from(s.as_str()),
        })
    }
}

fn val(v: ValueRef<'_>) -> rusqlite::Result<Val> {
    Ok(match v {
        ValueRef::Null => Val::Null,
        ValueRef::Integer(i) => Val::Int(i),
        ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
        other => {
            return Err(rusqlite::Error::InvalidColumnType(
                0,
                "?".into(),
                other.data_type(),
            ));
        }
    })
}

/// SQLite sorts text by bytes already: `COLLATE "C"` is PostgreSQL's spelling.
fn dialect(sql: &str) -> std::borrow::Cow<'_, str> {
    if sql.contains(" COLLATE \"C\"") {
        sql.replace(" COLLATE \"C\"", "").into()
    } else {
        sql.into()
    }
}

struct SqliteTx<'a>(&'a Connection);

impl Tx for SqliteTx<'_> {
    fn query(&mut self, sql: &str, params: &[Val]) -> StoreResult<Vec<Row>> {
        let mut stmt = self.0.prepare_cached(&dialect(sql)).map_err(db)?;
        let n = stmt.column_count();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                (0..n).map(|i| val(r.get_ref(i)?)).collect()
            })
            .map_err(db)?;
        rows.map(|r| r.map(Row).map_err(db)).collect()
    }

    fn execute(&mut self, sql: &str, params: &[Val]) -> StoreResult<u64> {
        let mut stmt = self.0.prepare_cached(&dialect(sql)).map_err(db)?;
        let n = stmt
            .execute(rusqlite::params_from_iter(params))
            .map_err(db)?;
        Ok(n as u64)
    }
}

impl Backend for Sqlite {
    /// Reads use the connection as it is; writes run in an `IMMEDIATE`
    /// transaction (SQLite's file lock orders them with other processes).
    fn run(&self, mode: Mode, f: &mut Step<'_>) -> StoreResult<()> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| RegistryError::Database("the database connection is unusable".into()))?;
        if mode == Mode::Read {
            return f(&mut SqliteTx(&conn));
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        f(&mut SqliteTx(&tx))?;
        tx.commit().map_err(db)
    }

    fn subscribe(&self) -> watch::Receiver<Change> {
        self.feed.subscribe(|tx| {
            let (path, sender, stop) = (self.path.clone(), tx.clone(), Arc::clone(&self.stop));
            let spawned = std::thread::Builder::new()
                .name("pra-sqlite-feed".into())
                .spawn(move || poll(&path, &sender, &stop));
            if let Err(e) = spawned {
                tx.send_modify(|c| {
                    c.error = Some(format!("cannot start the revision poller: {e}"))
                });
            }
        })
    }
}
