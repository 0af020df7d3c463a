//! `pra logs export [FILE]`: one zip for the helpdesk with System.log,
//! User.log, config.toml without secrets, a fresh doctor report and version
//! info. The doctor runs the key checks only when `PRA_PASSPHRASE` is set
//! (the export never asks).

use crate::doctor::KeyAccess;
use crate::error::ClientResult;
use crate::home::Home;
use crate::{keystore, logging, passphrase};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `pra logs export`.
pub fn export(home: &Home, file: Option<&Path>) -> ClientResult<ExitCode> {
    let _ = logging::init(home);
    let r = export_inner(home, file);
    if let Err(e) = &r {
        logging::user_line(&e.line());
    }
    r
}

fn export_inner(home: &Home, file: Option<&Path>) -> ClientResult<ExitCode> {
    let key = if std::env::var_os(passphrase::ENV_VAR).is_some() {
        super::doctor::unlock_asking(home)
    } else {
        KeyAccess::Skip(format!(
            "not asked by the export; set {} to include the key checks",
            passphrase::ENV_VAR
        ))
    };
    let report = super::doctor::run_checks(home, key, |_| {})?;
    let out = file
        .map(Path::to_path_buf)
        .unwrap_or_else(|| default_file(Path::new("")));
    let bundle = crate::bundle::export_bundle(home, &out, &report)?;
    logging::user_line(&format!("log bundle written: {}", bundle.path.display()));
    crate::outln!(
        "wrote {} ({})",
        bundle.path.display(),
        bundle.entries.join(", ")
    );
    crate::outln!("{}", report.summary());
    Ok(ExitCode::SUCCESS)
}

/// `pra-logs-YYYYMMDD-HHMMSS.zip` in `dir`, with `-2`, `-3` … added when
/// that name is taken: an export never replaces an earlier one.
fn default_file(dir: &Path) -> PathBuf {
    let (y, mo, d, h, mi, sec) = crate::clock::civil(keystore::unix_now());
    let stem = format!("pra-logs-{y:04}{mo:02}{d:02}-{h:02}{mi:02}{sec:02}");
    let mut path = dir.join(format!("{stem}.zip"));
    let mut n = 2;
    while path.exists() {
        path = dir.join(format!("{stem}-{n}.zip"));
        n += 1;
    }
    path
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn default_names_never_replace_an_earlier_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let a = default_file(dir.path());
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("pra-logs-20") && name.ends_with(".zip"),
            "{name}"
        );
        assert_eq!(name.len(), "pra-logs-YYYYMMDD-HHMMSS.zip".len(), "{name}");
        std::fs::write(&a, b"x").unwrap();
        let b = default_file(dir.path());
        assert_ne!(a, b);
        assert!(!b.exists());
    }
}
