//! `pra-registry`: parse arguments, install tracing, run the command, print
//! the one error line and map it to the exit status.

use clap::Parser;
use std::process::ExitCode;

/// Keep freed memory in the process rather than handing it back to the OS
/// at once: under bulk traffic glibc trimmed the heap after every burst of
/// packet buffers and faulted the pages in again, a quarter of the
/// gateway's CPU (docs/performance.md). A free heap top above 32 MiB is
/// still given back.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: mallopt only sets glibc's malloc parameters; it runs first
    // thing in main, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

fn main() -> ExitCode {
    tune_allocator();
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
