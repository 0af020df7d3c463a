//! The two logs in `--home`'s `log/` folder, both rotated with a size cap:
//!
//! - `System.log`: technical (connects, algorithms, host key, errors,
//!   per-forward bytes, russh warnings through the `log` bridge);
//! - `User.log`: what the employee saw (connect/disconnect, rule states,
//!   error lines with codes): the events with target
//!   [`crate::tunnel::USER_LOG_TARGET`].
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

/// File name of the technical log.
pub const SYSTEM_LOG: &str = "System.log";
/// File name of the employee's log.
pub const USER_LOG: &str = "User.log";
/// A log is rotated when it would grow beyond this.
pub const MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Rotated generations kept (`System.log.1` … `.3`).
pub const KEEP: usize = 3;

/// An append-only file that rotates at a size cap: `NAME` → `NAME.1` →
/// … → `NAME.KEEP` (dropped). Each write is one whole log line.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max: u64,
    keep: usize,
    file: Mutex<Option<(File, u64)>>,
}

impl RotatingFile {
    /// A log at `path` (created on the first write).
    pub fn new(path: impl Into<PathBuf>, max: u64, keep: usize) -> RotatingFile {
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
    pub fn append(&self, buf: &[u8]) -> io::Result<()> {
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
pub fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// The [`io::Write`] handed to `tracing_subscriber::fmt`.
#[derive(Debug)]
pub struct LogWriter(Arc<RotatingFile>);

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
pub struct LogFile(pub Arc<RotatingFile>);

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
        .with_filter(
            Targets::new().with_target(crate::tunnel::USER_LOG_TARGET, tracing::Level::INFO),
        );
    // Already installed (a second init in one process): keep the first.
    let _ = tracing_subscriber::registry()
        .with(system_layer)
        .with(user_layer)
        .try_init();
    Ok(())
}

/// Write one line to User.log (and System.log), e.g. a command's error line.
pub fn user_line(line: &str) {
    tracing::info!(target: crate::tunnel::USER_LOG_TARGET, "{line}");
}

/// Key names whose values never leave the PC in a bundle.
const SENSITIVE: &[&str] = &["pass", "secret", "token", "private", "credential", "cookie"];

/// `config.toml` as it goes into a log bundle: values of keys that sound
/// secret replaced, user:password@ and query strings cut from URLs. There
/// are no secrets in the config; this is the second line of defence.
pub fn config_for_bundle(text: &str) -> String {
    match text.parse::<toml::Table>() {
        Ok(mut t) => {
            scrub_table(&mut t);
            toml::to_string(&t)
                .unwrap_or_else(|e| format!("# config.toml could not be re-encoded: {e}\n"))
        }
        Err(e) => {
            // The message only: toml's Display quotes the offending line.
            let line = e
                .span()
                .map(|sp| text.get(..sp.start).unwrap_or(text).matches('\n').count() + 1)
                .map(|n| format!(" (line {n})"))
                .unwrap_or_default();
            format!(
                "# config.toml could not be parsed{line}, so it is not included: {}\n",
                pra_proto::sanitize::sanitize(&e.message().replace('\n', " "), 300)
            )
        }
    }
}

fn scrub_table(t: &mut toml::Table) {
    for (k, v) in t.iter_mut() {
        let lk = k.to_ascii_lowercase();
        if SENSITIVE.iter().any(|s| lk.contains(s)) {
            *v = toml::Value::String("<removed>".into());
        } else {
            scrub_value(v);
        }
    }
}

fn scrub_value(v: &mut toml::Value) {
    match v {
        toml::Value::Table(t) => scrub_table(t),
        toml::Value::Array(a) => a.iter_mut().for_each(scrub_value),
        toml::Value::String(s) => *s = scrub_url(s),
        _ => {}
    }
}

/// `https://user:pw@host/p?token=x` → `https://host/p`.
fn scrub_url(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once("://") else {
        return s.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    format!("{scheme}://{host}{path}")
}

/// What went into a bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// The zip file written.
    pub path: PathBuf,
    /// Entry names, in order.
    pub entries: Vec<String>,
}

/// Write the helpdesk bundle to `out` (atomically: `out.part`, then
/// renamed): the logs (with rotated generations), `config.toml` without
/// secrets, the doctor report (`doctor.txt`, `doctor.json`), `version.txt`.
pub fn export_bundle(
    home: &Home,
    out: &Path,
    doctor: &crate::doctor::Report,
) -> ClientResult<Bundle> {
    let fail = |what: String| ClientError::new(Code::LogExportFailed, what);
    let now = crate::keystore::unix_now();
    // (name, contents, modification time as Unix seconds)
    let mut entries: Vec<(String, Vec<u8>, u64)> = Vec::new();
    for f in files(home) {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes =
            std::fs::read(&f).map_err(|e| fail(format!("cannot read {}: {e}", f.display())))?;
        let modified = std::fs::metadata(&f)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(now, |d| d.as_secs());
        entries.push((name, bytes, modified));
    }
    for name in [SYSTEM_LOG, USER_LOG] {
        if !entries.iter().any(|(n, _, _)| n == name) {
            entries.push((name.to_string(), Vec::new(), now));
        }
    }
    let config = match std::fs::read_to_string(home.config_file()) {
        Ok(text) => config_for_bundle(&text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => "# no config.toml yet\n".to_string(),
        Err(e) => format!("# config.toml could not be read: {e}\n"),
    };
    entries.push(("config.toml".into(), config.into_bytes(), now));
    entries.push(("doctor.txt".into(), doctor.text().into_bytes(), now));
    entries.push(("doctor.json".into(), doctor.json().into_bytes(), now));
    entries.push(("version.txt".into(), version_text(home).into_bytes(), now));

    let part = numbered_suffix(out, "part");
    let file = File::create(&part).map_err(|e| export_io_error(out, &e))?;
    let write = || -> zip::result::ZipResult<()> {
        let mut zw = zip::ZipWriter::new(file);
        for (name, bytes, modified) in &entries {
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .unix_permissions(0o600)
                .last_modified_time(zip_time(*modified));
            zw.start_file(name.as_str(), opts)?;
            zw.write_all(bytes)?;
        }
        zw.finish()?.sync_all()?;
        Ok(())
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&part);
        return Err(match e {
            zip::result::ZipError::Io(io) => export_io_error(out, &io),
            other => fail(format!("cannot write {}: {other}", out.display())),
        });
    }
    std::fs::rename(&part, out).map_err(|e| {
        let _ = std::fs::remove_file(&part);
        export_io_error(out, &e)
    })?;
    Ok(Bundle {
        path: out.to_path_buf(),
        entries: entries.into_iter().map(|(n, _, _)| n).collect(),
    })
}

/// `ERR(10105)` with the system's own reason and the fix that fits it.
fn export_io_error(out: &Path, e: &io::Error) -> ClientError {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fix = match e.kind() {
        io::ErrorKind::NotFound => format!(
            "the folder {} does not exist: create it or choose another output file",
            parent.display()
        ),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => format!(
            "you may not write in {}: choose another folder, e.g. your home folder",
            parent.display()
        ),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            "free some disk space or choose another disk".to_string()
        }
        _ => Code::LogExportFailed.fix().to_string(),
    };
    ClientError::with_fix(
        Code::LogExportFailed,
        format!("cannot write {}: {e}", out.display()),
        fix,
    )
}

/// A zip entry's time (UTC; zip has no time zone) for a Unix time; the
/// zip epoch 1980-01-01 only if the time is out of zip's range.
fn zip_time(secs: u64) -> zip::DateTime {
    let (y, mo, d, h, mi, s) = crate::commands::key::civil(secs);
    u16::try_from(y)
        .ok()
        .and_then(|y| {
            zip::DateTime::from_date_and_time(
                y,
                mo as u8,
                d as u8,
                h as u8,
                mi as u8,
                (s as u8).min(58),
            )
            .ok()
        })
        .unwrap_or_default()
}

fn numbered_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{suffix}"));
    PathBuf::from(s)
}

/// `version.txt`: program, OS, home, time, the public key's fingerprint.
pub fn version_text(home: &Home) -> String {
    let now = crate::keystore::unix_now();
    let key = match crate::keystore::read_public(home) {
        Ok(info) => format!(
            "{} user {} (made {})",
            info.fingerprint(),
            pra_proto::sanitize::sanitize(&info.meta.user, 64),
            crate::commands::key::utc(info.meta.created)
        ),
        Err(e) => format!("none ({})", e.line()),
    };
    format!(
        "pra {}\nos: {} {}\nssh: russh 0.65.1 (PRA flow-control patch)\nhome: {}\nbundle made: {}\nkey: {key}\n",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH,
        home.root().display(),
        crate::commands::key::utc(now),
    )
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
    fn bundle_config_drops_secret_looking_values() {
        let text = "[server]\naddress = \"gw.example.com:10022\"\nhost_key = \"SHA256:abc\"\n\n[registry]\nurl = \"https://bob:hunter2@reg.example.com/api?token=s3cret\"\napi_token = \"s3cret\"\n";
        let out = config_for_bundle(text);
        assert!(out.contains("gw.example.com:10022"), "{out}");
        assert!(
            out.contains("SHA256:abc"),
            "host key fingerprints are public: {out}"
        );
        assert!(out.contains("https://reg.example.com/api"), "{out}");
        assert!(!out.contains("hunter2") && !out.contains("s3cret"), "{out}");
        assert!(out.contains("<removed>"));
        let bad = config_for_bundle("password = \"x\" [[[");
        assert!(
            bad.starts_with("# config.toml could not be parsed"),
            "{bad}"
        );
        assert!(!bad.contains("\"x\""));
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
