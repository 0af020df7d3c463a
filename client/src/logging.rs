//! The two logs in `--home`'s `log/` folder, both rotated with a size cap:
//!
//! - `System.log`: technical (connects, algorithms, host key, errors,
//!   per-forward bytes, russh warnings through the `log` bridge);
//! - `User.log`: what the employee saw (connect/disconnect, rule states,
//!   error lines with codes): the events with target
//!   [`USER_LOG_TARGET`].
//!
//! Neither ever holds a passphrase, private key material or a token: the
//! code logs keys by fingerprint only, the passphrase type cannot print
//! itself, and russh is kept at `info` unless `RUST_LOG` says otherwise.
//! Only binaries call [`init`].

use crate::error::{ClientError, ClientResult};
use crate::home::Home;
use pra_proto::codes::Code;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// Target of the `tracing` events that form `User.log`.
pub(crate) const USER_LOG_TARGET: &str = "pra::user";

/// File name of the technical log.
pub(crate) const SYSTEM_LOG: &str = "System.log";
/// File name of the employee's log.
pub(crate) const USER_LOG: &str = "User.log";
/// A log is rotated when it would grow beyond this.
pub(crate) const MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Rotated generations kept (`System.log.1` … `.3`).
pub(crate) const KEEP: usize = 3;

/// An append-only file that rotates at a size cap: `NAME` → `NAME.1` →
/// … → `NAME.KEEP` (dropped). Each write is one whole log line.
#[derive(Debug)]
pub(crate) struct RotatingFile {
    path: PathBuf,
    max: u64,
    keep: usize,
    file: Mutex<Option<(File, u64)>>,
}

impl RotatingFile {
    /// A log at `path` (created on the first write).
    pub(crate) fn new(path: impl Into<PathBuf>, max: u64, keep: usize) -> RotatingFile {
        RotatingFile {
            path: path.into(),
            max,
            keep,
            file: Mutex::new(None),
        }
    }

    fn open(&self) -> io::Result<(File, u64)> {
        let mut o = OpenOptions::new();
        o.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let f = o.open(&self.path)?;
        let len = f.metadata()?.len();
        Ok((f, len))
    }

    fn rotate(&self) -> io::Result<()> {
        for n in (1..self.keep).rev() {
            let from = numbered(&self.path, n);
            if from.exists() {
                std::fs::rename(&from, numbered(&self.path, n + 1))?;
            }
        }
        if self.keep > 0 {
            std::fs::rename(&self.path, numbered(&self.path, 1))?;
        } else {
            std::fs::remove_file(&self.path)?;
        }
        Ok(())
    }

    /// Append `buf`, rotating first if it would pass the cap.
    pub(crate) fn append(&self, buf: &[u8]) -> io::Result<()> {
        let mut guard = self
            .file
            .lock()
            .map_err(|_| io::Error::other("log lock poisoned"))?;
        if guard.is_none() {
            *guard = Some(self.open()?);
        }
        let over = guard
            .as_ref()
            .is_some_and(|(_, len)| *len > 0 && len + buf.len() as u64 > self.max);
        if over {
            *guard = None;
            self.rotate()?;
            *guard = Some(self.open()?);
        }
        if let Some((f, len)) = guard.as_mut() {
            f.write_all(buf)?;
            *len += buf.len() as u64;
        }
        Ok(())
    }
}

/// `System.log.3` for n = 3.
pub(crate) fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// The [`io::Write`] handed to `tracing_subscriber::fmt`.
#[derive(Debug)]
pub(crate) struct LogWriter(Arc<RotatingFile>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.append(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Makes [`LogWriter`]s for one file.
#[derive(Clone, Debug)]
pub(crate) struct LogFile(pub Arc<RotatingFile>);

impl<'a> MakeWriter<'a> for LogFile {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> LogWriter {
        LogWriter(self.0.clone())
    }
}

/// The log folder's files, oldest generation first within each log
/// (`System.log.3`, …, `System.log`, then the same for `User.log`).
pub fn files(home: &Home) -> Vec<PathBuf> {
    let dir = home.log_dir();
    let mut out = Vec::new();
    for name in [SYSTEM_LOG, USER_LOG] {
        let base = dir.join(name);
        for n in (1..=KEEP).rev() {
            let p = numbered(&base, n);
            if p.is_file() {
                out.push(p);
            }
        }
        if base.is_file() {
            out.push(base);
        }
    }
    out
}

/// Install the subscribers: System.log (everything at `RUST_LOG`, default
/// `info`) and User.log (the user's lines). Also bridges the `log` crate
/// (russh). Fails if the folder cannot be made; a second call is a no-op.
pub fn init(home: &Home) -> ClientResult<()> {
    let dir = home.log_dir();
    home.ensure()?;
    std::fs::create_dir_all(&dir).map_err(|e| {
        ClientError::new(
            Code::HomeUnwritable,
            format!("cannot create the log folder {}: {e}", dir.display()),
        )
    })?;
    let system = LogFile(Arc::new(RotatingFile::new(
        dir.join(SYSTEM_LOG),
        MAX_BYTES,
        KEEP,
    )));
    let user = LogFile(Arc::new(RotatingFile::new(
        dir.join(USER_LOG),
        MAX_BYTES,
        KEEP,
    )));
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::new(v),
        _ => EnvFilter::new("info,russh=info"),
    };
    let system_layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_target(true)
        .with_writer(system)
        .with_filter(filter);
    let user_layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_target(false)
        .with_level(false)
        .with_writer(user)
        .with_filter(Targets::new().with_target(USER_LOG_TARGET, tracing::Level::INFO));
    // Already installed (a second init in one process): keep the first.
    let _ = tracing_subscriber::registry()
        .with(system_layer)
        .with(user_layer)
        .try_init();
    Ok(())
}

/// Write one line to User.log (and System.log), e.g. a command's error line.
pub fn user_line(line: &str) {
    tracing::info!(target: USER_LOG_TARGET, "{line}");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rotates_at_the_cap_and_keeps_n_generations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("System.log");
        let f = RotatingFile::new(&path, 100, 2);
        for i in 0..10 {
            f.append(format!("line {i:02} {}\n", "x".repeat(30)).as_bytes())
                .unwrap();
        }
        let cur = std::fs::read_to_string(&path).unwrap();
        let one = std::fs::read_to_string(numbered(&path, 1)).unwrap();
        let two = std::fs::read_to_string(numbered(&path, 2)).unwrap();
        assert!(!numbered(&path, 3).exists());
        for text in [&cur, &one, &two] {
            assert!(text.len() <= 100, "{}", text.len());
            assert!(text.ends_with('\n'));
        }
        assert!(cur.contains("line 09"));
        assert!(one.contains("line 07") || one.contains("line 06"));
        assert!(
            !format!("{cur}{one}{two}").contains("line 00"),
            "oldest dropped"
        );
    }

    #[test]
    fn a_line_bigger_than_the_cap_still_lands() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("User.log");
        let f = RotatingFile::new(&path, 10, 1);
        f.append(b"a very long line indeed\n").unwrap();
        f.append(b"next\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "next\n");
        assert_eq!(
            std::fs::read_to_string(numbered(&path, 1)).unwrap(),
            "a very long line indeed\n"
        );
    }
}
