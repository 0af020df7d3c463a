//! `pra keygen --user NAME [--force]`: create the hardware-bound key.
use crate::error::ClientResult;
use crate::home::Home;
use crate::{keystore, passphrase};
use std::process::ExitCode;

/// `pra keygen`.
pub fn run(home: &Home, user: &str, force: bool) -> ClientResult<ExitCode> {
    keystore::check_user(user)?;
    // Refuse before asking for a passphrase when the key would not be written.
    let old = keystore::read_public(home).ok();
    if !force && home.key_file().exists() {
        return Err(keystore::existing_key(home, old.as_ref(), user));
    }
    let pass = passphrase::obtain("Passphrase for the new key: ", true)?;
    let info = keystore::generate(home, user, &pass, force)?;
    if let Some(old) = old {
        crate::outln!(
            "replaced the old key {}: it no longer works, the new one must be approved",
            old.fingerprint()
        );
    }
    crate::outln!("created the key of {user} in {}", home.key_file().display());
    crate::outln!("{}", info.keygen_line());
    crate::outln!("bound to: {}", info.meta.bound_summary());
    if let Some(line) = info.meta.unavailable_line() {
        crate::outln!("{line}");
    }
    crate::outln!(
        "next: hand the public key to your administrator with `pra key submit --registry URL` or `pra key export FILE`"
    );
    Ok(ExitCode::SUCCESS)
}
