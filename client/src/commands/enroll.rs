//! `pra enroll INVITE [--force]`: set the gateway, make the key and hand it
//! over with an admin's invite, in one step.
use crate::error::ClientResult;
use crate::home::Home;
use crate::passphrase;
use pra_proto::api::KeyStatus;
use std::process::ExitCode;

/// `pra enroll`.
pub(crate) fn run(home: &Home, invite: &str, force: bool) -> ClientResult<ExitCode> {
    let done = crate::enroll::enroll(home, invite, force, |new| {
        if new {
            passphrase::obtain("Passphrase for the new key: ", true)
        } else {
            passphrase::obtain("Passphrase of your key: ", false)
        }
    })?;
    crate::outln!("gateway: {} (host key pinned)", done.gateway);
    crate::outln!("fingerprint: {}", done.fingerprint);
    crate::outln!(
        "enrolled {} as user {}: {}",
        done.fingerprint,
        done.user,
        done.status
    );
    match done.status {
        KeyStatus::Approved => crate::outln!("next: `pra connect` opens your forwards"),
        _ => crate::outln!(
            "next: your administrator approves the key (`pra-registry key approve {}`); then `pra connect`",
            done.fingerprint
        ),
    }
    Ok(ExitCode::SUCCESS)
}
