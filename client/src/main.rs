//! `pra`: parse arguments, run, print the one error line, map it to an exit code.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = pra_client::cli::Cli::parse();
    match pra_client::commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("{}", err.line());
            ExitCode::FAILURE
        }
    }
}
