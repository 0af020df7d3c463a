//! The admin CLI's arguments ([`Cli`]): clap definitions only. The
//! commands live in [`crate::commands`], the validated configuration in
//! [`crate::config`], the one-line failure in [`crate::failure`].

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Default data folder.
#[cfg(unix)]
pub const DEFAULT_DATA_DIR: &str = "/var/lib/pra-registry";
/// Default data folder.
#[cfg(not(unix))]
pub const DEFAULT_DATA_DIR: &str = r"C:\ProgramData\pra-registry";

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
    Invite(InviteCommand),
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
    #[arg(long, value_name = "ADDR", default_value = crate::serve::DEFAULT_SSH_ADDR)]
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

/// How long an invite is valid unless `--expires` says otherwise.
pub const DEFAULT_EXPIRY: &str = crate::invite::DEFAULT_EXPIRY;

/// `invite …`.
#[derive(Debug, Subcommand)]
pub enum InviteCommand {
    /// Create a one-time invite for an existing user and print it (one
    /// `pra-invite:…` line); only the secret's hash is kept.
    Create {
        /// The account the employee's key is enrolled for.
        #[arg(long, value_name = "NAME")]
        user: String,
        /// Address employees reach the gateway at, HOST or HOST:PORT
        /// (default port 10022); repeat for several gateways, tried in order
        /// (default: this computer's host name).
        #[arg(long = "gateway", value_name = "HOST[:PORT]")]
        gateways: Vec<String>,
        /// The invite is refused after this long (e.g. 2d, 12h).
        #[arg(long, value_name = "DURATION", default_value = DEFAULT_EXPIRY)]
        expires: String,
        /// A key enrolled with this invite is approved at once (otherwise
        /// it waits in `key list --status pending`).
        #[arg(long)]
        approve: bool,
    },
    /// List the invites: id, user, state, expiry (never their secrets).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Withdraw an invite that was not used yet: it is refused from now on.
    Revoke {
        /// The invite's id, as `invite list` shows it.
        id: String,
    },
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
}
