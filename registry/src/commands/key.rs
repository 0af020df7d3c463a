//! `key list/import/approve/revoke`; a fingerprint may be given by its start.

use super::{Done, Listing, Out};
use crate::api::admin::KeyList;
use crate::cli::KeyCommand;
use crate::error::RegistryError;
use crate::failure::{Failure, io_failure};
use crate::format::time;
use crate::model::{Actor, KeyRecord, NewKey};
use crate::store::Store;
use crate::validate;
use pra_proto::api::KeyStatus;
use pra_proto::codes::Code;
use pra_proto::handover::Handover;
use pra_proto::sanitize::sanitize;
use std::io::Read;
use std::path::PathBuf;

/// Largest file `key import` reads.
pub(super) const MAX_IMPORT: u64 = 64 * 1024;

pub(crate) fn key(store: &Store, c: KeyCommand, actor: &Actor, out: Out<'_>) -> Done {
    match c {
        KeyCommand::List { status, json } => {
            let status = status.as_deref().and_then(KeyStatus::parse);
            let listing = Listing {
                json,
                empty: "no keys",
                headers: &[
                    "FINGERPRINT",
                    "USER",
                    "STATUS",
                    "TYPE",
                    "DEVICE",
                    "SUBMITTED (UTC)",
                    "LAST SEEN",
                ],
            };
            listing.print(
                out,
                store.list_keys(status)?,
                |keys| KeyList { keys },
                |k| {
                    let device = match (k.device.computer.as_str(), k.device.os_user.as_str()) {
                        ("", "") => "-".to_string(),
                        (c, "") => c.to_string(),
                        ("", u) => format!("({u})"),
                        (c, u) => format!("{c} ({u})"),
                    };
                    vec![
                        k.fingerprint.clone(),
                        k.user.clone(),
                        k.status.to_string(),
                        k.algorithm.clone(),
                        device,
                        time(k.submitted_at),
                        k.last_seen.map_or("never".into(), time),
                    ]
                },
            )
        }
        KeyCommand::Import {
            file,
            user,
            approve,
        } => import(store, &file, user, approve, actor, out),
        KeyCommand::Approve { fingerprint } => {
            let fp = resolve_fingerprint(store, &fingerprint)?;
            let k = store.set_key_status(&fp, KeyStatus::Approved, actor)?;
            Ok(writeln!(out, "approved {} of {}", k.fingerprint, k.user))
        }
        KeyCommand::Revoke { fingerprint } => {
            let fp = resolve_fingerprint(store, &fingerprint)?;
            let k = store.set_key_status(&fp, KeyStatus::Revoked, actor)?;
            Ok(writeln!(out, "revoked {} of {}", k.fingerprint, k.user))
        }
    }
}

/// Shortest fingerprint prefix taken (after `SHA256:`).
pub(super) const MIN_PREFIX: usize = 4;

/// A full fingerprint, or the one key whose fingerprint starts with the
/// given prefix (`SHA256:xPqo`, at least [`MIN_PREFIX`] characters after
/// `SHA256:`). An ambiguous prefix is refused with the candidates.
fn resolve_fingerprint(store: &Store, given: &str) -> Result<String, Failure> {
    let invalid = match validate::fingerprint(given) {
        Ok(fp) => return Ok(fp.to_string()),
        Err(e) => e,
    };
    let given = given.trim();
    let is_prefix = given.strip_prefix("SHA256:").is_some_and(|b| {
        (MIN_PREFIX..43).contains(&b.len())
            && b.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
    });
    if !is_prefix {
        let mut f = Failure::from(invalid);
        f.what.push_str(&format!(
            " (or its start: `SHA256:` and at least {MIN_PREFIX} characters)"
        ));
        return Err(f);
    }
    let keys = store.list_keys(None)?;
    pick_prefix(given, &keys)
}

/// The key among `keys` whose fingerprint starts with `prefix` (pure).
fn pick_prefix(prefix: &str, keys: &[KeyRecord]) -> Result<String, Failure> {
    let hits: Vec<&KeyRecord> = keys
        .iter()
        .filter(|k| k.fingerprint.starts_with(prefix))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one.fingerprint.clone()),
        [] => Err(Failure::new(
            Code::RegistryNotFound,
            format!("no key's fingerprint starts with {}", sanitize(prefix, 60)),
            "check the fingerprint with `pra-registry key list`",
        )),
        many => {
            let listed: Vec<String> = many
                .iter()
                .map(|k| format!("{} ({}, {})", k.fingerprint, k.user, k.status))
                .collect();
            Err(Failure::new(
                Code::RegistryAmbiguous,
                format!(
                    "the fingerprint prefix {} matches {} keys: {}",
                    sanitize(prefix, 60),
                    many.len(),
                    listed.join(", ")
                ),
                Code::RegistryAmbiguous.fix(),
            ))
        }
    }
}

fn read_import(file: &PathBuf) -> Result<Vec<u8>, Failure> {
    let shown = sanitize(&file.display().to_string(), 200);
    let mut bytes = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin()
            .take(MAX_IMPORT + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| io_failure(format!("cannot read standard input: {e}")))?;
    } else {
        std::fs::File::open(file)
            .and_then(|f| f.take(MAX_IMPORT + 1).read_to_end(&mut bytes))
            .map_err(|e| io_failure(format!("cannot read {shown}: {e}")))?;
    }
    if bytes.len() as u64 > MAX_IMPORT {
        return Err(Failure::new(
            Code::RegistryInvalid,
            format!("{shown} is larger than {MAX_IMPORT} bytes; it is not a public key file"),
            "import the file written by `pra key export`, or the .pub file",
        ));
    }
    Ok(bytes)
}

fn import(
    store: &Store,
    file: &PathBuf,
    user: Option<String>,
    approve: bool,
    actor: &Actor,
    out: Out<'_>,
) -> Done {
    let bytes = read_import(file)?;
    // Before anything could quote the file: a private key is refused whole.
    if validate::looks_private(&bytes) {
        return Err(validate::private_key_refused().into());
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        Failure::from(RegistryError::Invalid {
            field: "public key",
            reason: "the file is not text".into(),
            code: pra_proto::api::ApiErrorCode::InvalidPublicKey,
        })
    })?;
    // Files saved by Windows editors may start with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let key_lines = text
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            ["ssh-", "ecdsa-", "sk-"].iter().any(|p| t.starts_with(p))
        })
        .count();
    if key_lines > 1 {
        return Err(RegistryError::Invalid {
            field: "public key",
            reason: format!("the file holds {key_lines} keys; import exactly one key per file"),
            code: pra_proto::api::ApiErrorCode::InvalidPublicKey,
        }
        .into());
    }
    let handover = Handover::parse(text).map_err(|e| RegistryError::Invalid {
        field: "hand-over file",
        reason: e.to_string(),
        code: pra_proto::api::ApiErrorCode::InvalidPublicKey,
    })?;
    let key = validate::public_key(&handover.public_key)?;
    let user = match (user, handover.user) {
        (Some(a), Some(b)) if a != b => {
            return Err(Failure::new(
                Code::RegistryInvalid,
                format!(
                    "the file is for user {} but --user says {}",
                    sanitize(&b, 64),
                    sanitize(&a, 64)
                ),
                "check whose key this is; drop --user to use the file's user",
            ));
        }
        (Some(u), _) | (None, Some(u)) => u,
        (None, None) => {
            return Err(Failure::new(
                Code::RegistryInvalid,
                "the file does not name a user",
                "say whose key it is with --user NAME",
            ));
        }
    };
    validate::user_name(&user)?;
    let device = validate::device(&handover.device.unwrap_or_default())?;
    let new_user = store.get_user(&user)?.is_none();
    let fingerprint = key.fingerprint.clone();
    let status = if approve {
        KeyStatus::Approved
    } else {
        KeyStatus::Pending
    };
    let result = store.add_key(NewKey::new(key, &user, device, status), true, actor);
    let (record, created) = match result {
        Err(RegistryError::Conflict(_)) => {
            let owner = store
                .get_key(&fingerprint)?
                .map(|k| k.user)
                .unwrap_or_default();
            return Err(Failure::new(
                Code::RegistryConflict,
                format!("key {fingerprint} is already registered to user {owner}"),
                "a key belongs to one user; the employee generates a new key for this account",
            ));
        }
        other => other?,
    };
    let record = if !created && approve && record.status == KeyStatus::Pending {
        store.set_key_status(&record.fingerprint, KeyStatus::Approved, actor)?
    } else {
        record
    };
    if record.status == KeyStatus::Revoked && approve {
        return Err(RegistryError::Conflict(format!(
            "key {} was revoked and cannot be approved again",
            record.fingerprint
        ))
        .into());
    }
    let mut msg = String::new();
    if created && new_user {
        msg.push_str(&format!("created user {user}\n"));
    }
    if created {
        msg.push_str(&format!(
            "imported {} ({}) for {}: {}\n",
            record.fingerprint, record.algorithm, record.user, record.status
        ));
    } else {
        msg.push_str(&format!(
            "{} is already registered for {}: {}\n",
            record.fingerprint, record.user, record.status
        ));
    }
    if record.status == KeyStatus::Pending {
        msg.push_str(&format!(
            "approve it with: pra-registry key approve {}\n",
            record.fingerprint
        ));
    }
    Ok(out.write_all(msg.as_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn fingerprint_prefixes_pick_one_key_or_list_the_candidates() {
        let key = |fp: &str, user: &str| {
            crate::web::dup::tests::key(fp, user, "", "", KeyStatus::Pending)
        };
        let keys = [
            key("SHA256:xPqoAAA", "alice"),
            key("SHA256:xPqoBBB", "bob"),
            key("SHA256:zzzzCCC", "carol"),
        ];
        assert_eq!(pick_prefix("SHA256:z", &keys).unwrap(), "SHA256:zzzzCCC");
        assert_eq!(
            pick_prefix("SHA256:xPqoB", &keys).unwrap(),
            "SHA256:xPqoBBB"
        );
        let e = pick_prefix("SHA256:xPqo", &keys).unwrap_err();
        assert_eq!(
            e.line(),
            "ERR(10306) the fingerprint prefix SHA256:xPqo matches 2 keys: SHA256:xPqoAAA (alice, pending), \
             SHA256:xPqoBBB (bob, pending): give more characters of the fingerprint, as `pra-registry key list` shows it"
        );
        assert_eq!(
            pick_prefix("SHA256:nope", &keys).unwrap_err().code,
            Code::RegistryNotFound
        );
    }
}
