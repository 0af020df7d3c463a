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
    let out = file.map(Path::to_path_buf).unwrap_or_else(default_file);
    let bundle = logging::export_bundle(home, &out, &report)?;
    logging::user_line(&format!("log bundle written: {}", bundle.path.display()));
    println!(
        "wrote {} ({})",
        bundle.path.display(),
        bundle.entries.join(", ")
    );
    println!("{}", report.summary());
    Ok(ExitCode::SUCCESS)
}

/// `pra-logs-YYYYMMDD-HHMM.zip` in the current folder.
fn default_file() -> PathBuf {
    let stamp: String = super::key::utc(keystore::unix_now())
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == ' ')
        .collect::<String>()
        .trim()
        .replacen(' ', "-", 1)
        .replace(' ', "");
    PathBuf::from(format!("pra-logs-{stamp}.zip"))
}
