//! The helpdesk's log bundle (`pra logs export`, the app's "Export logs"):
//! one zip with System.log and User.log (rotated generations too),
//! `config.toml` without secrets, a doctor report and `version.txt`.

use crate::error::{ClientError, ClientResult};
use crate::home::Home;
use crate::logging::{SYSTEM_LOG, USER_LOG};
use pra_proto::codes::Code;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Key names whose values never leave the PC in a bundle.
const SENSITIVE: &[&str] = &["pass", "secret", "token", "private", "credential", "cookie"];

/// `config.toml` as it goes into a log bundle: values of keys that sound
/// secret replaced, user:password@ and query strings cut from URLs. There
/// are no secrets in the config; this is the second line of defence.
pub(crate) fn config_for_bundle(text: &str) -> String {
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
    for f in crate::logging::files(home) {
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
    let (y, mo, d, h, mi, s) = crate::clock::civil(secs);
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
pub(crate) fn version_text(home: &Home) -> String {
    let now = crate::keystore::unix_now();
    let key = match crate::keystore::read_public(home) {
        Ok(info) => format!(
            "{} user {} (made {})",
            info.fingerprint(),
            pra_proto::sanitize::sanitize(&info.meta.user, 64),
            crate::clock::utc(info.meta.created)
        ),
        Err(e) => format!("none ({})", e.line()),
    };
    format!(
        "pra {}\nos: {} {}\nssh: russh 0.65.1 (PRA flow-control patch)\nhome: {}\nbundle made: {}\nkey: {key}\n",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH,
        home.root().display(),
        crate::clock::utc(now),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
}
