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
    match pra_registry::cli::run(cli, &mut out, &mut err) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{}", failure.line());
            ExitCode::FAILURE
        }
    }
}
