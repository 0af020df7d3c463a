//! `pra-registry`: parse arguments, install tracing, run the command, print
//! the one error line and map it to the exit status.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match pra_registry::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // One line: clap's message (up to its first blank line) without
            // its "error: " prefix.
            let text = e.render().to_string();
            let joined = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ");
            let what = joined.strip_prefix("error: ").unwrap_or(&joined);
            eprintln!(
                "{}",
                pra_proto::codes::line(
                    pra_proto::codes::Code::RegistryInvalid,
                    what,
                    "see `pra-registry --help` (or `pra-registry COMMAND --help`)"
                )
            );
            return ExitCode::from(2);
        }
    };
    // `serve` logs its requests at info; admin commands only say what went wrong.
    let default_level = match cli.command {
        pra_registry::cli::Command::Serve(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    match pra_registry::cli::run(cli, &mut out, &mut err) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{}", failure.line());
            ExitCode::FAILURE
        }
    }
}
