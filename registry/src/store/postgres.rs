//! The PostgreSQL backend: several `pra-registry serve` processes (and admin
//! CLIs) share one registry database (`--database postgres://…`).
//!
//! - The same schema, migrations and behaviour as the SQLite backend; the
//!   store test suite runs against both. Migrations run at open inside one
//!   transaction that holds an advisory lock, so gateways starting together
//!   cannot both migrate. A database that holds other tables but no
//!   registry, another program's `meta` table or a newer schema is refused
//!   and left untouched.
//! - Every admin change locks the revision row first (admin changes are
//!   serialized, as SQLite's `BEGIN IMMEDIATE` serializes them), writes its
//!   audit event, bumps the revision and sends `NOTIFY pra_revision`, all in
//!   one transaction: the notification goes out only if the change commits.
//! - [`Store::subscribe`] keeps one extra connection that `LISTEN`s, re-reads
//!   the revision every [`PostgresOptions::feed_recheck`] as a safety net and
//!   reconnects by itself after a failure.
//! - A bounded pool ([`PostgresOptions::max_connections`]) with wait,
//!   connect and per-call deadlines: a database that does not answer makes
//!   calls fail with a clear error after at most
//!   [`PostgresOptions::call_timeout`]; broken connections are dropped and
//!   new ones made on demand (automatic reconnect).
//! - The trait is synchronous: each store owns a small tokio runtime (two
//!   threads) that drives tokio-postgres; a call hands its work to it and
//!   waits. So a call never panics, from any thread, inside a runtime or not.
//! - TLS with rustls (no OpenSSL), libpq's `sslmode` (`disable`, `allow`,
//!   `prefer`, `require`, `verify-ca`, `verify-full`) and `sslrootcert=FILE`
//!   (the built-in Mozilla roots when none is named): see [`super::pg_tls`].
//! - The URL may hold a password: it is never printed, logged or shown in
//!   `Debug`; messages name the server as `user@host:port/dbname`.

use super::pg_tls::{Mode, RustlsConnect};
use super::{
    Change, MAX_PENDING_PER_USER, SESSION_KEEP_SECS, SESSION_STALE_SECS, Store, StoreResult,
    UNKNOWN_SUBMISSION_KEEP_SECS, checks, event,
};
use crate::error::RegistryError;
use crate::model::*;
use crate::validate;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use pra_proto::api::{Device, KeyStatus};
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, GenericClient, Row};

/// `meta.application_id` of PRA registry databases ("PRA1").
pub const APPLICATION_ID: i64 = 0x5052_4131;
/// Channel of the revision notifications.
pub const CHANNEL: &str = "pra_revision";
/// Key of the advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x0050_5241_316d_6967;

/// Schema migrations; `MIGRATIONS[i]` brings the schema from `i` to `i + 1`
/// (the same steps as the SQLite backend's).
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    name        TEXT PRIMARY KEY,
    enabled     BOOLEAN NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE keys (
    fingerprint        TEXT PRIMARY KEY,
    user_name          TEXT NOT NULL REFERENCES users(name),
    public_key         TEXT NOT NULL,
    algorithm          TEXT NOT NULL,
    device_computer    TEXT NOT NULL,
    device_os_user     TEXT NOT NULL,
    device_description TEXT NOT NULL,
    device_tag         TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'revoked')),
    submitted_at       BIGINT NOT NULL,
    approved_by        TEXT,
    approved_at        BIGINT,
    revoked_by         TEXT,
    revoked_at         BIGINT,
    last_seen          BIGINT
);
CREATE INDEX keys_by_user ON keys(user_name);
CREATE INDEX keys_by_status ON keys(status);

CREATE TABLE rules (
    user_name    TEXT NOT NULL REFERENCES users(name),
    name         TEXT NOT NULL,
    local_port   INTEGER NOT NULL CHECK (local_port BETWEEN 1 AND 65535),
    target_host  TEXT NOT NULL CHECK (length(target_host) BETWEEN 1 AND 253),
    target_port  INTEGER NOT NULL CHECK (target_port BETWEEN 1 AND 65535),
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (user_name, name),
    UNIQUE (user_name, local_port)
);

CREATE TABLE tokens (
    name        TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    last_used   BIGINT
);

CREATE TABLE audit (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    actor        TEXT NOT NULL,
    user_name    TEXT,
    fingerprint  TEXT,
    source       TEXT,
    detail       JSONB NOT NULL
);
CREATE INDEX audit_by_user ON audit(user_name, id);

CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  BIGINT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('revision', 0);
"#,
    r#"
CREATE TABLE sessions (
    id                       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gateway                  TEXT NOT NULL,
    user_name                TEXT NOT NULL,
    fingerprint              TEXT NOT NULL,
    source                   TEXT NOT NULL,
    started_at               BIGINT NOT NULL,
    heartbeat_at             BIGINT NOT NULL,
    bytes_up                 BIGINT NOT NULL DEFAULT 0 CHECK (bytes_up >= 0),
    bytes_down               BIGINT NOT NULL DEFAULT 0 CHECK (bytes_down >= 0),
    ended_at                 BIGINT,
    end_reason               TEXT,
    disconnect_requested_by  TEXT,
    disconnect_requested_at  BIGINT
);
CREATE INDEX sessions_open ON sessions(gateway) WHERE ended_at IS NULL;
CREATE INDEX sessions_ended ON sessions(ended_at) WHERE ended_at IS NOT NULL;
"#,
    r#"
ALTER TABLE tokens ADD COLUMN expires_at BIGINT;
CREATE INDEX audit_by_at ON audit(at);

CREATE TABLE unknown_submissions (
    fingerprint   TEXT NOT NULL,
    user_name     TEXT NOT NULL,
    submitted_at  BIGINT NOT NULL,
    PRIMARY KEY (fingerprint, user_name)
);
CREATE INDEX unknown_submissions_by_user ON unknown_submissions(user_name);
CREATE INDEX unknown_submissions_by_time ON unknown_submissions(submitted_at);
"#,
    r#"
CREATE TABLE invites (
    id                TEXT PRIMARY KEY,
    user_name         TEXT NOT NULL REFERENCES users(name),
    secret_hash       TEXT NOT NULL UNIQUE,
    gateways          TEXT NOT NULL,
    approve           BOOLEAN NOT NULL,
    created_at        BIGINT NOT NULL,
    created_by        TEXT NOT NULL,
    expires_at        BIGINT NOT NULL,
    used_at           BIGINT,
    used_fingerprint  TEXT,
    revoked_at        BIGINT
);
"#,
];

/// The schema version this build writes (the same as SQLite's).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Limits of the connection pool and the deadlines of every call.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// Pooled connections at most (the change feed uses one more).
    pub max_connections: usize,
    /// Making one connection (TCP + authentication).
    pub connect_timeout: Duration,
    /// Waiting for a free pooled connection.
    pub wait_timeout: Duration,
    /// A whole store call (getting a connection included).
    pub call_timeout: Duration,
    /// The change feed re-reads the revision this often, whatever it heard.
    pub feed_recheck: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
            wait_timeout: Duration::from_secs(5),
            call_timeout: Duration::from_secs(15),
            feed_recheck: Duration::from_secs(2),
        }
    }
}

/// The PostgreSQL-backed [`Store`].
pub struct PostgresStore {
    rt: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    pool: Pool,
    config: tokio_postgres::Config,
    tls: RustlsConnect,
    shown: String,
    opts: PostgresOptions,
    feed: Mutex<Option<watch::Sender<Change>>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("server", &self.shown)
            .finish()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Allowed anywhere, also inside another runtime.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// `user@host:port/dbname` of a parsed URL: never the password.
pub fn describe_server(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) if h.contains(':') => format!("[{h}]"),
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("?");
    let db = config.get_dbname().unwrap_or(user);
    pra_proto::sanitize::sanitize(&format!("{user}@{host}:{port}/{db}"), 200)
}

/// Decode `%XX` escapes of a URL query value.
fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(h) = v.get(i + 1..i + 3)
            && let Ok(x) = u8::from_str_radix(h, 16)
        {
            out.push(x);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse and check a `postgres://` URL (no connection made), with the TLS
/// connector its `sslmode` / `sslrootcert` ask for (see [`super::pg_tls`]).
pub fn parse_url(url: &str) -> StoreResult<(tokio_postgres::Config, RustlsConnect)> {
    let bad = |reason: String| RegistryError::Database(format!("--database URL: {reason}"));
    // sslmode and sslrootcert are ours (tokio-postgres knows neither the
    // verify-* modes nor sslrootcert): taken out before it parses the rest.
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut mode = Mode::Prefer;
    let mut root_file = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", v)) => {
                mode = Mode::parse(v).ok_or_else(|| {
                    bad(format!(
                        "sslmode={} is not one of disable, allow, prefer, require, verify-ca, \
                         verify-full",
                        pra_proto::sanitize::sanitize(v, 32)
                    ))
                })?;
            }
            Some(("sslrootcert", v)) => root_file = Some(percent_decode(v)),
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    let mut config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
        // tokio-postgres' parse errors name the option, never its value.
        bad(format!("it is not a valid postgres:// URL ({e})"))
    })?;
    config.ssl_mode(match mode {
        Mode::Disable => SslMode::Disable,
        Mode::Prefer => SslMode::Prefer,
        Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
    });
    let tls = RustlsConnect::new(mode, root_file.as_deref()).map_err(bad)?;
    if config.get_hosts().is_empty() {
        return Err(bad("it names no host (postgres://USER@HOST:PORT/DB)".into()));
    }
    if config.get_user().is_none_or(str::is_empty) {
        return Err(bad("it names no user (postgres://USER@HOST:PORT/DB)".into()));
    }
    if config.get_application_name().is_none() {
        config.application_name("pra-registry");
    }
    Ok((config, tls))
}

fn db(e: tokio_postgres::Error) -> RegistryError {
    RegistryError::Database(describe_error(&e))
}

fn describe_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("PostgreSQL: {} ({})", d.message(), d.code().code()),
        None => {
            let mut text = e.to_string();
            if !text.contains("TLS handshake") {
                return text;
            }
            // tokio-postgres does not print why the handshake failed.
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                text = format!("{text}: {c}");
                cause = c.source();
            }
            if text.contains("certificate") {
                format!(
                    "{text} (the server's TLS certificate was refused: sslrootcert must name \
                     the CA that signed it, and under sslmode=verify-full the certificate must \
                     name the host of the URL)"
                )
            } else {
                text
            }
        }
    }
}

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

impl PostgresStore {
    /// Connect to `url` with the default limits and bring the schema up to
    /// date.
    pub fn open(url: &str) -> StoreResult<PostgresStore> {
        PostgresStore::open_with(url, PostgresOptions::default())
    }

    /// Connect to `url` with `opts` and bring the schema up to date.
    pub fn open_with(url: &str, opts: PostgresOptions) -> StoreResult<PostgresStore> {
        let (mut config, tls) = parse_url(url)?;
        // The URL's connect_timeout (seconds), when given, wins.
        let connect_timeout = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(opts.connect_timeout);
        config
            .connect_timeout(connect_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3);
        #[cfg(target_os = "linux")]
        config.tcp_user_timeout(Duration::from_secs(10));
        let shown = describe_server(&config);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pra-postgres")
            .enable_all()
            .build()
            .map_err(|e| {
                RegistryError::Database(format!("cannot start the database runtime: {e}"))
            })?;
        let handle = rt.handle().clone();
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(opts.max_connections.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(opts.wait_timeout))
            .create_timeout(Some(connect_timeout))
            .recycle_timeout(Some(connect_timeout))
            .build()
            .map_err(|e| RegistryError::Database(format!("cannot set up the pool: {e}")))?;
        let store = PostgresStore {
            rt: Some(rt),
            handle,
            pool,
            config,
            tls,
            shown,
            opts,
            feed: Mutex::new(None),
        };
        let shown = store.shown.clone();
        store.call(move |mut c| async move { migrate(&mut c, &shown).await })?;
        Ok(store)
    }

    /// `user@host:port/dbname` (no password).
    pub fn server(&self) -> &str {
        &self.shown
    }

    /// Run `f` with a pooled connection on the store's runtime and wait for
    /// it, at most [`PostgresOptions::call_timeout`].
    fn call<T, F, Fut>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(Object) -> Fut + Send + 'static,
        Fut: Future<Output = StoreResult<T>> + Send + 'static,
    {
        let pool = self.pool.clone();
        let shown = self.shown.clone();
        let limit = self.opts.call_timeout;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let work = async {
                let client = pool.get().await.map_err(|e| pool_error(&shown, e))?;
                f(client).await
            };
            let out = match tokio::time::timeout(limit, work).await {
                Ok(out) => out,
                Err(_) => Err(RegistryError::Database(format!(
                    "PostgreSQL at {shown} did not answer within {} s",
                    limit.as_secs()
                ))),
            };
            let _ = tx.send(out);
        });
        rx.recv().map_err(|_| {
            RegistryError::Database("the database task stopped before answering".into())
        })?
    }
}

fn pool_error(shown: &str, e: PoolError) -> RegistryError {
    let why = match e {
        PoolError::Backend(e) => describe_error(&e),
        PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => {
            "every pooled connection stayed busy".into()
        }
        PoolError::Timeout(_) => "the server did not answer in time".into(),
        other => other.to_string(),
    };
    RegistryError::Database(format!("cannot reach PostgreSQL at {shown}: {why}"))
}

// --- schema -----------------------------------------------------------------

async fn migrate(c: &mut Object, shown: &str) -> StoreResult<()> {
    let refuse = |reason: String| {
        RegistryError::Database(format!(
            "PostgreSQL database {shown}: {reason}; it was left untouched (give pra-registry \
             its own database, or restore the registry from a backup)"
        ))
    };
    let tx = c.transaction().await.map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db)?;
    let has_meta: bool = tx
        .query_one("SELECT to_regclass('meta') IS NOT NULL", &[])
        .await
        .map_err(db)?
        .get(0);
    let version: i64 = if has_meta {
        let rows = tx
            .query("SELECT key, value FROM meta", &[])
            .await
            .map_err(|e| {
                refuse(format!(
                    "its meta table cannot be read ({})",
                    describe_error(&e)
                ))
            })?;
        let get = |k: &str| {
            rows.iter()
                .find(|r| r.try_get::<_, String>(0).ok().as_deref() == Some(k))
                .and_then(|r| r.try_get::<_, i64>(1).ok())
        };
        match get("application_id") {
            Some(APPLICATION_ID) => {}
            Some(other) => {
                return Err(refuse(format!(
                    "it is another program's database (application id {other:#x})"
                )));
            }
            None => {
                return Err(refuse(
                    "it has a meta table but no PRA registry marker".into(),
                ));
            }
        }
        get("schema_version").unwrap_or(0)
    } else {
        let tables: i64 = tx
            .query_one(
                "SELECT count(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema()",
                &[],
            )
            .await
            .map_err(db)?
            .get(0);
        if tables > 0 {
            return Err(refuse(format!(
                "it holds {tables} table(s) but no PRA registry"
            )));
        }
        0
    };
    if version > SCHEMA_VERSION {
        return Err(refuse(format!(
            "it was written by a newer pra-registry (schema {version}, this build knows up to \
             {SCHEMA_VERSION}); upgrade pra-registry"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(sql).await.map_err(|e| {
            RegistryError::Database(format!(
                "schema migration {} failed: {}",
                i + 1,
                describe_error(&e)
            ))
        })?;
    }
    if version < SCHEMA_VERSION {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', $1), ('application_id', $2) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&SCHEMA_VERSION, &APPLICATION_ID],
        )
        .await
        .map_err(db)?;
        tracing::info!(
            from = version,
            to = SCHEMA_VERSION,
            server = %shown,
            "registry schema migrated"
        );
    }
    tx.commit().await.map_err(db)
}

// --- row mapping --------------------------------------------------------------

const USER_COLS: &str = "name, enabled, created_at";
const KEY_COLS: &str = "fingerprint, user_name, public_key, algorithm, device_computer, \
     device_os_user, device_description, device_tag, status, submitted_at, approved_by, \
     approved_at, revoked_by, revoked_at, last_seen";
const RULE_COLS: &str = "user_name, name, local_port, target_host, target_port";
const SESSION_COLS: &str = "id, gateway, user_name, fingerprint, source, started_at, \
     heartbeat_at, bytes_up, bytes_down, ended_at, end_reason, disconnect_requested_by, \
     disconnect_requested_at";

const TOKEN_COLS: &str = "name, created_at, last_used, expires_at";

const INVITE_COLS: &str = "id, user_name, gateways, approve, created_at, created_by, \
     expires_at, used_at, used_fingerprint, revoked_at";

fn invite_row(r: &Row) -> StoreResult<InviteRecord> {
    let gateways: String = r.try_get(2).map_err(db)?;
    Ok(InviteRecord {
        id: r.try_get(0).map_err(db)?,
        user: r.try_get(1).map_err(db)?,
        gateways: serde_json::from_str(&gateways).unwrap_or_default(),
        approve: r.try_get(3).map_err(db)?,
        created_at: r.try_get(4).map_err(db)?,
        created_by: r.try_get(5).map_err(db)?,
        expires_at: r.try_get(6).map_err(db)?,
        used_at: r.try_get(7).map_err(db)?,
        used_fingerprint: r.try_get(8).map_err(db)?,
        revoked_at: r.try_get(9).map_err(db)?,
    })
}

async fn get_invite_in(
    c: &(impl GenericClient + Sync),
    id: &str,
    lock: bool,
) -> StoreResult<Option<InviteRecord>> {
    let sql = format!(
        "SELECT {INVITE_COLS} FROM invites WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    c.query_opt(&sql, &[&id])
        .await
        .map_err(db)?
        .as_ref()
        .map(invite_row)
        .transpose()
}

fn token_row(r: &Row) -> StoreResult<TokenRecord> {
    Ok(TokenRecord {
        name: r.try_get(0).map_err(db)?,
        created_at: r.try_get(1).map_err(db)?,
        last_used: r.try_get(2).map_err(db)?,
        expires_at: r.try_get(3).map_err(db)?,
    })
}

fn user_row(r: &Row) -> StoreResult<User> {
    Ok(User {
        name: r.try_get(0).map_err(db)?,
        enabled: r.try_get(1).map_err(db)?,
        created_at: r.try_get(2).map_err(db)?,
    })
}

fn key_row(r: &Row) -> StoreResult<KeyRecord> {
    let status: String = r.try_get(8).map_err(db)?;
    Ok(KeyRecord {
        fingerprint: r.try_get(0).map_err(db)?,
        user: r.try_get(1).map_err(db)?,
        public_key: r.try_get(2).map_err(db)?,
        algorithm: r.try_get(3).map_err(db)?,
        device: Device {
            computer: r.try_get(4).map_err(db)?,
            os_user: r.try_get(5).map_err(db)?,
            description: r.try_get(6).map_err(db)?,
            tag: r.try_get(7).map_err(db)?,
        },
        status: KeyStatus::parse(&status).ok_or_else(|| {
            RegistryError::Database(format!("unknown key status {status:?} in the database"))
        })?,
        submitted_at: r.try_get(9).map_err(db)?,
        approved_by: r.try_get(10).map_err(db)?,
        approved_at: r.try_get(11).map_err(db)?,
        revoked_by: r.try_get(12).map_err(db)?,
        revoked_at: r.try_get(13).map_err(db)?,
        last_seen: r.try_get(14).map_err(db)?,
    })
}

fn port(r: &Row, i: usize) -> StoreResult<u16> {
    let p: i32 = r.try_get(i).map_err(db)?;
    u16::try_from(p).map_err(|_| RegistryError::Database(format!("port {p} out of range")))
}

fn rule_row(r: &Row) -> StoreResult<RuleRecord> {
    Ok(RuleRecord {
        user: r.try_get(0).map_err(db)?,
        name: r.try_get(1).map_err(db)?,
        local_port: port(r, 2)?,
        target_host: r.try_get(3).map_err(db)?,
        target_port: port(r, 4)?,
    })
}

fn session_row(r: &Row) -> StoreResult<SessionRecord> {
    let count =
        |i: usize| -> StoreResult<u64> { Ok(r.try_get::<_, i64>(i).map_err(db)?.max(0) as u64) };
    Ok(SessionRecord {
        id: r.try_get(0).map_err(db)?,
        gateway: r.try_get(1).map_err(db)?,
        user: r.try_get(2).map_err(db)?,
        fingerprint: r.try_get(3).map_err(db)?,
        source: r.try_get(4).map_err(db)?,
        started_at: r.try_get(5).map_err(db)?,
        heartbeat_at: r.try_get(6).map_err(db)?,
        bytes_up: count(7)?,
        bytes_down: count(8)?,
        ended_at: r.try_get(9).map_err(db)?,
        end_reason: r.try_get(10).map_err(db)?,
        disconnect_requested_by: r.try_get(11).map_err(db)?,
        disconnect_requested_at: r.try_get(12).map_err(db)?,
    })
}

fn rows<T>(rows: Vec<Row>, f: fn(&Row) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.iter().map(f).collect()
}

fn bytes(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

async fn get_user_in(c: &(impl GenericClient + Sync), name: &str) -> StoreResult<Option<User>> {
    c.query_opt(
        &format!("SELECT {USER_COLS} FROM users WHERE name = $1"),
        &[&name],
    )
    .await
    .map_err(db)?
    .as_ref()
    .map(user_row)
    .transpose()
}

async fn get_key_in(
    c: &(impl GenericClient + Sync),
    fingerprint: &str,
) -> StoreResult<Option<KeyRecord>> {
    c.query_opt(
        &format!("SELECT {KEY_COLS} FROM keys WHERE fingerprint = $1"),
        &[&fingerprint],
    )
    .await
    .map_err(db)?
    .as_ref()
    .map(key_row)
    .transpose()
}

async fn get_session_in(
    c: &(impl GenericClient + Sync),
    id: i64,
) -> StoreResult<Option<SessionRecord>> {
    c.query_opt(
        &format!("SELECT {SESSION_COLS} FROM sessions WHERE id = $1"),
        &[&id],
    )
    .await
    .map_err(db)?
    .as_ref()
    .map(session_row)
    .transpose()
}

async fn insert_audit(
    c: &(impl GenericClient + Sync),
    at: Timestamp,
    e: &AuditEvent,
) -> StoreResult<()> {
    checks::audit_event(e)?;
    let detail = e.detail.to_string();
    c.execute(
        "INSERT INTO audit (at, kind, actor, user_name, fingerprint, source, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, ($7::text)::jsonb)",
        &[
            &at,
            &e.kind,
            &e.actor,
            &e.user,
            &e.fingerprint,
            &e.source,
            &detail,
        ],
    )
    .await
    .map_err(db)?;
    Ok(())
}

/// Start an admin change: a transaction holding the revision row, so admin
/// changes run one at a time (their checks then inserts cannot race).
async fn begin_admin(c: &mut Object) -> StoreResult<deadpool_postgres::Transaction<'_>> {
    let tx = c.transaction().await.map_err(db)?;
    tx.execute(
        "SELECT value FROM meta WHERE key = 'revision' FOR UPDATE",
        &[],
    )
    .await
    .map_err(db)?;
    Ok(tx)
}

/// Insert a checked new key and audit it as `kind` (inside `tx`).
async fn insert_key_in(
    tx: &deadpool_postgres::Transaction<'_>,
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
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, NULL, NULL)"
        ),
        &[
            &key.fingerprint,
            &key.user,
            &valid.line,
            &key.algorithm,
            &device.computer,
            &device.os_user,
            &device.description,
            &device.tag,
            &key.status.as_str(),
            &now,
            &approved_by,
            &approved_at,
        ],
    )
    .await
    .map_err(db)?;
    let mut e = event(kind, actor, Some(&key.user), Some(&key.fingerprint));
    e.detail = serde_json::json!({
        "status": key.status.as_str(),
        "algorithm": key.algorithm,
        "computer": device.computer,
    });
    admin_change(tx, now, e).await?;
    get_key_in(&**tx, &key.fingerprint).await?.ok_or_else(|| {
        RegistryError::Database("the new key vanished inside its transaction".into())
    })
}

/// Audit an admin change, bump the revision and notify, inside `tx`.
async fn admin_change(
    tx: &tokio_postgres::Transaction<'_>,
    at: Timestamp,
    e: AuditEvent,
) -> StoreResult<()> {
    insert_audit(tx, at, &e).await?;
    tx.execute(
        "WITH r AS (UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value) \
         SELECT pg_notify($1, value::text) FROM r",
        &[&CHANNEL],
    )
    .await
    .map_err(db)?;
    Ok(())
}

async fn add_user_in(
    tx: &tokio_postgres::Transaction<'_>,
    name: &str,
    actor: &Actor,
    now: Timestamp,
    via: Option<&str>,
) -> StoreResult<User> {
    validate::user_name(name)?;
    if get_user_in(tx, name).await?.is_some() {
        return Err(RegistryError::Conflict(format!(
            "user {name} already exists"
        )));
    }
    tx.execute(
        "INSERT INTO users (name, enabled, created_at) VALUES ($1, TRUE, $2)",
        &[&name, &now],
    )
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            RegistryError::Conflict(format!("user {name} already exists"))
        } else {
            db(e)
        }
    })?;
    let mut e = event("user.add", actor, Some(name), None);
    if let Some(via) = via {
        e.detail = serde_json::json!({ "via": via });
    }
    admin_change(tx, now, e).await?;
    Ok(User {
        name: name.to_string(),
        enabled: true,
        created_at: now,
    })
}

fn rule_detail(rule: &RuleRecord) -> serde_json::Value {
    serde_json::json!({
        "rule": rule.name,
        "local_port": rule.local_port,
        "target_host": rule.target_host,
        "target_port": rule.target_port,
    })
}

// --- the change feed -------------------------------------------------------------

/// Keep `tx` up to date: `LISTEN` on a connection of its own, re-read every
/// `recheck`, reconnect after failures. Runs as long as the store.
async fn feed(
    config: tokio_postgres::Config,
    tls: RustlsConnect,
    tx: watch::Sender<Change>,
    recheck: Duration,
    shown: String,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let started = Instant::now();
        let err = listen(&config, &tls, &tx, recheck).await;
        let changed = tx.send_if_modified(|c| {
            let changed = c.error.as_deref() != Some(err.as_str());
            c.error = Some(err.clone());
            changed
        });
        if changed {
            tracing::warn!(server = %shown, error = %err, "registry change feed lost the database; reconnecting");
        }
        if started.elapsed() > Duration::from_secs(10) {
            backoff = Duration::from_millis(200);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(recheck);
    }
}

/// One connection's life; returns why it ended.
async fn listen(
    config: &tokio_postgres::Config,
    tls: &RustlsConnect,
    tx: &watch::Sender<Change>,
    recheck: Duration,
) -> String {
    let (client, mut conn) = match config.connect(tls.clone()).await {
        Ok(pair) => pair,
        Err(e) => return format!("cannot connect: {}", describe_error(&e)),
    };
    let (note_tx, mut note_rx) = tokio::sync::mpsc::unbounded_channel::<Option<String>>();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    let _ = note_tx.send(Some(n.payload().to_owned()));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let _ = note_tx.send(None);
                    return describe_error(&e);
                }
                None => {
                    let _ = note_tx.send(None);
                    return "the server closed the connection".to_owned();
                }
            }
        }
    });
    let confirm = |rev: i64| {
        tx.send_modify(|c| {
            c.revision = c.revision.max(rev);
            c.confirmed = Some(Instant::now());
            c.error = None;
        });
    };
    let read = || async {
        let q = client.query_one("SELECT value FROM meta WHERE key = 'revision'", &[]);
        match tokio::time::timeout(recheck.max(Duration::from_secs(2)) * 2, q).await {
            Ok(Ok(row)) => row.try_get::<_, i64>(0).map_err(|e| describe_error(&e)),
            Ok(Err(e)) => Err(describe_error(&e)),
            Err(_) => Err("the server did not answer the re-check in time".to_owned()),
        }
    };
    let why = async {
        if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
            return describe_error(&e);
        }
        // Read after LISTEN: nothing committed in between is missed.
        match read().await {
            Ok(rev) => confirm(rev),
            Err(e) => return e,
        }
        let mut tick = tokio::time::interval(recheck);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                note = note_rx.recv() => match note {
                    Some(Some(payload)) => match payload.parse::<i64>() {
                        Ok(rev) => confirm(rev),
                        Err(_) => match read().await {
                            Ok(rev) => confirm(rev),
                            Err(e) => return e,
                        },
                    },
                    _ => return "the connection was lost".to_owned(),
                },
                _ = tick.tick() => match read().await {
                    Ok(rev) => confirm(rev),
                    Err(e) => return e,
                },
            }
        }
    }
    .await;
    drop(client);
    driver.abort();
    why
}

// --- the trait ----------------------------------------------------------------

impl Store for PostgresStore {
    fn add_user(&self, name: &str, actor: &Actor) -> StoreResult<User> {
        validate::user_name(name)?;
        let (name, actor) = (name.to_owned(), actor.clone());
        self.call(move |mut c| async move {
            let tx = begin_admin(&mut c).await?;
            let user = add_user_in(&tx, &name, &actor, now(), None).await?;
            tx.commit().await.map_err(db)?;
            Ok(user)
        })
    }

    fn get_user(&self, name: &str) -> StoreResult<Option<User>> {
        let name = name.to_owned();
        self.call(move |c| async move { get_user_in(&**c, &name).await })
    }

    fn list_users(&self) -> StoreResult<Vec<User>> {
        self.call(move |c| async move {
            let r = c
                .query(
                    &format!("SELECT {USER_COLS} FROM users ORDER BY name COLLATE \"C\""),
                    &[],
                )
                .await
                .map_err(db)?;
            rows(r, user_row)
        })
    }

    fn set_user_enabled(&self, name: &str, enabled: bool, actor: &Actor) -> StoreResult<User> {
        let (name, actor) = (name.to_owned(), actor.clone());
        self.call(move |mut c| async move {
            let tx = begin_admin(&mut c).await?;
            let mut user = get_user_in(&*tx, &name)
                .await?
                .ok_or_else(|| RegistryError::NotFound(format!("no user named {name}")))?;
            if user.enabled == enabled {
                return Ok(user);
            }
            tx.execute(
                "UPDATE users SET enabled = $1 WHERE name = $2",
                &[&enabled, &name],
            )
            .await
            .map_err(db)?;
            let kind = if enabled {
                "user.enable"
            } else {
                "user.disable"
            };
            admin_change(&tx, now(), event(kind, &actor, Some(&name), None)).await?;
            tx.commit().await.map_err(db)?;
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
        let actor = actor.clone();
        self.call(move |mut c| async move {
            let tx = begin_admin(&mut c).await?;
            let now = now();
            if let Some(existing) = get_key_in(&*tx, &key.fingerprint).await? {
                if existing.user == key.user {
                    return Ok((existing, false));
                }
                return Err(RegistryError::Conflict(format!(
                    "key {} is already registered to another user",
                    key.fingerprint
                )));
            }
            if get_user_in(&*tx, &key.user).await?.is_none() {
                if create_user {
                    add_user_in(&tx, &key.user, &actor, now, Some("key.import")).await?;
                } else {
                    return Err(RegistryError::NotFound(format!(
                        "no user named {}",
                        key.user
                    )));
                }
            }
            if matches!(actor, Actor::Submitter(_)) && key.status == KeyStatus::Pending {
                let pending: i64 = tx
                    .query_one(
                        "SELECT count(*) FROM keys WHERE user_name = $1 AND status = 'pending'",
                        &[&key.user],
                    )
                    .await
                    .map_err(db)?
                    .get(0);
                if pending >= MAX_PENDING_PER_USER as i64 {
                    return Err(checks::too_many_pending(&key.user));
                }
            }
            let kind = match actor {
                Actor::Submitter(_) => "key.submit",
                _ => "key.import",
            };
            let record = insert_key_in(&tx, &key, &valid, &device, &actor, now, kind).await?;
            tx.commit().await.map_err(db)?;
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
        let (fp, user, actor) = (fingerprint.to_owned(), user.to_owned(), actor.clone());
        self.call(move |mut c| async move {
            // Serialized like admin changes, so the per-name count holds.
            let tx = begin_admin(&mut c).await?;
            let now = now();
            tx.execute(
                "DELETE FROM unknown_submissions WHERE submitted_at < $1",
                &[&(now - UNKNOWN_SUBMISSION_KEEP_SECS)],
            )
            .await
            .map_err(db)?;
            let row = tx
                .query_one(
                    "SELECT coalesce(bool_or(fingerprint = $1), FALSE), count(*) \
                     FROM unknown_submissions WHERE user_name = $2",
                    &[&fp, &user],
                )
                .await
                .map_err(db)?;
            let (seen, count): (bool, i64) = (row.get(0), row.get(1));
            if !seen && count >= MAX_PENDING_PER_USER as i64 {
                return Err(checks::too_many_pending(&user));
            }
            tx.execute(
                "INSERT INTO unknown_submissions (fingerprint, user_name, submitted_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (fingerprint, user_name) \
                 DO UPDATE SET submitted_at = EXCLUDED.submitted_at",
                &[&fp, &user, &now],
            )
            .await
            .map_err(db)?;
            insert_audit(
                &*tx,
                now,
                &event("key.submit.unknown_user", &actor, Some(&user), Some(&fp)),
            )
            .await?;
            tx.commit().await.map_err(db)
        })
    }

    fn unknown_submission(&self, fingerprint: &str, user: &str) -> StoreResult<bool> {
        let (fp, user) = (fingerprint.to_owned(), user.to_owned());
        self.call(move |c| async move {
            let row = c
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM unknown_submissions \
                     WHERE fingerprint = $1 AND user_name = $2 AND submitted_at >= $3)",
                    &[&fp, &user, &(now() - UNKNOWN_SUBMISSION_KEEP_SECS)],
                )
                .await
                .map_err(db)?;
            Ok(row.get(0))
        })
    }

    fn get_key(&self, fingerprint: &str) -> StoreResult<Option<KeyRecord>> {
        let fp = fingerprint.to_owned();
        self.call(move |c| async move { get_key_in(&**c, &fp).await })
    }

    fn list_keys(&self, status: Option<KeyStatus>) -> StoreResult<Vec<KeyRecord>> {
        let status = status.map(|s| s.as_str().to_owned());
        self.call(move |c| async move {
            let r = c
                .query(
                    &format!(
                        "SELECT {KEY_COLS} FROM keys WHERE $1::text IS NULL OR status = $1 \
                         ORDER BY submitted_at DESC, fingerprint COLLATE \"C\""
                    ),
                    &[&status],
                )
                .await
                .map_err(db)?;
            rows(r, key_row)
        })
    }

    fn set_key_status(
        &self,
        fingerprint: &str,
        status: KeyStatus,
        actor: &Actor,
    ) -> StoreResult<KeyRecord> {
        let (fp, actor) = (fingerprint.to_owned(), actor.clone());
        self.call(move |mut c| async move {
            let tx = begin_admin(&mut c).await?;
            let key = get_key_in(&*tx, &fp)
                .await?
                .ok_or_else(|| RegistryError::NotFound(format!("no key {fp}")))?;
            if key.status == status {
                return Ok(key);
            }
            let now = now();
            let who = actor.to_string();
            let kind = checks::transition(&fp, key.status, status)?;
            let sql = if status == KeyStatus::Approved {
                "UPDATE keys SET status = 'approved', approved_by = $1, approved_at = $2 \
                 WHERE fingerprint = $3"
            } else {
                "UPDATE keys SET status = 'revoked', revoked_by = $1, revoked_at = $2 \
                 WHERE fingerprint = $3"
            };
            tx.execute(sql, &[&who, &now, &fp]).await.map_err(db)?;
            let mut e = event(kind, &actor, Some(&key.user), Some(&fp));
            e.detail = serde_json::json!({ "from": key.status.as_str() });
            admin_change(&tx, now, e).await?;
            let key = get_key_in(&*tx, &fp)
                .await?
                .ok_or_else(|| RegistryError::NotFound(format!("no key {fp}")))?;
            tx.commit().await.map_err(db)?;
            Ok(key)
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
        let actor = actor.clone();
        self.call(move |mut c| async move {
            let tx = begin_admin(&mut c).await?;
            if get_user_in(&*tx, &rule.user).await?.is_none() {
                return Err(RegistryError::NotFound(format!(
                    "no user named {}",
                    rule.user
                )));
            }
            let local = i32::from(rule.local_port);
            let clash = tx
                .query_opt(
                    "SELECT name, local_port FROM rules \
                     WHERE user_name = $1 AND (name = $2 OR local_port = $3) LIMIT 1",
                    &[&rule.user, &rule.name, &local],
                )
                .await
                .map_err(db)?;
            if let Some(row) = clash {
                let name: String = row.try_get(0).map_err(db)?;
                let port: i32 = row.try_get(1).map_err(db)?;
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
                "INSERT INTO rules (user_name, name, local_port, target_host, target_port, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &rule.user,
                    &rule.name,
                    &local,
                    &rule.target_host,
                    &i32::from(rule.target_port),
                    &now,
                ],
            )
            .await
            .map_err(db)?;
            let mut e = event("rule.add", &actor, Some(&rule.user), None);
            e.detail = rule_detail(&rule);
            admin_change(&tx, now, e).await?;
            tx.commit().await.map_err(db)?;
            Ok(rule)
        })
    }

    fn list_rules(&self, user: Option<&str>) -> StoreResult<Vec<RuleRecord>> {
        let user = user.map(str::to_owned);
        self.call(move |c| async move {
            let r = c
                .query(
                    &format!(
                        "SELECT {RULE_COLS} FROM rules WHERE $1::text IS NULL OR user_name = $1 \
                         ORDER BY user_name COLLATE \"C\", local_port"
                    ),
                    &[&user],
                )
                .await
                .map_err(db)?;
            rows(r, rule_row)
        })
    }

    fn remove_rule(&self, user: &str, name: &str, actor: &Actor) -> StoreResult<()> {
        let (user, name, actor) = (user.to_owned(), name.to_owned(), actor.clone());
        self.call(move |mut c| async move {
            let tx = begin_admin(&mut c).await?;
            let rule = tx
                .query_opt(
                    &format!("SELECT {RULE_COLS} FROM rules WHERE user_name = $1 AND name = $2"),
                    &[&user, &name],
                )
                .await
                .map_err(db)?
                .as_ref()
                .map(rule_row)
                .transpose()?;
            let Some(rule) = rule else {
                return Err(RegistryError::NotFound(format!(
                    "user {user} has no rule named {name}"
                )));
            };
            tx.execute(
                "DELETE FROM rules WHERE user_name = $1 AND name = $2",
                &[&user, &name],
            )
            .await
            .map_err(db)?;
            let mut e = event("rule.remove", &actor, Some(&user), None);
            e.detail = rule_detail(&rule);
            admin_change(&tx, now(), e).await?;
            tx.commit().await.map_err(db)
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
        let (name, hash, actor) = (name.to_owned(), token_hash.to_owned(), actor.clone());
        self.call(move |mut c| async move {
            let tx = begin_admin(&mut c).await?;
            let exists = tx
                .query_opt("SELECT 1 FROM tokens WHERE name = $1", &[&name])
                .await
                .map_err(db)?
                .is_some();
            if exists {
                return Err(RegistryError::Conflict(format!(
                    "a token named {name} already exists"
                )));
            }
            let now = now();
            tx.execute(
                "INSERT INTO tokens (name, token_hash, created_at, created_by, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[&name, &hash, &now, &actor.to_string(), &expires_at],
            )
            .await
            .map_err(db)?;
            let mut e = event("token.create", &actor, None, None);
            e.detail = checks::token_detail(&name, expires_at);
            admin_change(&tx, now, e).await?;
            tx.commit().await.map_err(db)?;
            Ok(TokenRecord {
                name,
                created_at: now,
                last_used: None,
                expires_at,
            })
        })
    }

    fn use_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        let hash = token_hash.to_owned();
        self.call(move |c| async move {
            let now = now();
            let row = c
                .query_opt(
                    &format!(
                        "UPDATE tokens SET last_used = $1 WHERE token_hash = $2 \
                         AND (expires_at IS NULL OR expires_at > $1) RETURNING {TOKEN_COLS}"
                    ),
                    &[&now, &hash],
                )
                .await
                .map_err(db)?;
            row.as_ref().map(token_row).transpose()
        })
    }

    fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        self.call(move |c| async move {
            let r = c
                .query(
                    &format!("SELECT {TOKEN_COLS} FROM tokens ORDER BY name COLLATE \"C\""),
                    &[],
                )
                .await
                .map_err(db)?;
            rows(r, token_row)
        })
    }

    fn revoke_token(&self, name: &str, actor: &Actor) -> StoreResult<TokenRecord> {
        let (name, actor) = (name.to_owned(), actor.clone());
        self.call(move |mut c| async move {
            let tx = begin_admin(&mut c).await?;
            let token = tx
                .query_opt(
                    &format!("DELETE FROM tokens WHERE name = $1 RETURNING {TOKEN_COLS}"),
                    &[&name],
                )
                .await
                .map_err(db)?
                .as_ref()
                .map(token_row)
                .transpose()?
                .ok_or_else(|| RegistryError::NotFound(format!("no token named {name}")))?;
            let mut e = event("token.revoke", &actor, None, None);
            e.detail = serde_json::json!({ "token": name });
            admin_change(&tx, now(), e).await?;
            tx.commit().await.map_err(db)?;
            Ok(token)
        })
    }

    fn add_invite(&self, invite: &NewInvite, actor: &Actor) -> StoreResult<InviteRecord> {
        checks::invite(invite)?;
        let (invite, actor) = (invite.clone(), actor.clone());
        self.call(move |mut c| async move {
            let tx = begin_admin(&mut c).await?;
            if get_user_in(&*tx, &invite.user).await?.is_none() {
                return Err(RegistryError::NotFound(format!(
                    "no user named {} (add it first: `pra-registry user add {}`)",
                    invite.user, invite.user
                )));
            }
            if get_invite_in(&*tx, &invite.id, false).await?.is_some() {
                return Err(RegistryError::Conflict(format!(
                    "an invite with id {} already exists",
                    invite.id
                )));
            }
            let now = now();
            let gateways = serde_json::to_string(&invite.gateways)
                .map_err(|e| RegistryError::Database(e.to_string()))?;
            tx.execute(
                "INSERT INTO invites (id, user_name, secret_hash, gateways, approve, created_at, \
                 created_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &invite.id,
                    &invite.user,
                    &invite.secret_hash,
                    &gateways,
                    &invite.approve,
                    &now,
                    &actor.to_string(),
                    &invite.expires_at,
                ],
            )
            .await
            .map_err(db)?;
            let mut e = event("invite.create", &actor, Some(&invite.user), None);
            e.detail = checks::invite_detail(&invite);
            admin_change(&tx, now, e).await?;
            let record = get_invite_in(&*tx, &invite.id, false)
                .await?
                .ok_or_else(|| RegistryError::Database("the new invite vanished".into()))?;
            tx.commit().await.map_err(db)?;
            Ok(record)
        })
    }

    fn list_invites(&self) -> StoreResult<Vec<InviteRecord>> {
        self.call(move |c| async move {
            let r = c
                .query(
                    &format!(
                        "SELECT {INVITE_COLS} FROM invites ORDER BY created_at DESC, id COLLATE \"C\""
                    ),
                    &[],
                )
                .await
                .map_err(db)?;
            rows(r, invite_row)
        })
    }

    fn revoke_invite(&self, id: &str, actor: &Actor) -> StoreResult<InviteRecord> {
        checks::invite_id(id)?;
        let (id, actor) = (id.to_owned(), actor.clone());
        self.call(move |mut c| async move {
            let tx = begin_admin(&mut c).await?;
            let invite = get_invite_in(&*tx, &id, true)
                .await?
                .ok_or_else(|| RegistryError::NotFound(format!("no invite with id {id}")))?;
            checks::revocable(&invite)?;
            let now = now();
            tx.execute(
                "UPDATE invites SET revoked_at = $1 WHERE id = $2",
                &[&now, &id],
            )
            .await
            .map_err(db)?;
            let mut e = event("invite.revoke", &actor, Some(&invite.user), None);
            e.detail = serde_json::json!({ "invite": id });
            admin_change(&tx, now, e).await?;
            tx.commit().await.map_err(db)?;
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
        let (id, secret_hash, actor) = (id.to_owned(), secret_hash.to_owned(), actor.clone());
        self.call(move |mut c| async move {
            let tx = begin_admin(&mut c).await?;
            let now = now();
            let found = match get_invite_in(&*tx, &id, true).await? {
                Some(invite) => {
                    let hash: String = tx
                        .query_one("SELECT secret_hash FROM invites WHERE id = $1", &[&id])
                        .await
                        .map_err(db)?
                        .try_get(0)
                        .map_err(db)?;
                    Some((invite, hash))
                }
                None => None,
            };
            let invite = match checks::redeemable(found, &secret_hash, now) {
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
            if get_key_in(&*tx, &key.fingerprint).await?.is_some() {
                return Err(RegistryError::Conflict(format!(
                    "key {} is already registered",
                    key.fingerprint
                )));
            }
            let record =
                insert_key_in(&tx, &key, &valid, &device, &actor, now, "key.enroll").await?;
            tx.execute(
                "UPDATE invites SET used_at = $1, used_fingerprint = $2 WHERE id = $3",
                &[&now, &key.fingerprint, &id],
            )
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(Ok(record))
        })
    }

    fn login_facts(&self, user: &str, fingerprint: &str) -> StoreResult<LoginFacts> {
        let (user, fp) = (user.to_owned(), fingerprint.to_owned());
        self.call(move |c| async move {
            Ok(LoginFacts {
                key: get_key_in(&**c, &fp).await?,
                user: get_user_in(&**c, &user).await?,
            })
        })
    }

    fn allowed_keys(&self) -> StoreResult<Vec<(String, String)>> {
        self.call(move |c| async move {
            let r = c
                .query(
                    "SELECT k.fingerprint, k.user_name FROM keys k \
                     JOIN users u ON u.name = k.user_name \
                     WHERE k.status = 'approved' AND u.enabled \
                     ORDER BY k.user_name COLLATE \"C\", k.fingerprint COLLATE \"C\"",
                    &[],
                )
                .await
                .map_err(db)?;
            r.iter()
                .map(|row| Ok((row.try_get(0).map_err(db)?, row.try_get(1).map_err(db)?)))
                .collect()
        })
    }

    fn revision(&self) -> StoreResult<i64> {
        self.call(move |c| async move {
            c.query_one("SELECT value FROM meta WHERE key = 'revision'", &[])
                .await
                .map_err(db)?
                .try_get(0)
                .map_err(db)
        })
    }

    fn subscribe(&self) -> watch::Receiver<Change> {
        let mut feed_tx = self.feed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = feed_tx.as_ref() {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(Change::unknown());
        self.handle.spawn(feed(
            self.config.clone(),
            self.tls.clone(),
            tx.clone(),
            self.opts.feed_recheck,
            self.shown.clone(),
        ));
        *feed_tx = Some(tx);
        rx
    }

    fn session_open(&self, session: &NewSession) -> StoreResult<i64> {
        checks::session(session)?;
        let s = session.clone();
        self.call(move |c| async move {
            c.query_one(
                "INSERT INTO sessions (gateway, user_name, fingerprint, source, started_at, \
                 heartbeat_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
                &[
                    &s.gateway,
                    &s.user,
                    &s.fingerprint,
                    &s.source,
                    &s.started_at,
                ],
            )
            .await
            .map_err(db)?
            .try_get(0)
            .map_err(db)
        })
    }

    fn session_progress(&self, at: Timestamp, updates: &[SessionProgress]) -> StoreResult<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = updates.iter().map(|u| u.id).collect();
        let up: Vec<i64> = updates.iter().map(|u| bytes(u.bytes_up)).collect();
        let down: Vec<i64> = updates.iter().map(|u| bytes(u.bytes_down)).collect();
        self.call(move |c| async move {
            c.execute(
                "UPDATE sessions s SET bytes_up = u.up, bytes_down = u.down, heartbeat_at = $1 \
                 FROM unnest($2::bigint[], $3::bigint[], $4::bigint[]) AS u(id, up, down) \
                 WHERE s.id = u.id AND s.ended_at IS NULL",
                &[&at, &ids, &up, &down],
            )
            .await
            .map_err(db)?;
            Ok(())
        })
    }

    fn session_close(
        &self,
        progress: SessionProgress,
        at: Timestamp,
        reason: &str,
    ) -> StoreResult<()> {
        let reason = reason.to_owned();
        self.call(move |c| async move {
            c.execute(
                "UPDATE sessions SET bytes_up = $1, bytes_down = $2, heartbeat_at = $3, \
                 ended_at = $3, end_reason = $4 WHERE id = $5 AND ended_at IS NULL",
                &[
                    &bytes(progress.bytes_up),
                    &bytes(progress.bytes_down),
                    &at,
                    &reason,
                    &progress.id,
                ],
            )
            .await
            .map_err(db)?;
            Ok(())
        })
    }

    fn list_live_sessions(&self) -> StoreResult<Vec<SessionRecord>> {
        self.call(move |c| async move {
            let r = c
                .query(
                    &format!(
                        "SELECT {SESSION_COLS} FROM sessions \
                         WHERE ended_at IS NULL AND heartbeat_at >= $1 ORDER BY started_at, id"
                    ),
                    &[&(now() - SESSION_STALE_SECS)],
                )
                .await
                .map_err(db)?;
            rows(r, session_row)
        })
    }

    fn get_session(&self, id: i64) -> StoreResult<Option<SessionRecord>> {
        self.call(move |c| async move { get_session_in(&**c, id).await })
    }

    fn request_disconnect(&self, id: i64, actor: &Actor) -> StoreResult<SessionRecord> {
        let actor = actor.clone();
        self.call(move |mut c| async move {
            let tx = begin_admin(&mut c).await?;
            let now = now();
            let session = get_session_in(&*tx, id)
                .await?
                .filter(|s| s.ended_at.is_none() && s.heartbeat_at >= now - SESSION_STALE_SECS)
                .ok_or_else(|| RegistryError::NotFound(format!("no live session {id}")))?;
            if session.disconnect_requested_at.is_some() {
                return Ok(session);
            }
            tx.execute(
                "UPDATE sessions SET disconnect_requested_by = $1, disconnect_requested_at = $2 \
                 WHERE id = $3",
                &[&actor.to_string(), &now, &id],
            )
            .await
            .map_err(db)?;
            let mut e = event(
                "session.disconnect",
                &actor,
                Some(&session.user),
                Some(&session.fingerprint),
            );
            e.source = Some(session.source.clone());
            e.detail = serde_json::json!({ "session": id, "gateway": session.gateway });
            admin_change(&tx, now, e).await?;
            let session = get_session_in(&*tx, id)
                .await?
                .ok_or_else(|| RegistryError::NotFound(format!("no live session {id}")))?;
            tx.commit().await.map_err(db)?;
            Ok(session)
        })
    }

    fn disconnect_requests(&self, gateway: &str) -> StoreResult<Vec<i64>> {
        let gateway = gateway.to_owned();
        self.call(move |c| async move {
            let r = c
                .query(
                    "SELECT id FROM sessions WHERE gateway = $1 AND ended_at IS NULL \
                     AND disconnect_requested_at IS NOT NULL ORDER BY id",
                    &[&gateway],
                )
                .await
                .map_err(db)?;
            r.iter().map(|row| row.try_get(0).map_err(db)).collect()
        })
    }

    fn end_gateway_sessions(&self, gateway: &str, at: Timestamp, reason: &str) -> StoreResult<u64> {
        let (gateway, reason) = (gateway.to_owned(), reason.to_owned());
        self.call(move |mut c| async move {
            let tx = c.transaction().await.map_err(db)?;
            let n = tx
                .execute(
                    "UPDATE sessions SET ended_at = $1, end_reason = $2 \
                     WHERE gateway = $3 AND ended_at IS NULL",
                    &[&at, &reason, &gateway],
                )
                .await
                .map_err(db)?;
            tx.execute(
                "DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < $1",
                &[&(at - SESSION_KEEP_SECS)],
            )
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(n)
        })
    }

    fn record(&self, event: &AuditEvent) -> StoreResult<()> {
        checks::audit_event(event)?;
        let e = event.clone();
        self.call(move |c| async move { insert_audit(&**c, now(), &e).await })
    }

    fn record_background(&self, writes: &BackgroundWrites) -> StoreResult<()> {
        for e in &writes.events {
            checks::audit_event(e)?;
        }
        let w = writes.clone();
        self.call(move |mut c| async move {
            let tx = c.transaction().await.map_err(db)?;
            for e in &w.events {
                insert_audit(&*tx, now(), e).await?;
            }
            for (fp, at) in &w.last_seen {
                tx.execute(
                    "UPDATE keys SET last_seen = GREATEST(COALESCE(last_seen, $1), $1) \
                     WHERE fingerprint = $2",
                    &[at, fp],
                )
                .await
                .map_err(db)?;
            }
            tx.commit().await.map_err(db)?;
            Ok(())
        })
    }

    fn prune_audit(&self, before: Timestamp, batch: u32) -> StoreResult<u64> {
        let batch = i64::from(batch);
        self.call(move |c| async move {
            c.execute(
                "DELETE FROM audit WHERE id IN \
                 (SELECT id FROM audit WHERE at < $1 ORDER BY at, id LIMIT $2)",
                &[&before, &batch],
            )
            .await
            .map_err(db)
        })
    }

    fn audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        let limit = i64::from(checks::audit_limit(query.limit));
        let q = query.clone();
        self.call(move |c| async move {
            let r = c
                .query(
                    "SELECT id, at, kind, actor, user_name, fingerprint, source, detail::text \
                     FROM audit \
                     WHERE ($1::text IS NULL OR user_name = $1) \
                       AND ($2::text IS NULL OR left(kind, length($2)) = $2) \
                       AND ($3::bigint IS NULL OR id < $3) \
                     ORDER BY id DESC LIMIT $4",
                    &[&q.user, &q.kind_prefix, &q.before_id, &limit],
                )
                .await
                .map_err(db)?;
            r.iter()
                .map(|row| {
                    let detail: String = row.try_get(7).map_err(db)?;
                    Ok(AuditEntry {
                        id: row.try_get(0).map_err(db)?,
                        at: row.try_get(1).map_err(db)?,
                        event: AuditEvent {
                            kind: row.try_get(2).map_err(db)?,
                            actor: row.try_get(3).map_err(db)?,
                            user: row.try_get(4).map_err(db)?,
                            fingerprint: row.try_get(5).map_err(db)?,
                            source: row.try_get(6).map_err(db)?,
                            detail: serde_json::from_str(&detail)
                                .unwrap_or(serde_json::Value::String(detail)),
                        },
                    })
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn urls_are_checked_without_connecting_and_never_echo_the_password() {
        let (c, _) = parse_url("postgres://pra:hunter2@db.corp:6432/registry").unwrap();
        assert_eq!(describe_server(&c), "pra@db.corp:6432/registry");
        assert_eq!(c.get_application_name(), Some("pra-registry"));
        assert_eq!(c.get_ssl_mode(), SslMode::Prefer);
        let (c, _) = parse_url("postgresql://pra@[::1]/reg?sslmode=disable").unwrap();
        assert_eq!(describe_server(&c), "pra@[::1]:5432/reg");
        assert_eq!(c.get_ssl_mode(), SslMode::Disable);
        for (url, mode) in [
            ("postgres://pra@h/db?sslmode=prefer", SslMode::Prefer),
            ("postgres://pra@h/db?sslmode=allow", SslMode::Prefer),
            (
                "postgres://pra:hunter2@h/db?sslmode=require",
                SslMode::Require,
            ),
            (
                "postgres://pra:hunter2@h/db?sslmode=verify-full",
                SslMode::Require,
            ),
            (
                "postgres://pra:hunter2@h/db?connect_timeout=3&sslmode=verify-ca&sslrootcert=system",
                SslMode::Require,
            ),
        ] {
            let (c, _) = parse_url(url).unwrap();
            assert_eq!(c.get_ssl_mode(), mode, "{url}");
        }
        for (url, word) in [
            ("postgres://pra:hunter2@h/db?bogus=1", "not a valid"),
            (
                "postgres://pra:hunter2@h/db?sslmode=maybe",
                "sslmode=maybe is not one of",
            ),
            (
                "postgres://pra:hunter2@h/db?sslmode=verify-full&sslrootcert=%2Fno%2Fsuch.pem",
                "sslrootcert=/no/such.pem",
            ),
            ("postgres://:hunter2@h/db", "no user"),
            ("postgres://pra:hunter2@/db", "no host"),
        ] {
            let e = parse_url(url).unwrap_err().to_string();
            assert!(e.contains(word), "{url}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn an_unreachable_server_fails_fast_with_its_name_but_no_password() {
        // A listener that never answers: the handshake must time out.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let started = Instant::now();
        let e = PostgresStore::open_with(
            &format!("postgres://pra:hunter2@127.0.0.1:{port}/registry"),
            PostgresOptions {
                connect_timeout: Duration::from_secs(2),
                ..PostgresOptions::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(e.contains(&format!("pra@127.0.0.1:{port}/registry")), "{e}");
        assert!(e.contains("cannot reach PostgreSQL"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        drop(l);
    }
}
