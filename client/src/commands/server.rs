//! `pra server set|show`: the gateway address and its pinned host key.
use crate::config::{self, Config};
use crate::error::ClientResult;
use crate::home::Home;
use std::process::ExitCode;

/// `pra server set HOST[:PORT] [HOST[:PORT] …] [--host-key SHA256:…]`.
pub fn set(home: &Home, addresses: &[String], host_key: Option<&str>) -> ClientResult<ExitCode> {
    let (cfg, notes) = config::set_gateways(home, addresses, host_key)?;
    for n in notes {
        crate::outln!("{n}");
    }
    print_server(&cfg);
    Ok(ExitCode::SUCCESS)
}

/// `pra server show [--json]`.
pub fn show(home: &Home, json: bool) -> ClientResult<ExitCode> {
    let cfg = Config::load(home)?;
    let gateways = cfg.gateways()?;
    if json {
        let all: Vec<String> = gateways.iter().map(ToString::to_string).collect();
        let (first, rest) = all.split_first().unzip();
        let mut v = serde_json::json!({
            "gateway": first,
            "host_key": cfg.host_key_pin(),
            "registry": cfg.registry_url(),
        });
        // Only when there are some: a single gateway prints what it always did.
        if let (Some(obj), Some(rest)) = (v.as_object_mut(), rest)
            && !rest.is_empty()
        {
            obj.insert("alternates".into(), serde_json::json!(rest));
        }
        crate::outln!("{v}");
    } else {
        print_server(&cfg);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_server(cfg: &Config) {
    if let Ok(all) = cfg.gateways() {
        for (i, addr) in all.iter().enumerate() {
            if i == 0 {
                crate::outln!("gateway: {addr}");
            } else {
                crate::outln!("alternate gateway: {addr}");
            }
        }
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
