//! The admin CLI: arguments ([`Cli`]), the validated [`Config`], and the
//! commands, which print to a writer so tests can read them.
//!
//! Every failure is one [`Failure`] line: `ERR(103xx) what happened: what
//! to do`, exit status non-zero.

use crate::api::admin::{AuditList, KeyList, RuleList, SessionList, TokenList, UserList};
use crate::api::extract::BearerToken;
use crate::error::RegistryError;
use crate::model::{Actor, AuditEntry, AuditQuery, KeyRecord, NewKey, RuleRecord, Timestamp};
use crate::serve::{self, ServeOptions};
use crate::store::Store;
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::validate;
use base64::Engine as _;
use clap::{Args, Parser, Subcommand};
use pra_proto::api::KeyStatus;
use pra_proto::codes::Code;
use pra_proto::handover::Handover;
use pra_proto::sanitize::sanitize;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

/// Default data folder.
#[cfg(unix)]
pub const DEFAULT_DATA_DIR: &str = "/var/lib/pra-registry";
/// Default data folder.
#[cfg(not(unix))]
pub const DEFAULT_DATA_DIR: &str = r"C:\ProgramData\pra-registry";

/// Largest file `key import` reads.
pub const MAX_IMPORT: u64 = 64 * 1024;

/// `pra-registry`: the PRA key registry, admin CLI, HTTP API and SSH gateway.
#[derive(Debug, Parser)]
#[command(name = "pra-registry", version, about, max_term_width = 100)]
pub struct Cli {
    /// The registry's folder (embedded SQLite database, gateway host key).
    #[arg(long, global = true, value_name = "DIR", env = "PRA_REGISTRY_DATA", default_value = DEFAULT_DATA_DIR)]
    pub data: PathBuf,
    /// Use PostgreSQL (postgres://…) instead of the embedded database; TLS
    /// with `?sslmode=verify-full&sslrootcert=CA.pem` (libpq's sslmode).
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "PRA_DATABASE_URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the SSH gateway and the HTTP API (Ctrl-C or SIGTERM stops).
    Serve(ServeArgs),
    /// Accounts allowed to connect.
    #[command(subcommand)]
    User(UserCommand),
    /// Employees' public keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Fixed forwards per user.
    #[command(subcommand)]
    Rule(RuleCommand),
    /// Show the audit log, newest first.
    Audit(AuditArgs),
    /// Admin API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Live sessions on every gateway of this registry.
    #[command(subcommand)]
    Session(SessionCommand),
    /// One-time enrollment invites (`pra enroll INVITE`).
    #[command(subcommand)]
    Invite(crate::invite::InviteCommand),
    /// Print the SSH gateway's host-key fingerprint for employees to pin
    /// (creates the key in --data if there is none yet).
    Hostkey(HostkeyArgs),
    /// Print the shell completion script (bash, zsh, fish, powershell, elvish).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), for packaging.
    #[command(hide = true)]
    Manpage,
}

/// `hostkey` options.
#[derive(Debug, Args)]
pub struct HostkeyArgs {
    /// Also print the public key as one OpenSSH line (for a known_hosts file).
    #[arg(long)]
    pub public: bool,
}

/// `serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// SSH gateway address.
    #[arg(long, value_name = "ADDR", default_value = serve::DEFAULT_SSH_ADDR)]
    pub ssh: String,
    /// HTTP API address (`127.0.0.1:0` picks a free port; the address is printed).
    #[arg(long, value_name = "ADDR", default_value = pra_proto::DEFAULT_API_ADDR)]
    pub api: String,
    /// This gateway's name in the audit log and the live-sessions list;
    /// unique among the gateways sharing a registry (default HOSTNAME:PORT).
    #[arg(long, value_name = "ID", env = "PRA_GATEWAY_ID")]
    pub gateway_id: Option<String>,
    /// Live sessions one key may hold at once; a further login with that key
    /// is refused (audited as too_many_sessions) until one ends.
    #[arg(long, value_name = "N", env = "PRA_MAX_SESSIONS_PER_KEY",
          default_value_t = crate::gateway::DEFAULT_MAX_SESSIONS_PER_KEY,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub max_sessions_per_key: usize,
    /// A reverse proxy in front of the API whose X-Forwarded-For names the
    /// client (repeatable); from any other peer the header is ignored.
    #[arg(long = "trusted-proxy", value_name = "ADDR")]
    pub trusted_proxy: Vec<std::net::IpAddr>,
    /// Delete audit events older than this many days (0 keeps them all).
    #[arg(long, value_name = "DAYS", default_value_t = crate::retention::DEFAULT_KEEP_DAYS)]
    pub audit_keep: u32,
    /// Serve Prometheus metrics at http://ADDR/metrics (keep ADDR private:
    /// 127.0.0.1 or an internal network).
    #[arg(long, value_name = "ADDR", env = "PRA_METRICS")]
    pub metrics: Option<String>,
    /// Log lines on stderr: `text` for people, `json` (one object per line)
    /// for journald, Loki or Elastic.
    #[arg(long, value_name = "FORMAT", env = "PRA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Serve the API over HTTPS with this PEM certificate chain (with
    /// --tls-key); a replaced file is picked up without a restart.
    #[arg(long, value_name = "FILE", env = "PRA_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key (ECDSA, Ed25519 or RSA) of --tls-cert.
    #[arg(long, value_name = "FILE", env = "PRA_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

/// `serve --log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `session …`.
#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// List the live sessions of every gateway (gateway, user, key, source, since, bytes).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Ask the session's gateway to disconnect it (within seconds; audited).
    Disconnect {
        /// Session id, as `session list` shows it.
        id: String,
    },
}

/// `user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an enabled account.
    Add {
        /// Account name (letters, digits, . _ @ -).
        name: String,
    },
    /// List the accounts.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Disable an account: its keys stop working, live sessions end.
    Disable {
        /// Account name.
        name: String,
    },
    /// Enable a disabled account again.
    Enable {
        /// Account name.
        name: String,
    },
}

/// `key …`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List keys with user, device, status and last use.
    List {
        /// Only keys with this status.
        #[arg(long, value_parser = ["pending", "approved", "revoked"])]
        status: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Import a hand-over file (`pra key export`) or a plain OpenSSH public key line.
    Import {
        /// The file (`-` reads standard input).
        file: PathBuf,
        /// Whose key it is (required for a plain key line; must match a hand-over file's user).
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// Approve it at once.
        #[arg(long)]
        approve: bool,
    },
    /// Approve a key so it may log in.
    Approve {
        /// `SHA256:…` fingerprint, as `key list` shows it.
        fingerprint: String,
    },
    /// Revoke a key for good; its live sessions end.
    Revoke {
        /// `SHA256:…` fingerprint, as `key list` shows it.
        fingerprint: String,
    },
}

/// `rule …`.
#[derive(Debug, Subcommand)]
pub enum RuleCommand {
    /// Add a forward: the user's 127.0.0.1:LOCAL → HOST:PORT as seen from the gateway.
    Add {
        /// Account name.
        #[arg(long, value_name = "NAME")]
        user: String,
        /// Rule name, unique per user (letters, digits, . _ -).
        #[arg(long, value_name = "RULE")]
        name: String,
        /// Local port on the employee's PC (1–65535).
        #[arg(long, value_name = "PORT", allow_hyphen_values = true)]
        local: String,
        /// Target as HOST:PORT (IPv6 as [ADDR]:PORT).
        #[arg(long, value_name = "HOST:PORT")]
        target: String,
    },
    /// List rules.
    List {
        /// Only this user's rules.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a rule.
    Remove {
        /// Account name.
        #[arg(long, value_name = "NAME")]
        user: String,
        /// Rule name.
        #[arg(long, value_name = "RULE")]
        name: String,
    },
}

/// `audit` options.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only events about this user.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Only kinds starting with this (e.g. `key`, `login`).
    #[arg(long, value_name = "PREFIX")]
    pub kind: Option<String>,
    /// At most this many events (1–1000).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an admin API token; it is printed once and only its hash is kept.
    Create {
        /// A name for the token (letters, digits, . _ -).
        #[arg(long, value_name = "NAME")]
        name: String,
        /// The token stops working after this long (e.g. 90d, 12h; default: until revoked).
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
    },
    /// List the tokens: name, created, last used, expiry (never the secrets).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Withdraw a token at once: its next API request, and every admin web
    /// session signed in with it, is refused.
    Revoke {
        /// The token's name, as `token list` shows it.
        name: String,
    },
}

/// A database URL: may hold a password, so `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseUrl(MASKED)")
    }
}

/// Where the records are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite in this folder.
    Sqlite(PathBuf),
    /// PostgreSQL.
    Postgres(DatabaseUrl),
}

/// The validated configuration the library works with.
#[derive(Clone, Debug)]
pub struct Config {
    /// The database.
    pub backend: Backend,
}

impl Config {
    /// From the global flags.
    pub fn from_cli(cli: &Cli) -> Result<Config, Failure> {
        let backend = match cli.database.as_deref().map(str::trim) {
            None | Some("") => Backend::Sqlite(cli.data.clone()),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Backend::Postgres(DatabaseUrl(url.to_string()))
            }
            Some(_) => {
                return Err(Failure::new(
                    Code::RegistryInvalid,
                    "--database / PRA_DATABASE_URL is not a postgres:// URL",
                    "give a postgres://… URL, or unset it to use the embedded database in --data",
                ));
            }
        };
        Ok(Config { backend })
    }

    /// Open the store.
    pub fn open_store(&self) -> Result<Arc<dyn Store>, Failure> {
        match &self.backend {
            Backend::Sqlite(dir) => Ok(Arc::new(SqliteStore::open(dir)?)),
            Backend::Postgres(url) => match PostgresStore::open(&url.0) {
                Ok(store) => Ok(Arc::new(store)),
                Err(e) => {
                    let mut f = Failure::from(e);
                    if f.code == Code::RegistryDatabase {
                        f.fix = POSTGRES_FIX.into();
                    }
                    Err(f)
                }
            },
        }
    }
}

/// What to do when the PostgreSQL registry cannot be used.
pub const POSTGRES_FIX: &str = "check --database / PRA_DATABASE_URL (postgres://USER:PASSWORD@HOST:PORT/DB), \
     that PostgreSQL runs and lets this user in from here, and that the database is the \
     registry's own; see docs/admin-guide.md, \"Several gateways\"";

/// A failure of a command: one line with its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Stable code.
    pub code: Code,
    /// What happened.
    pub what: String,
    /// What to do.
    pub fix: String,
}

impl Failure {
    /// A failure with a specific fix.
    pub fn new(code: Code, what: impl Into<String>, fix: impl Into<String>) -> Failure {
        Failure {
            code,
            what: what.into(),
            fix: fix.into(),
        }
    }

    /// The one line shown.
    pub fn line(&self) -> String {
        pra_proto::codes::line(self.code, &self.what, &self.fix)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line())
    }
}

impl std::error::Error for Failure {}

impl From<RegistryError> for Failure {
    fn from(e: RegistryError) -> Failure {
        let code = match &e {
            RegistryError::Invalid { .. } => Code::RegistryInvalid,
            RegistryError::Conflict(_) | RegistryError::TooManyPending(_) => Code::RegistryConflict,
            RegistryError::NotFound(_) => Code::RegistryNotFound,
            RegistryError::Database(_) | RegistryError::HostKey { .. } => Code::RegistryDatabase,
            RegistryError::Gateway(_) => Code::RegistryListen,
        };
        Failure::new(code, sanitize(&e.to_string(), 600), code.fix())
    }
}

impl From<serve::BindError> for Failure {
    fn from(e: serve::BindError) -> Failure {
        Failure::new(
            Code::RegistryListen,
            e.to_string(),
            Code::RegistryListen.fix(),
        )
    }
}

fn io_failure(what: String) -> Failure {
    Failure::new(
        Code::RegistryInvalid,
        what,
        "check the file name and its permissions",
    )
}

/// `cli:<OS user>`.
pub fn cli_actor() -> Actor {
    let name: String = whoami::username()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '$'))
        .take(64)
        .collect();
    Actor::Cli(if name.is_empty() {
        "unknown".into()
    } else {
        name
    })
}

/// Run a command; output goes to `out`, notes to `err`.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Failure> {
    // Generated from the command definitions alone: no database needed.
    if let Command::Completions { .. } | Command::Manpage = &cli.command {
        return generated(&cli.command, out);
    }
    let config = Config::from_cli(&cli)?;
    if let Command::Hostkey(args) = &cli.command {
        return hostkey_command(&cli.data, args, out);
    }
    let store = config.open_store()?;
    let w = |r: std::io::Result<()>| {
        r.map_err(|e| {
            Failure::new(
                Code::RegistryInvalid,
                format!("cannot write the output: {e}"),
                "check where the output goes",
            )
        })
    };
    let actor = cli_actor();
    match cli.command {
        Command::Serve(args) => serve_command(store, &cli.data, args, out),
        Command::User(c) => w(user(store.as_ref(), c, &actor, out)?),
        Command::Key(c) => w(key(store.as_ref(), c, &actor, out)?),
        Command::Rule(c) => w(rule(store.as_ref(), c, &actor, out)?),
        Command::Audit(a) => w(audit(store.as_ref(), a, out)?),
        Command::Session(c) => w(session(store.as_ref(), c, &actor, out)?),
        Command::Hostkey(args) => hostkey_command(&cli.data, &args, out),
        Command::Token(c) => w(token(store.as_ref(), c, &actor, out, err)?),
        Command::Invite(c) => w(crate::invite::command(
            store.as_ref(),
            &cli.data,
            c,
            &actor,
            out,
            err,
        )?),
        Command::Completions { .. } | Command::Manpage => generated(&cli.command, out),
    }
}

/// `completions SHELL` / `manpage`: from the clap definitions of [`Cli`]
/// (installer/build.sh ships them in the package).
fn generated(command: &Command, out: &mut dyn Write) -> Result<(), Failure> {
    use clap::CommandFactory;
    let mut buf = Vec::new();
    match command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "pra-registry", &mut buf);
        }
        _ => clap_mangen::Man::new(Cli::command())
            .render(&mut buf)
            .map_err(|e| {
                Failure::new(
                    Code::RegistryInvalid,
                    format!("cannot render the man page: {e}"),
                    "report this",
                )
            })?,
    }
    out.write_all(&buf).and_then(|()| out.flush()).map_err(|e| {
        Failure::new(
            Code::RegistryInvalid,
            format!("cannot write the output: {e}"),
            "check where the output goes",
        )
    })
}

/// `hostkey`: the gateway's `SHA256:` fingerprint (and public key line).
fn hostkey_command(
    data: &std::path::Path,
    args: &HostkeyArgs,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let key = crate::gateway::hostkey::load_or_create(data)?;
    let mut text = format!("{}\n", key.fingerprint());
    if args.public {
        text.push_str(&key.openssh_public());
        text.push('\n');
    }
    out.write_all(text.as_bytes()).map_err(|e| {
        Failure::new(
            Code::RegistryInvalid,
            format!("cannot write the output: {e}"),
            "check where the output goes",
        )
    })
}

fn serve_command(
    store: Arc<dyn Store>,
    data: &std::path::Path,
    args: ServeArgs,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let host_key = crate::gateway::hostkey::load_or_create(data)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Failure::new(
                Code::RegistryListen,
                format!("cannot start the runtime: {e}"),
                "check the system's limits (threads, memory)",
            )
        })?;
    let fingerprint = host_key.fingerprint();
    let mut opts = ServeOptions {
        ssh: args.ssh,
        api: args.api,
        gateway: Some(crate::gateway::GatewayConfig {
            gateway_id: args.gateway_id.filter(|id| !id.trim().is_empty()),
            max_sessions_per_key: args.max_sessions_per_key,
            ..crate::gateway::GatewayConfig::new(host_key)
        }),
        metrics: args.metrics,
        ..ServeOptions::default()
    };
    opts.api_config.trusted_proxies = crate::api::proxy::TrustedProxies::new(args.trusted_proxy);
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        let files = crate::api::tls::TlsFiles { cert, key };
        let reloading = crate::api::tls::Reloading::new(files).map_err(|e| {
            Failure::new(
                Code::RegistryTlsFiles,
                format!("cannot use the API's TLS certificate: {e}"),
                Code::RegistryTlsFiles.fix(),
            )
        })?;
        opts.api_config.tls = Some(reloading);
    }
    opts.audit_retention =
        (args.audit_keep > 0).then(|| crate::retention::Retention::days(args.audit_keep));
    runtime.block_on(async move {
        let listeners = serve::bind(&opts).await?;
        let api = listeners.api_addr().map_err(|e| {
            Failure::new(
                Code::RegistryListen,
                format!("the API listener has no address: {e}"),
                Code::RegistryListen.fix(),
            )
        })?;
        // Tests and scripts read these lines.
        let _ = writeln!(out, "api listening on {api}");
        if let Some(ssh) = listeners.ssh_addr() {
            let _ = writeln!(out, "{}", crate::gateway::listening_line(ssh, &fingerprint));
        }
        if let Some(metrics) = listeners.metrics_addr() {
            let _ = writeln!(out, "metrics listening on {metrics}");
        }
        let _ = out.flush();
        serve::run(listeners, store, opts, shutdown_signal())
            .await
            .map_err(|e| {
                Failure::new(
                    Code::RegistryListen,
                    format!("the registry stopped: {e}"),
                    "read the log above for the cause",
                )
            })
    })
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(%e, "cannot watch SIGTERM; only Ctrl-C stops the registry");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub(crate) type Out<'a> = &'a mut dyn Write;

pub(crate) fn json(
    out: Out<'_>,
    value: &impl serde::Serialize,
) -> Result<std::io::Result<()>, Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| {
        Failure::new(
            Code::RegistryDatabase,
            format!("cannot render JSON: {e}"),
            "report this",
        )
    })?;
    Ok(writeln!(out, "{text}"))
}

fn user(
    store: &dyn Store,
    c: UserCommand,
    actor: &Actor,
    out: Out<'_>,
) -> Result<std::io::Result<()>, Failure> {
    match c {
        UserCommand::Add { name } => {
            let u = store.add_user(&name, actor)?;
            Ok(writeln!(out, "added user {}", u.name))
        }
        UserCommand::List { json: true } => json(
            out,
            &UserList {
                users: store.list_users()?,
            },
        ),
        UserCommand::List { json: false } => {
            let users = store.list_users()?;
            if users.is_empty() {
                return Ok(writeln!(
                    out,
                    "no users (add one with `pra-registry user add NAME`)"
                ));
            }
            let keys = store.list_keys(None)?;
            let rules = store.list_rules(None)?;
            let rows = users
                .iter()
                .map(|u| {
                    let mine: Vec<&KeyRecord> = keys.iter().filter(|k| k.user == u.name).collect();
                    let approved = mine
                        .iter()
                        .filter(|k| k.status == KeyStatus::Approved)
                        .count();
                    let pending = mine
                        .iter()
                        .filter(|k| k.status == KeyStatus::Pending)
                        .count();
                    vec![
                        u.name.clone(),
                        if u.enabled { "enabled" } else { "disabled" }.to_string(),
                        format!("{approved} approved, {pending} pending"),
                        rules
                            .iter()
                            .filter(|r| r.user == u.name)
                            .count()
                            .to_string(),
                        time(u.created_at),
                    ]
                })
                .collect();
            Ok(out.write_all(
                table(&["USER", "STATUS", "KEYS", "RULES", "CREATED (UTC)"], rows).as_bytes(),
            ))
        }
        UserCommand::Disable { name } => {
            let u = store.set_user_enabled(&name, false, actor)?;
            Ok(writeln!(
                out,
                "disabled user {} (its keys no longer log in)",
                u.name
            ))
        }
        UserCommand::Enable { name } => {
            let u = store.set_user_enabled(&name, true, actor)?;
            Ok(writeln!(out, "enabled user {}", u.name))
        }
    }
}

fn key(
    store: &dyn Store,
    c: KeyCommand,
    actor: &Actor,
    out: Out<'_>,
) -> Result<std::io::Result<()>, Failure> {
    match c {
        KeyCommand::List {
            status,
            json: as_json,
        } => {
            let status = status.as_deref().and_then(KeyStatus::parse);
            let keys = store.list_keys(status)?;
            if as_json {
                return json(out, &KeyList { keys });
            }
            if keys.is_empty() {
                return Ok(writeln!(out, "no keys"));
            }
            let rows = keys
                .iter()
                .map(|k| {
                    let device = match (k.device.computer.as_str(), k.device.os_user.as_str()) {
                        ("", "") => "-".to_string(),
                        (c, "") => c.to_string(),
                        ("", u) => format!("({u})"),
                        (c, u) => format!("{c} ({u})"),
                    };
                    vec![
                        k.fingerprint.clone(),
                        k.user.clone(),
                        k.status.to_string(),
                        k.algorithm.clone(),
                        device,
                        time(k.submitted_at),
                        k.last_seen.map_or("never".into(), time),
                    ]
                })
                .collect();
            Ok(out.write_all(
                table(
                    &[
                        "FINGERPRINT",
                        "USER",
                        "STATUS",
                        "TYPE",
                        "DEVICE",
                        "SUBMITTED (UTC)",
                        "LAST SEEN",
                    ],
                    rows,
                )
                .as_bytes(),
            ))
        }
        KeyCommand::Import {
            file,
            user,
            approve,
        } => import(store, &file, user, approve, actor, out),
        KeyCommand::Approve { fingerprint } => {
            let fp = resolve_fingerprint(store, &fingerprint)?;
            let k = store.set_key_status(&fp, KeyStatus::Approved, actor)?;
            Ok(writeln!(out, "approved {} of {}", k.fingerprint, k.user))
        }
        KeyCommand::Revoke { fingerprint } => {
            let fp = resolve_fingerprint(store, &fingerprint)?;
            let k = store.set_key_status(&fp, KeyStatus::Revoked, actor)?;
            Ok(writeln!(out, "revoked {} of {}", k.fingerprint, k.user))
        }
    }
}

/// Shortest fingerprint prefix taken (after `SHA256:`).
pub const MIN_PREFIX: usize = 4;

/// A full fingerprint, or the one key whose fingerprint starts with the
/// given prefix (`SHA256:xPqo`, at least [`MIN_PREFIX`] characters after
/// `SHA256:`). An ambiguous prefix is refused with the candidates.
fn resolve_fingerprint(store: &dyn Store, given: &str) -> Result<String, Failure> {
    let invalid = match validate::fingerprint(given) {
        Ok(fp) => return Ok(fp.to_string()),
        Err(e) => e,
    };
    let given = given.trim();
    let is_prefix = given.strip_prefix("SHA256:").is_some_and(|b| {
        (MIN_PREFIX..43).contains(&b.len())
            && b.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
    });
    if !is_prefix {
        let mut f = Failure::from(invalid);
        f.what.push_str(&format!(
            " (or its start: `SHA256:` and at least {MIN_PREFIX} characters)"
        ));
        return Err(f);
    }
    let keys = store.list_keys(None)?;
    pick_prefix(given, &keys)
}

/// The key among `keys` whose fingerprint starts with `prefix` (pure).
fn pick_prefix(prefix: &str, keys: &[KeyRecord]) -> Result<String, Failure> {
    let hits: Vec<&KeyRecord> = keys
        .iter()
        .filter(|k| k.fingerprint.starts_with(prefix))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one.fingerprint.clone()),
        [] => Err(Failure::new(
            Code::RegistryNotFound,
            format!("no key's fingerprint starts with {}", sanitize(prefix, 60)),
            "check the fingerprint with `pra-registry key list`",
        )),
        many => {
            let listed: Vec<String> = many
                .iter()
                .map(|k| format!("{} ({}, {})", k.fingerprint, k.user, k.status))
                .collect();
            Err(Failure::new(
                Code::RegistryAmbiguous,
                format!(
                    "the fingerprint prefix {} matches {} keys: {}",
                    sanitize(prefix, 60),
                    many.len(),
                    listed.join(", ")
                ),
                Code::RegistryAmbiguous.fix(),
            ))
        }
    }
}

fn read_import(file: &PathBuf) -> Result<Vec<u8>, Failure> {
    let shown = sanitize(&file.display().to_string(), 200);
    let mut bytes = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin()
            .take(MAX_IMPORT + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| io_failure(format!("cannot read standard input: {e}")))?;
    } else {
        std::fs::File::open(file)
            .and_then(|f| f.take(MAX_IMPORT + 1).read_to_end(&mut bytes))
            .map_err(|e| io_failure(format!("cannot read {shown}: {e}")))?;
    }
    if bytes.len() as u64 > MAX_IMPORT {
        return Err(Failure::new(
            Code::RegistryInvalid,
            format!("{shown} is larger than {MAX_IMPORT} bytes; it is not a public key file"),
            "import the file written by `pra key export`, or the .pub file",
        ));
    }
    Ok(bytes)
}

fn import(
    store: &dyn Store,
    file: &PathBuf,
    user: Option<String>,
    approve: bool,
    actor: &Actor,
    out: Out<'_>,
) -> Result<std::io::Result<()>, Failure> {
    let bytes = read_import(file)?;
    // Before anything could quote the file: a private key is refused whole.
    if validate::looks_private(&bytes) {
        return Err(validate::private_key_refused().into());
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        Failure::from(RegistryError::Invalid {
            field: "public key",
            reason: "the file is not text".into(),
            code: pra_proto::api::ApiErrorCode::InvalidPublicKey,
        })
    })?;
    // Files saved by Windows editors may start with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let key_lines = text
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            ["ssh-", "ecdsa-", "sk-"].iter().any(|p| t.starts_with(p))
        })
        .count();
    if key_lines > 1 {
        return Err(RegistryError::Invalid {
            field: "public key",
            reason: format!("the file holds {key_lines} keys; import exactly one key per file"),
            code: pra_proto::api::ApiErrorCode::InvalidPublicKey,
        }
        .into());
    }
    let handover = Handover::parse(text).map_err(|e| RegistryError::Invalid {
        field: "hand-over file",
        reason: e.to_string(),
        code: pra_proto::api::ApiErrorCode::InvalidPublicKey,
    })?;
    let key = validate::public_key(&handover.public_key)?;
    let user = match (user, handover.user) {
        (Some(a), Some(b)) if a != b => {
            return Err(Failure::new(
                Code::RegistryInvalid,
                format!(
                    "the file is for user {} but --user says {}",
                    sanitize(&b, 64),
                    sanitize(&a, 64)
                ),
                "check whose key this is; drop --user to use the file's user",
            ));
        }
        (Some(u), _) | (None, Some(u)) => u,
        (None, None) => {
            return Err(Failure::new(
                Code::RegistryInvalid,
                "the file does not name a user",
                "say whose key it is with --user NAME",
            ));
        }
    };
    validate::user_name(&user)?;
    let device = validate::device(&handover.device.unwrap_or_default())?;
    let new_user = store.get_user(&user)?.is_none();
    let fingerprint = key.fingerprint.clone();
    let result = store.add_key(
        NewKey {
            fingerprint: key.fingerprint,
            user: user.clone(),
            public_key: key.line,
            algorithm: key.algorithm,
            device,
            status: if approve {
                KeyStatus::Approved
            } else {
                KeyStatus::Pending
            },
        },
        true,
        actor,
    );
    let (record, created) = match result {
        Err(RegistryError::Conflict(_)) => {
            let owner = store
                .get_key(&fingerprint)?
                .map(|k| k.user)
                .unwrap_or_default();
            return Err(Failure::new(
                Code::RegistryConflict,
                format!("key {fingerprint} is already registered to user {owner}"),
                "a key belongs to one user; the employee generates a new key for this account",
            ));
        }
        other => other?,
    };
    let record = if !created && approve && record.status == KeyStatus::Pending {
        store.set_key_status(&record.fingerprint, KeyStatus::Approved, actor)?
    } else {
        record
    };
    if record.status == KeyStatus::Revoked && approve {
        return Err(RegistryError::Conflict(format!(
            "key {} was revoked and cannot be approved again",
            record.fingerprint
        ))
        .into());
    }
    let mut msg = String::new();
    if created && new_user {
        msg.push_str(&format!("created user {user}\n"));
    }
    if created {
        msg.push_str(&format!(
            "imported {} ({}) for {}: {}\n",
            record.fingerprint, record.algorithm, record.user, record.status
        ));
    } else {
        msg.push_str(&format!(
            "{} is already registered for {}: {}\n",
            record.fingerprint, record.user, record.status
        ));
    }
    if record.status == KeyStatus::Pending {
        msg.push_str(&format!(
            "approve it with: pra-registry key approve {}\n",
            record.fingerprint
        ));
    }
    Ok(out.write_all(msg.as_bytes()))
}

/// `HOST:PORT` for display (IPv6 in brackets).
pub fn show_target(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn rule(
    store: &dyn Store,
    c: RuleCommand,
    actor: &Actor,
    out: Out<'_>,
) -> Result<std::io::Result<()>, Failure> {
    match c {
        RuleCommand::Add {
            user,
            name,
            local,
            target,
        } => {
            let local = validate::port_text("local port", &local)?;
            let (host, port) = validate::target(&target)?;
            let r = validate::rule(&user, &name, i64::from(local), &host, i64::from(port))?;
            let r = store.add_rule(r, actor)?;
            Ok(writeln!(
                out,
                "added rule {} for {}: 127.0.0.1:{} -> {}",
                r.name,
                r.user,
                r.local_port,
                show_target(&r.target_host, r.target_port)
            ))
        }
        RuleCommand::List {
            user,
            json: as_json,
        } => {
            let rules = store.list_rules(user.as_deref())?;
            if as_json {
                return json(out, &RuleList { rules });
            }
            if rules.is_empty() {
                return Ok(writeln!(out, "no rules"));
            }
            let rows = rules
                .iter()
                .map(|r: &RuleRecord| {
                    vec![
                        r.user.clone(),
                        r.name.clone(),
                        format!("127.0.0.1:{}", r.local_port),
                        show_target(&r.target_host, r.target_port),
                    ]
                })
                .collect();
            Ok(out.write_all(table(&["USER", "RULE", "LOCAL", "TARGET"], rows).as_bytes()))
        }
        RuleCommand::Remove { user, name } => {
            store.remove_rule(&user, &name, actor)?;
            Ok(writeln!(out, "removed rule {name} of {user}"))
        }
    }
}

fn session(
    store: &dyn Store,
    c: SessionCommand,
    actor: &Actor,
    out: Out<'_>,
) -> Result<std::io::Result<()>, Failure> {
    match c {
        SessionCommand::List { json: as_json } => {
            let sessions = store.list_live_sessions()?;
            if as_json {
                return json(out, &SessionList { sessions });
            }
            if sessions.is_empty() {
                return Ok(writeln!(out, "no live sessions"));
            }
            let rows = sessions
                .iter()
                .map(|s| {
                    vec![
                        s.id.to_string(),
                        s.gateway.clone(),
                        s.user.clone(),
                        s.fingerprint.clone(),
                        s.source.clone(),
                        time_seconds(s.started_at),
                        s.bytes_up.to_string(),
                        s.bytes_down.to_string(),
                        if s.disconnect_requested_at.is_some() {
                            "disconnecting".into()
                        } else {
                            "live".into()
                        },
                    ]
                })
                .collect();
            Ok(out.write_all(
                table(
                    &[
                        "ID",
                        "GATEWAY",
                        "USER",
                        "KEY",
                        "SOURCE",
                        "SINCE (UTC)",
                        "BYTES UP",
                        "BYTES DOWN",
                        "STATE",
                    ],
                    rows,
                )
                .as_bytes(),
            ))
        }
        SessionCommand::Disconnect { id } => {
            const HINT: &str =
                "list the live sessions and their ids with `pra-registry session list`";
            let id: i64 = id.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                let mut f = Failure::from(RegistryError::invalid(
                    "session id",
                    "give the number `session list` shows",
                ));
                f.fix = HINT.into();
                f
            })?;
            let s = store.request_disconnect(id, actor).map_err(|e| {
                let mut f = Failure::from(e);
                if f.code == Code::RegistryNotFound {
                    f.fix = HINT.into();
                }
                f
            })?;
            Ok(writeln!(
                out,
                "asked gateway {} to disconnect session {} of {} (from {}); it ends within seconds",
                s.gateway, s.id, s.user, s.source
            ))
        }
    }
}

fn token(
    store: &dyn Store,
    c: TokenCommand,
    actor: &Actor,
    out: Out<'_>,
    err: Out<'_>,
) -> Result<std::io::Result<()>, Failure> {
    match c {
        TokenCommand::Create { name, expires } => {
            validate::token_name(&name)?;
            let expires_at = expires
                .as_deref()
                .map(|d| validate::duration("--expires", d))
                .transpose()?
                .map(|secs| crate::model::now() + secs);
            let mut raw = [0u8; 32];
            getrandom::fill(&mut raw).map_err(|e| {
                Failure::new(
                    Code::RegistryDatabase,
                    format!("the OS random generator failed: {e}"),
                    "try again",
                )
            })?;
            let token = BearerToken::new(format!(
                "pra_{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
            ));
            store.add_token_until(&name, &token.hash(), expires_at, actor)?;
            if let Err(e) = writeln!(out, "{}", token.expose()) {
                return Ok(Err(e));
            }
            let until = match expires_at {
                Some(at) => format!("valid until {}", time(at)),
                None => "valid until revoked (`pra-registry token revoke NAME`)".into(),
            };
            Ok(writeln!(
                err,
                "token {name} created, {until}; it is shown only this once: store it now \
                 (send it as `Authorization: Bearer TOKEN`)"
            ))
        }
        TokenCommand::List { json: true } => json(
            out,
            &TokenList {
                tokens: store.list_tokens()?,
            },
        ),
        TokenCommand::List { json: false } => {
            let tokens = store.list_tokens()?;
            if tokens.is_empty() {
                return Ok(writeln!(
                    out,
                    "no tokens (create one with `pra-registry token create --name NAME`)"
                ));
            }
            let now = crate::model::now();
            let rows = tokens
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        time(t.created_at),
                        t.last_used.map(time).unwrap_or_else(|| "never".into()),
                        match t.expires_at {
                            None => "never".into(),
                            Some(at) if at <= now => format!("{} (expired)", time(at)),
                            Some(at) => time(at),
                        },
                    ]
                })
                .collect();
            Ok(out.write_all(
                table(
                    &["NAME", "CREATED (UTC)", "LAST USED (UTC)", "EXPIRES (UTC)"],
                    rows,
                )
                .as_bytes(),
            ))
        }
        TokenCommand::Revoke { name } => {
            validate::token_name(&name)?;
            let t = store.revoke_token(&name, actor)?;
            Ok(writeln!(
                out,
                "revoked token {} (API requests and admin web sessions using it are refused from now on)",
                t.name
            ))
        }
    }
}

fn audit(store: &dyn Store, a: AuditArgs, out: Out<'_>) -> Result<std::io::Result<()>, Failure> {
    if !(1..=1000).contains(&a.limit) {
        return Err(RegistryError::invalid("limit", "give a number from 1 to 1000").into());
    }
    let events = store.audit(&AuditQuery {
        user: a.user,
        kind_prefix: a.kind,
        before_id: None,
        limit: a.limit,
    })?;
    if a.json {
        return json(out, &AuditList { events });
    }
    if events.is_empty() {
        return Ok(writeln!(out, "no events"));
    }
    let rows = events.iter().map(audit_row).collect();
    Ok(out.write_all(
        table(
            &[
                "ID",
                "TIME (UTC)",
                "EVENT",
                "ACTOR",
                "USER",
                "SOURCE",
                "DETAIL",
            ],
            rows,
        )
        .as_bytes(),
    ))
}

fn audit_row(e: &AuditEntry) -> Vec<String> {
    let mut detail = Vec::new();
    if let Some(fp) = &e.event.fingerprint {
        detail.push(fp.clone());
    }
    match &e.event.detail {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let v = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                detail.push(format!("{k}={v}"));
            }
        }
        serde_json::Value::Null => {}
        other => detail.push(other.to_string()),
    }
    vec![
        e.id.to_string(),
        time_seconds(e.at),
        e.event.kind.clone(),
        e.event.actor.clone(),
        e.event.user.clone().unwrap_or_else(|| "-".into()),
        e.event.source.clone().unwrap_or_else(|| "-".into()),
        sanitize(&detail.join(" "), 160),
    ]
}

/// Left-aligned columns separated by two spaces; every cell sanitized.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| r.into_iter().map(|c| sanitize(&c, 200)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                let pad = widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(c.chars().count());
                s.push_str(c);
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(headers.to_vec());
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `YYYY-MM-DD HH:MM` in UTC.
pub fn time(ts: Timestamp) -> String {
    let (y, m, d) = civil(ts.div_euclid(86_400));
    let secs = ts.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// `YYYY-MM-DD HH:MM:SS` in UTC.
pub fn time_seconds(ts: Timestamp) -> String {
    format!("{}:{:02}", time(ts), ts.rem_euclid(60))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn serve_takes_trusted_proxies_and_audit_keep() {
        let cli = Cli::try_parse_from([
            "pra-registry",
            "serve",
            "--trusted-proxy",
            "10.0.0.1",
            "--trusted-proxy",
            "::1",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(args.trusted_proxy.len(), 2);
        assert_eq!(args.audit_keep, 365);
        let cli = Cli::try_parse_from(["pra-registry", "serve", "--audit-keep", "30"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert_eq!((args.audit_keep, args.trusted_proxy.len()), (30, 0));
        for bad in [
            &["serve", "--trusted-proxy", "proxy.example"][..],
            &["serve", "--audit-keep", "-1"],
        ] {
            let mut argv = vec!["pra-registry"];
            argv.extend_from_slice(bad);
            assert!(Cli::try_parse_from(argv).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fingerprint_prefixes_pick_one_key_or_list_the_candidates() {
        let key = |fp: &str, user: &str| KeyRecord {
            fingerprint: fp.into(),
            user: user.into(),
            public_key: String::new(),
            algorithm: "ssh-ed25519".into(),
            device: pra_proto::api::Device {
                computer: String::new(),
                os_user: String::new(),
                description: String::new(),
                tag: String::new(),
            },
            status: KeyStatus::Pending,
            submitted_at: 0,
            approved_by: None,
            approved_at: None,
            revoked_by: None,
            revoked_at: None,
            last_seen: None,
        };
        let keys = [
            key("SHA256:xPqoAAA", "alice"),
            key("SHA256:xPqoBBB", "bob"),
            key("SHA256:zzzzCCC", "carol"),
        ];
        assert_eq!(pick_prefix("SHA256:z", &keys).unwrap(), "SHA256:zzzzCCC");
        assert_eq!(
            pick_prefix("SHA256:xPqoB", &keys).unwrap(),
            "SHA256:xPqoBBB"
        );
        let e = pick_prefix("SHA256:xPqo", &keys).unwrap_err();
        assert_eq!(
            e.line(),
            "ERR(10306) the fingerprint prefix SHA256:xPqo matches 2 keys: SHA256:xPqoAAA (alice, pending), \
             SHA256:xPqoBBB (bob, pending): give more characters of the fingerprint, as `pra-registry key list` shows it"
        );
        assert_eq!(
            pick_prefix("SHA256:nope", &keys).unwrap_err().code,
            Code::RegistryNotFound
        );
    }

    #[test]
    fn times_are_utc_calendar_dates() {
        for (ts, want) in [
            (0, "1970-01-01 00:00"),
            (951_782_400, "2000-02-29 00:00"),
            (1_795_458_517, "2026-11-23 18:28"),
            (4_102_444_799, "2099-12-31 23:59"),
            (-1, "1969-12-31 23:59"),
        ] {
            assert_eq!(time(ts), want, "{ts}");
        }
        assert_eq!(time_seconds(61), "1970-01-01 00:01:01");
    }

    #[test]
    fn tables_align_and_sanitize() {
        let t = table(
            &["A", "LONGER"],
            vec![
                vec!["xyz".into(), "1".into()],
                vec!["\x1b[31m".into(), "2".into()],
            ],
        );
        assert_eq!(t, "A           LONGER\nxyz         1\n\\u{1b}[31m  2\n");
    }

    #[test]
    fn database_url_is_masked_and_tls_settings_are_checked_before_connecting() {
        let cli = Cli::parse_from([
            "pra-registry",
            "--database",
            "postgres://admin:hunter2@db/pra?sslmode=verify-full&sslrootcert=/no/such/ca.pem",
            "user",
            "list",
        ]);
        let config = Config::from_cli(&cli).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        // TLS is supported; a root file that cannot be read is refused before
        // any connection is tried, naming the file and never the password.
        let line = config.open_store().err().unwrap().line();
        assert!(line.starts_with("ERR(10300) "), "{line}");
        assert!(line.contains("sslrootcert=/no/such/ca.pem"), "{line}");
        assert!(line.contains("PRA_DATABASE_URL"), "{line}");
        assert!(!line.contains("hunter2"));
        let cli = Cli::parse_from(["pra-registry", "--database", "mysql://x", "user", "list"]);
        assert_eq!(
            Config::from_cli(&cli).unwrap_err().code,
            Code::RegistryInvalid
        );
    }

    #[test]
    fn targets_display_with_brackets_for_ipv6() {
        assert_eq!(show_target("::1", 22), "[::1]:22");
        assert_eq!(show_target("mail.corp", 25), "mail.corp:25");
    }
}
