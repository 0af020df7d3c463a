//! The PostgreSQL backend: several `pra-registry serve` processes (and admin
//! CLIs) share one registry database (`--database postgres://…`).
//!
//! - The rules are [`Store`]'s and the schema SQLite's (`migration`
//!   translates it). Migrations run at open in one transaction that holds
//!   an advisory lock, so gateways starting together cannot both migrate. A
//!   database that holds other tables but no registry, another program's
//!   `meta` table or a newer schema is refused and left untouched.
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
//! - Calls are synchronous: each store owns a small tokio runtime (two
//!   threads) that drives tokio-postgres; a call blocks on it from its own
//!   thread, or from a short-lived thread when called inside a runtime. So a
//!   call never panics, from any thread, inside a runtime or not.
//! - TLS with rustls (no OpenSSL), libpq's `sslmode` (`disable`, `allow`,
//!   `prefer`, `require`, `verify-ca`, `verify-full`) and `sslrootcert=FILE`
//!   (the built-in Mozilla roots when none is named): see [`super::pg_tls`].
//! - The URL may hold a password: it is never printed, logged or shown in
//!   `Debug`; messages name the server as `user@host:port/dbname`.

use super::pg_tls::{self, Mode as TlsMode, RustlsConnect};
use super::registry::{Backend, Feed, Mode, REVISION, Row, Step, Tx, Val};
use super::sqlite::{MIGRATIONS, SCHEMA_VERSION, newer_schema};
use super::{Change, Store, StoreResult};
use crate::error::RegistryError;
use bytes::BytesMut;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{AsyncMessage, GenericClient};

/// `meta.application_id` of PRA registry databases ("PRA1").
pub const APPLICATION_ID: i64 = 0x5052_4131;
/// Channel of the revision notifications.
pub const CHANNEL: &str = "pra_revision";
/// Key of the advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x0050_5241_316d_6967;

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

/// The PostgreSQL database under [`Store::postgres`].
pub struct Postgres {
    rt: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    pool: Pool,
    config: tokio_postgres::Config,
    tls: RustlsConnect,
    shown: String,
    opts: PostgresOptions,
    feed: Feed,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("server", &self.shown)
            .finish()
    }
}

impl Drop for Postgres {
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

/// Parse and check a `postgres://` URL (no connection made), with the TLS
/// connector its `sslmode` / `sslrootcert` ask for (see [`super::pg_tls`]).
pub fn parse_url(url: &str) -> StoreResult<(tokio_postgres::Config, RustlsConnect)> {
    let bad = |reason: String| RegistryError::Database(format!("--database URL: {reason}"));
    // sslmode and sslrootcert are ours (tokio-postgres knows neither the
    // verify-* modes nor sslrootcert): taken out before it parses the rest.
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut mode = TlsMode::Prefer;
    let mut root_file = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", v)) => {
                mode = TlsMode::parse(v).ok_or_else(|| {
                    bad(format!(
                        "sslmode={} is not one of disable, allow, prefer, require, verify-ca, \
                         verify-full",
                        pra_proto::sanitize::sanitize(v, 32)
                    ))
                })?;
            }
            Some(("sslrootcert", v)) => {
                root_file = Some(percent_encoding::percent_decode_str(v).decode_utf8_lossy());
            }
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
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
    });
    let tls = pg_tls::connector(mode, root_file.as_deref()).map_err(bad)?;
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

impl Store {
    /// Connect to the PostgreSQL database at `url` with the default limits
    /// and bring the schema up to date.
    pub fn postgres(url: &str) -> StoreResult<Store> {
        Store::postgres_with(url, PostgresOptions::default())
    }

    /// Connect to `url` with `opts` and bring the schema up to date.
    pub fn postgres_with(url: &str, opts: PostgresOptions) -> StoreResult<Store> {
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
        let pg = Postgres {
            rt: Some(rt),
            handle,
            pool,
            config,
            tls,
            shown,
            opts,
            feed: Feed::default(),
        };
        off_runtime(|| {
            let (mut client, deadline) = pg.connection()?;
            pg.wait(deadline, migrate(&mut client, &pg.shown))
        })?;
        Ok(Store(Box::new(pg)))
    }
}

/// Run `f` where it may block on the store's runtime: on the calling thread
/// when it is outside any tokio runtime, else on a thread of its own (so a
/// call never panics, from any thread, inside a runtime or not).
fn off_runtime<T: Send>(f: impl FnOnce() -> StoreResult<T> + Send) -> StoreResult<T> {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| {
        let call = std::thread::Builder::new()
            .name("pra-postgres-call".into())
            .spawn_scoped(s, f)
            .map_err(|e| RegistryError::Database(format!("cannot start a database call: {e}")))?;
        call.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

impl Postgres {
    /// Drive `work` on the store's runtime until it ends or `deadline` passes.
    fn wait<T>(
        &self,
        deadline: tokio::time::Instant,
        work: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        self.handle.block_on(async {
            tokio::time::timeout_at(deadline, work)
                .await
                .unwrap_or_else(|_| {
                    Err(RegistryError::Database(format!(
                        "PostgreSQL at {} did not answer within {} s",
                        self.shown,
                        self.opts.call_timeout.as_secs()
                    )))
                })
        })
    }

    /// A pooled connection for a call that starts now, and when that call
    /// must have finished ([`PostgresOptions::call_timeout`]).
    fn connection(&self) -> StoreResult<(Object, tokio::time::Instant)> {
        let deadline = tokio::time::Instant::now() + self.opts.call_timeout;
        let get = async {
            self.pool
                .get()
                .await
                .map_err(|e| pool_error(&self.shown, e))
        };
        Ok((self.wait(deadline, get)?, deadline))
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
    let found = tx
        .query_one(
            "SELECT to_regclass('meta') IS NOT NULL, (SELECT count(*) \
             FROM information_schema.tables WHERE table_schema = current_schema())",
            &[],
        )
        .await
        .map_err(db)?;
    let (has_meta, tables): (bool, i64) = (found.get(0), found.get(1));
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
    } else if tables > 0 {
        return Err(refuse(format!(
            "it holds {tables} table(s) but no PRA registry"
        )));
    } else {
        0
    };
    if version > SCHEMA_VERSION {
        return Err(refuse(newer_schema(version)));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(&migration(sql)).await.map_err(|e| {
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
        if tx.send_if_modified(|c| c.failed(&err)) {
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
    let (note_tx, mut note_rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        // Ends, dropping `note_tx`, when the connection does.
        while let Some(Ok(message)) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
            if let AsyncMessage::Notification(n) = message {
                let _ = note_tx.send(n.payload().to_owned());
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
        let q = client.query_one(REVISION, &[]);
        match tokio::time::timeout(recheck.max(Duration::from_secs(2)) * 2, q).await {
            Ok(Ok(row)) => row.try_get::<_, i64>(0).map_err(|e| describe_error(&e)),
            Ok(Err(e)) => Err(describe_error(&e)),
            Err(_) => Err("the server did not answer the re-check in time".to_owned()),
        }
    };
    let why: Result<std::convert::Infallible, String> = async {
        let listen = client.batch_execute(&format!("LISTEN {CHANNEL}")).await;
        listen.map_err(|e| describe_error(&e))?;
        // The first tick is at once: reading after LISTEN misses nothing.
        let mut tick = tokio::time::interval(recheck);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let rev = tokio::select! {
                biased;
                _ = tick.tick() => read().await?,
                note = note_rx.recv() => match note {
                    Some(payload) => match payload.parse::<i64>() {
                        Ok(rev) => rev,
                        Err(_) => read().await?,
                    },
                    None => return Err("the connection was lost".to_owned()),
                },
            };
            confirm(rev);
        }
    }
    .await;
    let Err(why) = why;
    drop(client);
    driver.abort();
    why
}

// --- values, dialect and transactions -------------------------------------------

impl ToSql for Val {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Val::Null => Ok(IsNull::Yes),
            Val::Bool(b) => b.to_sql_checked(ty, out),
            Val::Int(i) if *ty == Type::INT4 => i32::try_from(*i)?.to_sql_checked(ty, out),
            Val::Int(i) => i.to_sql_checked(ty, out),
            Val::Text(s) if *ty == Type::JSONB => {
                // JSONB's binary form: version 1, then the text.
                out.extend_from_slice(&[1]);
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            Val::Text(s) => s.as_str().to_sql_checked(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Val {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Val, Box<dyn std::error::Error + Sync + Send>> {
        Ok(if *ty == Type::BOOL {
            Val::Bool(bool::from_sql(ty, raw)?)
        } else if *ty == Type::INT4 {
            Val::Int(i32::from_sql(ty, raw)?.into())
        } else if *ty == Type::INT8 {
            Val::Int(i64::from_sql(ty, raw)?)
        } else if *ty == Type::JSONB {
            Val::Text(std::str::from_utf8(raw.get(1..).unwrap_or_default())?.to_owned())
        } else {
            Val::Text(<&str>::from_sql(ty, raw)?.to_owned())
        })
    }

    fn from_sql_null(_: &Type) -> Result<Val, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Val::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// The registry's SQL in PostgreSQL's dialect: `?N` placeholders become
/// `$N`, the `user` column is `user_name` (`user` is reserved here).
fn dialect(sql: &str) -> String {
    fn flush(out: &mut String, word: &mut String) {
        out.push_str(if word == "user" { "user_name" } else { word });
        word.clear();
    }
    let mut out = String::with_capacity(sql.len() + 32);
    let (mut word, mut quote) = (String::new(), None);
    for c in sql.chars() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
        } else if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut out, &mut word);
            if c == '\'' || c == '"' {
                quote = Some(c);
            }
            out.push(if c == '?' { '$' } else { c });
        }
    }
    flush(&mut out, &mut word);
    out
}

/// A schema migration in PostgreSQL's spelling. The schema is written once,
/// for SQLite ([`MIGRATIONS`]); here 0/1 columns are `BOOLEAN`, the other
/// integers `BIGINT` (ports stay `INTEGER`), ids identity columns, the audit
/// detail `JSONB`, and [`dialect`] renames `user`.
fn migration(sql: &str) -> String {
    let lines = sql.lines().map(|line| {
        let line = line
            .replace(
                "INTEGER PRIMARY KEY AUTOINCREMENT",
                "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
            )
            .replace(" PRIMARY KEY NOT NULL", " PRIMARY KEY")
            .replace(") STRICT;", ");");
        let column = line.split_whitespace().next().unwrap_or_default();
        let flag = format!(" CHECK ({column} IN (0, 1))");
        if line.contains(&flag) {
            line.replace(&flag, "").replace("INTEGER", "BOOLEAN")
        } else if column == "detail" {
            line.replace("TEXT", "JSONB")
        } else if line.contains("AND 65535") {
            line
        } else {
            line.replace("INTEGER", "BIGINT")
        }
    });
    dialect(&lines.collect::<Vec<_>>().join("\n"))
}

/// A pooled connection (reads) or a transaction on one, with the store and
/// the call's deadline.
struct PgTx<'a, C>(&'a Postgres, &'a C, tokio::time::Instant);

impl<C: GenericClient + Sync> Tx for PgTx<'_, C> {
    fn query(&mut self, sql: &str, params: &[Val]) -> StoreResult<Vec<Row>> {
        let (sql, p) = (dialect(sql), params_of(params));
        let rows = self
            .0
            .wait(self.2, async { self.1.query(&sql, &p).await.map_err(db) })?;
        rows.iter()
            .map(|r| (0..r.len()).map(|i| r.try_get(i).map_err(db)).collect())
            .map(|vals: StoreResult<Vec<Val>>| vals.map(Row))
            .collect()
    }

    fn execute(&mut self, sql: &str, params: &[Val]) -> StoreResult<u64> {
        let (sql, p) = (dialect(sql), params_of(params));
        self.0
            .wait(self.2, async { self.1.execute(&sql, &p).await.map_err(db) })
    }

    /// `NOTIFY`, sent by the server when the transaction commits.
    fn revision_moved(&mut self, revision: i64) -> StoreResult<()> {
        let p = [Val::from(CHANNEL), Val::Text(revision.to_string())];
        self.execute("SELECT pg_notify(?1, ?2)", &p).map(drop)
    }
}

fn params_of(params: &[Val]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

impl Backend for Postgres {
    fn run(&self, mode: Mode, f: &mut Step<'_>) -> StoreResult<()> {
        off_runtime(|| {
            let (mut client, deadline) = self.connection()?;
            if mode == Mode::Read {
                return f(&mut PgTx(self, &**client, deadline));
            }
            let tx = self.wait(deadline, async { client.transaction().await.map_err(db) })?;
            let mut t = PgTx(self, &*tx, deadline);
            if mode == Mode::Admin {
                // Admin changes run one at a time, as SQLite's
                // `BEGIN IMMEDIATE` orders them.
                t.execute(&format!("{REVISION} FOR UPDATE"), &[])?;
            }
            f(&mut t)?;
            self.wait(deadline, async { tx.commit().await.map_err(db) })
        })
    }

    fn subscribe(&self) -> watch::Receiver<Change> {
        self.feed.subscribe(|tx| {
            self.handle.spawn(feed(
                self.config.clone(),
                self.tls.clone(),
                tx,
                self.opts.feed_recheck,
                self.shown.clone(),
            ));
        })
    }
}
