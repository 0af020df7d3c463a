//! `pra-registry`: parse arguments, install tracing, run the command, print
//! the one error line and map it to the exit status.

use clap::Parser;
use std::process::ExitCode;

/// Standard output that ends the process with status 0 when the pipe's
/// reader has gone away, like every Unix tool, instead of an error line.
struct QuietStdout {
    quiet_exit: bool,
}

impl QuietStdout {
    fn check<T>(&self, r: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &r
            && self.quiet_exit
            && e.kind() == std::io::ErrorKind::BrokenPipe
        {
            std::process::exit(0);
        }
        r
    }
}

impl std::io::Write for QuietStdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = std::io::stdout().write(buf);
        self.check(r)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let r = std::io::stdout().flush();
        self.check(r)
    }
}

fn main() -> ExitCode {
    pra_proto::rt::tune_allocator();
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
            let what = pra_proto::codes::usage_reason(&e.render().to_string());
            eprintln!(
                "{}",
                pra_proto::codes::line(
                    pra_proto::codes::Code::RegistryInvalid,
                    &what,
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
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let json = matches!(&cli.command, pra_registry::cli::Command::Serve(a)
        if a.log_format == pra_registry::cli::LogFormat::Json);
    if json {
        // One object per line: timestamp, level, target, message and the
        // event's fields at the top level.
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    // Admin commands end quietly when the reader of their output is gone
    // (`rule list --json | head -3`); `serve` keeps running whatever
    // happens to its stdout.
    let serve = matches!(cli.command, pra_registry::cli::Command::Serve(_));
    let mut out = QuietStdout { quiet_exit: !serve };
    let mut err = std::io::stderr();
    match pra_registry::commands::run(cli, &mut out, &mut err) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{}", failure.line());
            ExitCode::FAILURE
        }
    }
}
