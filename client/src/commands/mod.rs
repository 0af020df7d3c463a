//! One module per `pra` command; [`run`] dispatches the parsed [`Cli`].
//!
//! Commands return `Ok(ExitCode)` or a [`ClientError`] that `main` prints as
//! its one line (`ERR(…) what: fix`) with a non-zero exit status.

use crate::cli::{Cli, Command, KeyCommand, LogsCommand, ServerCommand};
use crate::error::ClientResult;
use std::process::ExitCode;

pub(crate) mod completions;
pub mod connect;
pub mod doctor;
pub(crate) mod enroll;
pub mod key;
pub mod keygen;
pub mod logs;
pub mod server;

/// Run one parsed command line.
pub fn run(cli: Cli) -> ClientResult<ExitCode> {
    // Generated from the command definitions alone: no home needed.
    match cli.command {
        Command::Completions { shell } => return completions::completions(shell),
        Command::Manpage => return completions::manpage(),
        _ => {}
    }
    let home = crate::home::Home::resolve(cli.home.as_deref())?;
    // Commands that change the key or the gateway leave their events in
    // System.log and User.log for the helpdesk (successes where they
    // happen, so the app's are logged too; `key submit` and `enroll` log their failure
    // itself; connect, doctor and logs export log their own lines).
    let (log, log_failure) = match &cli.command {
        Command::Keygen { .. } | Command::Server(ServerCommand::Set { .. }) => (true, true),
        Command::Key(KeyCommand::Submit { .. }) | Command::Enroll { .. } => (true, false),
        _ => (false, false),
    };
    if log {
        let _ = crate::logging::init(&home);
    }
    let r = dispatch(&home, cli.command);
    if log_failure && let Err(e) = &r {
        crate::logging::user_line(&e.line());
    }
    r
}

fn dispatch(home: &crate::home::Home, command: Command) -> ClientResult<ExitCode> {
    match command {
        Command::Server(ServerCommand::Set { address, host_key }) => {
            server::set(home, &address, host_key.as_deref())
        }
        Command::Server(ServerCommand::Show { json }) => server::show(home, json),
        Command::Keygen { user, force } => keygen::run(home, &user, force),
        Command::Enroll { invite, force } => enroll::run(home, &invite, force),
        Command::Key(KeyCommand::Show { json }) => key::show(home, json),
        Command::Key(KeyCommand::Export { file }) => key::export(home, file.as_deref()),
        Command::Key(KeyCommand::Submit { registry, ca }) => {
            key::submit(home, registry.as_deref(), ca.as_deref())
        }
        Command::Connect { json } => connect::run(home, json),
        Command::Doctor { json } => doctor::run(home, json),
        Command::Logs(LogsCommand::Export { file }) => logs::export(home, file.as_deref()),
        Command::Completions { shell } => completions::completions(shell),
        Command::Manpage => completions::manpage(),
    }
}
