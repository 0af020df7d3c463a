//! One module per `pra` command; [`run`] dispatches the parsed [`Cli`].
//!
//! Commands return `Ok(ExitCode)` or a [`ClientError`] that `main` prints as
//! its one line (`ERR(…) what: fix`) with a non-zero exit status.

use crate::cli::{Cli, Command, KeyCommand, LogsCommand, ServerCommand};
use crate::error::ClientResult;
use std::process::ExitCode;

pub mod connect;
pub mod doctor;
pub mod key;
pub mod keygen;
pub mod logs;
pub mod server;

/// Run one parsed command line.
pub fn run(cli: Cli) -> ClientResult<ExitCode> {
    let home = crate::home::Home::resolve(cli.home.as_deref())?;
    match cli.command {
        Command::Server(ServerCommand::Set { address, host_key }) => {
            server::set(&home, &address, host_key.as_deref())
        }
        Command::Server(ServerCommand::Show) => server::show(&home),
        Command::Keygen { user, force } => keygen::run(&home, &user, force),
        Command::Key(KeyCommand::Show) => key::show(&home),
        Command::Key(KeyCommand::Export { file }) => key::export(&home, file.as_deref()),
        Command::Key(KeyCommand::Submit { registry }) => key::submit(&home, registry.as_deref()),
        Command::Connect { json } => connect::run(&home, json),
        Command::Doctor { json } => doctor::run(&home, json),
        Command::Logs(LogsCommand::Export { file }) => logs::export(&home, file.as_deref()),
    }
}
