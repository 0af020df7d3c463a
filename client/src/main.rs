//! `pra`: parse arguments, run, print the one error line, map it to an exit code.

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
    let cli = match pra_client::cli::parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match pra_client::commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("{}", err.line());
            ExitCode::FAILURE
        }
    }
}
