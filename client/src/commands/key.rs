//! `pra key show|export|submit`: the public side of the key.
use crate::clock::utc;
use crate::error::{ClientError, ClientResult};
use crate::home::Home;
use crate::{keystore, passphrase, registry_client};
use pra_proto::api::KeyStatus;
use pra_proto::codes::Code;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// `pra key show [--json]`: works without the passphrase; a key file
/// others may read is shown with a `WAR(10112)` line on stderr (the JSON
/// carries it as `warning`).
pub fn show(home: &Home, json: bool) -> ClientResult<ExitCode> {
    let (info, warning) = keystore::read_public_warning(home)?;
    if json {
        let v = serde_json::json!({
            "fingerprint": info.fingerprint(),
            "user": info.meta.user,
            "public_key": info.meta.public_key,
            "created": info.meta.created,
            "created_utc": utc(info.meta.created),
            "bound_to": info.meta.bound_summary(),
            "unavailable": info.meta.unavailable_line(),
            "device": info.meta.description,
            "device_tag": info.meta.device_tag,
            "key_file": home.key_file().display().to_string(),
            "warning": warning.as_ref().map(|w| serde_json::json!({
                "code": w.code(),
                "label": w.code().label(),
                "line": w.line(),
            })),
        });
        crate::outln!("{v}");
    } else {
        crate::outln!("fingerprint: {}", info.fingerprint());
        crate::outln!("user: {}", info.meta.user);
        crate::outln!("public key: {}", info.meta.public_key);
        crate::outln!("created: {}", utc(info.meta.created));
        crate::outln!("bound to: {}", info.meta.bound_summary());
        if let Some(line) = info.meta.unavailable_line() {
            crate::outln!("{line}");
        }
        crate::outln!("device: {}", info.meta.description);
        crate::outln!("device tag: {}", info.meta.device_tag);
        crate::outln!("key file: {}", home.key_file().display());
    }
    if let Some(w) = warning {
        eprintln!("{}", w.line());
    }
    Ok(ExitCode::SUCCESS)
}

/// `pra key export [FILE]`: the hand-over file to stdout or FILE.
pub fn export(home: &Home, file: Option<&Path>) -> ClientResult<ExitCode> {
    let info = keystore::read_public(home)?;
    let text = info.handover().render();
    match file {
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|_| out.flush())
                .map_err(|e| {
                    crate::out::quiet_exit_on_broken_pipe(&e);
                    ClientError::new(Code::HomeUnwritable, format!("cannot write to stdout: {e}"))
                })?;
        }
        Some(path) => {
            keystore::export_public(home, path)?;
            crate::outln!(
                "wrote the public key of {} ({}) to {}: give this file to your administrator",
                info.meta.user,
                info.fingerprint(),
                path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `pra key submit --registry URL [--ca FILE]`.
pub fn submit(home: &Home, registry: Option<&str>, ca: Option<&Path>) -> ClientResult<ExitCode> {
    let done = registry_client::submit_key_with_ca(home, registry, ca, || {
        passphrase::obtain("Passphrase of the key: ", false)
    })?;
    let fp = &done.fingerprint;
    crate::outln!(
        "submitted {fp} for {} to {}: {}",
        done.user,
        done.url,
        done.reply.status
    );
    match done.reply.status {
        KeyStatus::Pending => {
            crate::outln!(
                "pending: ask your administrator to approve the key {fp}, then run `pra connect`"
            );
            Ok(ExitCode::SUCCESS)
        }
        KeyStatus::Approved => {
            crate::outln!("approved: you can connect with `pra connect`");
            Ok(ExitCode::SUCCESS)
        }
        KeyStatus::Revoked => Err(ClientError::new(
            Code::KeyRevoked,
            format!("the registry says the key {fp} was revoked"),
        )),
    }
}
