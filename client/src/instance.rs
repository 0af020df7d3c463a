//! One connection per home folder: `pra connect` and the app's Connect
//! hold an OS file lock on `connect.lock` while their tunnel runs, and name
//! themselves in `connect.pid`. A second one on the same home is refused
//! with `ERR(10111)` naming the running process, instead of opening a
//! second session whose ports the first one already holds.
//!
//! The lock is the OS's (`flock` / `LockFileEx`): it goes away with the
//! process, so a crashed client never leaves a stale lock behind. The pid
//! file is a separate file because Windows locks keep other processes from
//! reading the locked file.

use crate::error::{ClientError, ClientResult};
use crate::home::Home;
use pra_proto::codes::Code;
use std::fs::{File, OpenOptions};
use std::path::PathBuf;

/// Held while a tunnel of this home runs; dropping it releases the home.
#[derive(Debug)]
pub struct ConnectLock {
    _file: File,
    pid_file: Option<PathBuf>,
}

impl Drop for ConnectLock {
    fn drop(&mut self) {
        // Removed while still locked: no other process can have written it.
        if let Some(p) = &self.pid_file {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn lock_file(home: &Home) -> PathBuf {
    home.root().join("connect.lock")
}

fn pid_file(home: &Home) -> PathBuf {
    home.root().join("connect.pid")
}

/// Take the home's connection for `program` (`pra connect`, `pra-gui`), or
/// fail with `ERR(10111)` naming the process that has it.
pub fn acquire(home: &Home, program: &str) -> ClientResult<ConnectLock> {
    home.ensure()?;
    let path = lock_file(home);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| {
            ClientError::new(
                Code::HomeUnwritable,
                format!("cannot open {}: {e}", path.display()),
            )
        })?;
    match file.try_lock() {
        Ok(()) => {
            let pid_file = pid_file(home);
            let _ = std::fs::write(&pid_file, format!("{} {program}\n", std::process::id()));
            Ok(ConnectLock {
                _file: file,
                pid_file: Some(pid_file),
            })
        }
        Err(std::fs::TryLockError::WouldBlock) => Err(already_connected(home)),
        Err(std::fs::TryLockError::Error(e)) => {
            // A file system without locks: connect anyway, as before.
            tracing::warn!(error = %e, path = %path.display(), "cannot lock; a second connect on this home is not detected");
            Ok(ConnectLock {
                _file: file,
                pid_file: None,
            })
        }
    }
}

/// The `ERR(10111)` line for the home held by another process.
fn already_connected(home: &Home) -> ClientError {
    let holder = std::fs::read_to_string(pid_file(home))
        .ok()
        .and_then(|t| describe_holder(&t))
        .unwrap_or_else(|| "another process".into());
    ClientError::new(
        Code::AlreadyConnected,
        format!(
            "PRA is already connected from {} ({holder})",
            home.root().display()
        ),
    )
}

/// `1234 pra connect` → `pra connect, pid 1234` (pure; `None` if garbled).
pub(crate) fn describe_holder(text: &str) -> Option<String> {
    let (pid, program) = text.trim().split_once(' ')?;
    let pid: u32 = pid.parse().ok()?;
    let program = pra_proto::sanitize::sanitize(program.trim(), 40);
    Some(format!("{program}, pid {pid}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_second_lock_on_one_home_is_refused_with_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("home"));
        let first = acquire(&home, "pra connect").unwrap();
        let e = acquire(&home, "pra-gui").unwrap_err();
        assert_eq!(e.code(), Code::AlreadyConnected);
        assert!(
            e.line().starts_with(&format!(
                "ERR(10111) PRA is already connected from {} (pra connect, pid {}): ",
                home.root().display(),
                std::process::id()
            )),
            "{}",
            e.line()
        );
        drop(first);
        assert!(!pid_file(&home).exists());
        let _again = acquire(&home, "pra-gui").unwrap();
        assert_eq!(describe_holder("garbage"), None);
    }
}
