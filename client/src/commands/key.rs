//! `pra key show|export|submit`: the public side of the key.
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

/// `pra key submit --registry URL`.
pub fn submit(home: &Home, registry: Option<&str>) -> ClientResult<ExitCode> {
    let done = registry_client::submit_key(home, registry, || {
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

/// `YYYY-MM-DD HH:MM UTC` for a Unix time.
pub fn utc(secs: u64) -> String {
    let (y, m, d, hh, mm, _) = civil(secs);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02} UTC")
}

/// `(year, month, day, hour, minute, second)` in UTC for a Unix time.
pub fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m as u32,
        d as u32,
        (rem / 3_600) as u32,
        ((rem % 3_600) / 60) as u32,
        (rem % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13 UTC");
        assert_eq!(civil(1_700_000_000), (2023, 11, 14, 22, 13, 20));
    }
}
