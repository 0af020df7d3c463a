//! Process helpers both binaries (`pra`, `pra-registry`) start with
//! (feature `rt`): allocator tuning and the stop signal.

/// Keep freed memory in the process rather than handing it back to the OS
/// at once: under bulk traffic glibc trimmed the heap after every burst of
/// packet buffers and faulted the pages in again, a quarter of the
/// gateway's CPU (docs/performance.md). A free heap top above 32 MiB is
/// still given back. Call it first thing in `main`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune_allocator() {
    // SAFETY: mallopt only sets glibc's malloc parameters; it runs first
    // thing in main, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

/// Nothing to tune outside glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_allocator() {}

/// Resolves on Ctrl-C, or SIGTERM on Unix. When SIGTERM cannot be watched,
/// `no_sigterm` is told why and only Ctrl-C stops.
pub async fn shutdown_signal(no_sigterm: impl FnOnce(std::io::Error)) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                no_sigterm(e);
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = no_sigterm;
        let _ = tokio::signal::ctrl_c().await;
    }
}
