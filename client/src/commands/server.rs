//! `pra server set|show`: the gateway address and its pinned host key.
use crate::config::{self, Config, GatewayAddr, ServerSection};
use crate::error::{ClientError, ClientResult};
use crate::home::Home;
use pra_proto::codes::Code;
use std::process::ExitCode;

/// `pra server set HOST[:PORT] [--host-key SHA256:…]`.
pub fn set(home: &Home, address: &str, host_key: Option<&str>) -> ClientResult<ExitCode> {
    let (cfg, notes) = apply(home, address, host_key)?;
    for n in notes {
        crate::outln!("{n}");
    }
    print_server(&cfg);
    Ok(ExitCode::SUCCESS)
}

/// Validate and store the gateway address and optional pin (what `pra
/// server set` does, for the CLI and the GUI). Returns the saved config and
/// notes for the user (address changed, pin replaced or removed). Nothing is
/// written when a value is invalid.
pub fn apply(
    home: &Home,
    address: &str,
    host_key: Option<&str>,
) -> ClientResult<(Config, Vec<String>)> {
    let addr = GatewayAddr::parse(address).map_err(|e| {
        ClientError::with_fix(
            Code::ConfigInvalid,
            format!("gateway address: {e}"),
            "give HOST or HOST:PORT as your administrator wrote it, e.g. gateway.example.com:10022 or [2001:db8::1]:10022; nothing was changed",
        )
    })?;
    if let Some(fp) = host_key {
        config::check_fingerprint(fp).map_err(|e| {
            ClientError::with_fix(
                Code::ConfigInvalid,
                format!("--host-key: {e}"),
                "copy the fingerprint exactly as your administrator gave it; nothing was changed",
            )
        })?;
    }
    let mut cfg = Config::load(home)?;
    let (pin, notes) = decide_pin(cfg.server.as_ref(), &addr, host_key);
    cfg.server = Some(ServerSection {
        address: addr.to_string(),
        host_key: pin,
    });
    cfg.save(home)?;
    let pin = match cfg.host_key_pin() {
        Some(fp) => format!("host key pinned {fp}"),
        None => "host key not pinned (trust on first use)".to_string(),
    };
    crate::logging::user_line(&format!("server set: gateway {addr}, {pin}"));
    for n in &notes {
        crate::logging::user_line(&format!("server set: {n}"));
    }
    Ok((cfg, notes))
}

/// Which pin to keep after `server set` and what to tell the user (pure).
/// An old pin survives only when the address did not change; an explicit
/// `--host-key` always wins.
fn decide_pin(
    old: Option<&ServerSection>,
    addr: &GatewayAddr,
    host_key: Option<&str>,
) -> (Option<String>, Vec<String>) {
    let old_addr = old.and_then(|s| GatewayAddr::parse(&s.address).ok());
    let old_pin = old.and_then(|s| s.host_key.clone());
    let same = old_addr.as_ref() == Some(addr);
    let mut notes = Vec::new();
    if let (Some(prev), false) = (&old_addr, same) {
        notes.push(format!("gateway address changed from {prev} to {addr}"));
    }
    let pin = match (host_key, old_pin) {
        (Some(new), Some(prev)) if same && prev != new => {
            notes.push(format!("pinned host key replaced: {prev} → {new}"));
            Some(new.to_string())
        }
        (Some(new), _) => Some(new.to_string()),
        (None, Some(prev)) if same => Some(prev),
        (None, Some(prev)) => {
            notes.push(format!(
                "the host key {prev} pinned for the old address was removed"
            ));
            None
        }
        (None, None) => None,
    };
    (pin, notes)
}

/// `pra server show [--json]`.
pub fn show(home: &Home, json: bool) -> ClientResult<ExitCode> {
    let cfg = Config::load(home)?;
    let gateway = cfg.gateway()?;
    if json {
        let v = serde_json::json!({
            "gateway": gateway.to_string(),
            "host_key": cfg.host_key_pin(),
            "registry": cfg.registry_url(),
        });
        crate::outln!("{v}");
    } else {
        print_server(&cfg);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_server(cfg: &Config) {
    if let Ok(addr) = cfg.gateway() {
        crate::outln!("gateway: {addr}");
    }
    match cfg.host_key_pin() {
        Some(fp) => crate::outln!("host key: pinned {fp}"),
        None => {
            crate::outln!(
                "host key: not pinned: the first connection will pin it (trust on first use)"
            )
        }
    }
    if let Some(url) = cfg.registry_url() {
        crate::outln!("registry: {url}");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const A: &str = "SHA256:O0dkuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10";
    const B: &str = "SHA256:AAAAuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10";

    fn sec(addr: &str, pin: Option<&str>) -> ServerSection {
        ServerSection {
            address: addr.into(),
            host_key: pin.map(str::to_string),
        }
    }

    #[test]
    fn pin_survives_only_an_unchanged_address() {
        let gw = GatewayAddr::parse("gw").unwrap();
        for (old, given, want_pin, want_note) in [
            (None, None, None, None),
            (None, Some(A), Some(A), None),
            (Some(sec("gw:10022", Some(A))), None, Some(A), None),
            (Some(sec("gw", Some(A))), Some(A), Some(A), None),
            (
                Some(sec("gw", Some(A))),
                Some(B),
                Some(B),
                Some("pinned host key replaced"),
            ),
            (
                Some(sec("old:10022", Some(A))),
                None,
                None,
                Some("was removed"),
            ),
            (
                Some(sec("gw:22", Some(A))),
                None,
                None,
                Some("changed from gw:22 to gw:10022"),
            ),
            (
                Some(sec("old", Some(A))),
                Some(B),
                Some(B),
                Some("changed from old:10022"),
            ),
        ] {
            let (pin, notes) = decide_pin(old.as_ref(), &gw, given);
            assert_eq!(pin.as_deref(), want_pin, "{old:?} {given:?}");
            match want_note {
                Some(n) => assert!(notes.iter().any(|x| x.contains(n)), "{notes:?}"),
                None => assert!(notes.is_empty(), "{notes:?}"),
            }
        }
    }
}
