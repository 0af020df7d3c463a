//! The `pra` command line: clap definitions and dispatch.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use pra_proto::codes::Code;
use std::path::PathBuf;
use std::process::ExitCode;

/// First line of `pra --help`.
pub(crate) const ABOUT: &str = "PRA: SSH port-forwarding client for remote employees";

/// PRA: SSH port-forwarding client for remote employees.
#[derive(Debug, Parser)]
#[command(name = "pra", version, about = ABOUT)]
pub struct Cli {
    /// Folder for everything the client keeps (config, key, logs); default:
    /// %ProgramData%\Pra on Windows, $XDG_DATA_HOME/pra or ~/.local/share/pra on Linux.
    #[arg(long, env = "PRA_HOME", global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The clap command with this machine's default home in the `--home` help.
pub fn command() -> clap::Command {
    let default = crate::home::default_root()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "none here: pass --home DIR".into());
    Cli::command().mut_arg("home", |a| {
        a.help(format!(
            "Folder for everything the client keeps (config, key, logs) [default: {default}]"
        ))
    })
}

/// Parse `args`; on a usage error print the one `ERR(10110)` line (help
/// and version go to stdout as usual) and return the exit status.
pub fn parse_from<I, T>(args: I) -> Result<Cli, ExitCode>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::error::ErrorKind;
    let mut cmd = command();
    let parsed = cmd
        .try_get_matches_from_mut(args)
        .and_then(|m| Cli::from_arg_matches(&m).map_err(|e| e.format(&mut cmd)));
    match parsed {
        Ok(cli) => Ok(cli),
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                let _ = e.print();
                Err(ExitCode::SUCCESS)
            }
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                let _ = e.print();
                Err(ExitCode::from(2))
            }
            _ => {
                eprintln!("{}", usage_line(&e.render().to_string()));
                Err(ExitCode::from(2))
            }
        },
    }
}

/// clap's rendered error as one line (pure): `ERR(10110) REASON: usage:
/// USAGE; see `pra --help``. The reason is clap's message up to its first
/// blank line, without its `error: ` prefix.
pub(crate) fn usage_line(rendered: &str) -> String {
    let what = pra_proto::codes::usage_reason(rendered);
    let usage = rendered
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .map(str::trim);
    let fix = match usage {
        Some(u) => {
            let cmd: Vec<&str> = u
                .split_whitespace()
                .take_while(|w| !w.starts_with(['[', '<', '-']))
                .collect();
            format!("usage: {u}; see `{} --help`", cmd.join(" "))
        }
        None => Code::UsageInvalid.fix().to_string(),
    };
    pra_proto::codes::line(Code::UsageInvalid, &what, &fix)
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Gateway ("SUS server") address and pinned host key.
    #[command(subcommand)]
    Server(ServerCommand),
    /// Create the hardware-bound keypair, protected by a passphrase.
    Keygen {
        /// Account name given by your administrator.
        #[arg(long, value_name = "NAME")]
        user: String,
        /// Replace an existing key (it must be approved again).
        #[arg(long)]
        force: bool,
    },
    /// One step with the invite your administrator gave you: set the
    /// gateway, make the key and hand it over on the gateway's SSH port.
    Enroll {
        /// The invite (one line starting with pra-invite:).
        invite: String,
        /// Replace an existing key (it must be approved again).
        #[arg(long)]
        force: bool,
    },
    /// Show, export or submit the public key.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Connect and open every forward on 127.0.0.1 until Ctrl-C.
    Connect {
        /// Print machine-readable JSON events (one per line) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Step-by-step self-test for the helpdesk.
    Doctor {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Log bundle for the helpdesk.
    #[command(subcommand)]
    Logs(LogsCommand),
    /// Print the shell completion script (bash, zsh, fish, powershell, elvish).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), for packaging.
    #[command(hide = true)]
    Manpage,
}

/// `pra server …`.
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Set the gateway address (default port 10022); more addresses are
    /// further gateways of the same registry, tried in order when one cannot
    /// be used.
    Set {
        /// HOST or HOST:PORT ([v6]:PORT for IPv6 literals); several: tried in this order.
        #[arg(required = true, num_args = 1.., value_name = "HOST[:PORT]")]
        address: Vec<String>,
        /// Pin the gateway's host key (SHA256:… as given by your administrator;
        /// one key for all the gateways given).
        #[arg(long, value_name = "SHA256:…")]
        host_key: Option<String>,
    },
    /// Print the address and the pinned host key.
    Show {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `pra key …`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Fingerprint, user and what the key is bound to.
    Show {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write the public key hand-over file to FILE or stdout.
    Export {
        /// Output file (stdout when absent).
        file: Option<PathBuf>,
    },
    /// Send the public key and device description to the registry.
    Submit {
        /// Registry URL, e.g. https://registry.example.com (default: the one used last time).
        #[arg(long, value_name = "URL")]
        registry: Option<String>,
        /// PEM file of the CA that signed the registry's HTTPS certificate, when
        /// your administrator uses a private CA (default: the well-known public CAs).
        #[arg(long, value_name = "FILE")]
        ca: Option<PathBuf>,
    },
}

/// `pra logs …`.
#[derive(Debug, Subcommand)]
pub enum LogsCommand {
    /// Write one zip with System.log, User.log, config without secrets and a doctor report.
    Export {
        /// Output file (default: pra-logs-<time>.zip in the current folder).
        file: Option<PathBuf>,
    },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn usage_errors_are_one_coded_line() {
        let rendered = "error: unexpected argument '--json' found\n\n  tip: to pass '--json' as a value, use '-- --json'\n\nUsage: pra server show\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_line(rendered),
            "ERR(10110) unexpected argument '--json' found: usage: pra server show; see `pra server show --help`"
        );
        let e = command()
            .try_get_matches_from(["pra", "keygen"])
            .unwrap_err();
        let line = usage_line(&e.render().to_string());
        assert!(
            line.starts_with("ERR(10110) the following required arguments were not provided: --user <NAME>: usage: pra keygen --user <NAME>"),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }
}
