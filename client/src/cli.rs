//! The `pra` command line: clap definitions and dispatch.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// PRA: SSH port-forwarding client for remote employees.
#[derive(Debug, Parser)]
#[command(name = "pra", version, about)]
pub struct Cli {
    /// Folder for everything the client keeps (config, key, logs).
    #[arg(long, env = "PRA_HOME", global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
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
}

/// `pra server …`.
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Set the gateway address (default port 10022).
    Set {
        /// HOST or HOST:PORT ([v6]:PORT for IPv6 literals).
        address: String,
        /// Pin the gateway's host key (SHA256:… as given by your administrator).
        #[arg(long, value_name = "SHA256:…")]
        host_key: Option<String>,
    },
    /// Print the address and the pinned host key.
    Show,
}

/// `pra key …`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Fingerprint, user and what the key is bound to.
    Show,
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
