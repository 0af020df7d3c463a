//! `config.toml` in the client's home: the gateway address, its pinned host
//! key, and the registry URL (with the CA file given by `--ca`) remembered
//! after `pra key submit`.
//!
//! ```toml
//! [server]
//! address = "gateway.example.com:10022"
//! alternates = ["gw2.example.com:10022"]  # absent: only `address`
//! host_key = "SHA256:…"        # absent: the first connection pins it
//!
//! [registry]
//! url = "https://registry.example.com"
//! ca = "/path/to/company-ca.pem"  # absent: the well-known public CAs
//! ```
//!
//! Unknown keys are refused and every error names the bad key. A broken file
//! is never overwritten: [`Config::load`] fails and nothing is saved.
//!
//! Several gateways of one registry: `address` is tried first, then each of
//! `alternates` in order (`pra connect` fails over round robin). They share
//! the registry's host key, so there is one pin for all of them; a gateway
//! that offers another key is refused (`ERR(10204)`), never skipped.

use crate::error::{ClientError, ClientResult};
use crate::home::Home;
use base64::Engine;
use pra_proto::codes::Code;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// The client configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The SSH gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerSection>,
    /// The key registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistrySection>,
}

/// `[server]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// `HOST:PORT` (`[v6]:PORT`): the gateway tried first.
    pub address: String,
    /// Further gateways of the same registry, tried in this order after
    /// `address` when it cannot be used (same host key).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternates: Vec<String>,
    /// Pinned `SHA256:` fingerprint of the gateway's host key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
}

/// `[registry]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySection {
    /// Base URL of the registry API.
    pub url: String,
    /// PEM file of the private CA its HTTPS certificate is checked against
    /// (`pra key submit --ca FILE`); absent: the well-known public CAs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
}

/// A validated gateway address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GatewayAddr {
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// TCP port (10022 when the address names none).
    pub port: u16,
}

impl GatewayAddr {
    /// Parse `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`; the port defaults
    /// to 10022. The error says what is wrong (for "…: {err}").
    pub fn parse(s: &str) -> Result<GatewayAddr, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty address".into());
        }
        if s.contains("://") {
            return Err(format!(
                "`{s}` has a scheme: give HOST or HOST:PORT, without ssh:// or https://"
            ));
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let Some((v6, after)) = rest.split_once(']') else {
                return Err(format!("`{s}`: missing `]` after the IPv6 address"));
            };
            if v6.parse::<Ipv6Addr>().is_err() {
                return Err(format!("`{v6}` is not an IPv6 address"));
            }
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("`{s}`: expected `:PORT` after `]`"))?,
                ),
            };
            (v6.to_string(), port)
        } else if s.matches(':').count() > 1 {
            return Err(format!(
                "`{s}`: write IPv6 addresses in brackets, e.g. [2001:db8::1]:10022"
            ));
        } else {
            match s.split_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (s.to_string(), None),
            }
        };
        let port = match port {
            None => pra_proto::DEFAULT_GATEWAY_PORT,
            Some(p) => parse_port(p)?,
        };
        if !host.contains(':') {
            check_host_name(&host)?;
        }
        Ok(GatewayAddr { host, port })
    }
}

impl fmt::Display for GatewayAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

fn parse_port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!("bad port `{p}` (expected 1-65535)")),
    }
}

fn check_host_name(h: &str) -> Result<(), String> {
    if h.is_empty() {
        return Err("empty host name".into());
    }
    if h.parse::<Ipv4Addr>().is_ok() {
        return Ok(());
    }
    let ok_chars = h
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    let ok_labels = h.len() <= 253
        && h.trim_end_matches('.')
            .split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-'));
    if ok_chars && ok_labels {
        Ok(())
    } else {
        Err(format!(
            "bad host name `{}`",
            pra_proto::sanitize::sanitize(h, 80)
        ))
    }
}

/// Check a `SHA256:` fingerprint as `ssh-keygen -l` prints it: `SHA256:`
/// followed by 43 characters of unpadded base64 (32 bytes).
pub(crate) fn check_fingerprint(fp: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "`{}` is not a SHA256 fingerprint (expected SHA256: and 43 characters, as `ssh-keygen -l` prints it)",
            pra_proto::sanitize::sanitize(fp, 80)
        )
    };
    let b64 = fp.strip_prefix("SHA256:").ok_or_else(bad)?;
    if b64.len() != 43 {
        return Err(bad());
    }
    match base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64) {
        Ok(bytes) if bytes.len() == 32 => Ok(()),
        _ => Err(bad()),
    }
}

/// Check a registry base URL: `http(s)://host[:port][/path]`.
pub(crate) fn check_registry_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            format!(
                "`{}` must start with https:// or http://",
                pra_proto::sanitize::sanitize(url, 80)
            )
        })?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty()
        || authority.contains('@')
        || url.contains(['?', '#'])
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "`{}` is not a plain http(s) URL",
            pra_proto::sanitize::sanitize(url, 80)
        ));
    }
    Ok(())
}

/// What to do with a gateway's host key, given the pin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HostKeyCheck {
    /// It is the pinned key.
    Matches,
    /// Nothing is pinned yet: trust on first use, then [`pin_host_key`].
    FirstUse,
    /// It differs from the pin: refuse ([`host_key_changed`]).
    Changed {
        /// The pinned fingerprint.
        pinned: String,
    },
}

/// Compare the offered host key fingerprint with the pin (pure).
pub(crate) fn check_host_key(pinned: Option<&str>, offered: &str) -> HostKeyCheck {
    match pinned {
        None => HostKeyCheck::FirstUse,
        Some(p) if p == offered => HostKeyCheck::Matches,
        Some(p) => HostKeyCheck::Changed {
            pinned: p.to_string(),
        },
    }
}

/// The error for a changed host key (`ERR(10204)`).
pub(crate) fn host_key_changed(gateway: &GatewayAddr, pinned: &str, offered: &str) -> ClientError {
    ClientError::new(
        Code::HostKeyChanged,
        format!(
            "the gateway {gateway} offered host key {offered}, but {pinned} is pinned (someone may be intercepting the connection)"
        ),
    )
}

/// Store `fingerprint` as the pinned host key of `gateway` after a first
/// successful connection. Re-reads the file so a concurrent change is not
/// lost. Refuses to replace a different pin (`ERR(10204)`) and to pin for
/// an address that is no longer one of the configured gateways (the pin is
/// shared by `address` and `alternates`).
pub(crate) fn pin_host_key(
    home: &Home,
    gateway: &GatewayAddr,
    fingerprint: &str,
) -> ClientResult<()> {
    check_fingerprint(fingerprint).map_err(|e| {
        ClientError::with_fix(
            Code::GatewayProtocol,
            format!("gateway host key: {e}"),
            Code::GatewayProtocol.fix(),
        )
    })?;
    let mut cfg = Config::load(home)?;
    let current = cfg.gateways()?;
    let Some(server) = cfg.server.as_mut() else {
        return Err(ClientError::new(
            Code::ServerNotSet,
            "no gateway address is set",
        ));
    };
    if !current.contains(gateway) {
        return Err(ClientError::with_fix(
            Code::ConfigInvalid,
            format!(
                "the gateway address changed to {} while connecting to {gateway}; the host key was not pinned",
                list(&current)
            ),
            "connect again",
        ));
    }
    match check_host_key(server.host_key.as_deref(), fingerprint) {
        HostKeyCheck::Matches => Ok(()),
        HostKeyCheck::Changed { pinned } => Err(host_key_changed(gateway, &pinned, fingerprint)),
        HostKeyCheck::FirstUse => {
            server.host_key = Some(fingerprint.to_string());
            cfg.save(home)
        }
    }
}

/// `a, b, c`.
fn list(gateways: &[GatewayAddr]) -> String {
    gateways
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `addrs` in their order, each once (the first kept).
pub(crate) fn distinct(addrs: impl IntoIterator<Item = GatewayAddr>) -> Vec<GatewayAddr> {
    let mut out: Vec<GatewayAddr> = Vec::new();
    for a in addrs {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// Parse gateway addresses as typed; duplicates are dropped (first kept).
fn parse_gateways<S: AsRef<str>>(addresses: &[S]) -> ClientResult<Vec<GatewayAddr>> {
    let parsed = addresses
        .iter()
        .map(|a| {
            let a = a.as_ref();
            GatewayAddr::parse(a).map_err(|e| {
                let what = if addresses.len() > 1 {
                    format!(
                        "gateway address `{}`: {e}",
                        pra_proto::sanitize::sanitize(a, 80)
                    )
                } else {
                    format!("gateway address: {e}")
                };
                ClientError::with_fix(
                    Code::ConfigInvalid,
                    what,
                    "give HOST or HOST:PORT as your administrator wrote it, e.g. gateway.example.com:10022 or [2001:db8::1]:10022; nothing was changed",
                )
            })
        })
        .collect::<ClientResult<Vec<_>>>()?;
    let out = distinct(parsed);
    if out.is_empty() {
        return Err(ClientError::with_fix(
            Code::ConfigInvalid,
            "no gateway address given",
            "give HOST or HOST:PORT as your administrator wrote it; nothing was changed",
        ));
    }
    Ok(out)
}

/// Validate and store the gateway addresses and optional pin (what `pra
/// server set A [B …]` does): the first address is tried first, the others
/// become `alternates` in the order given (all gateways of one registry,
/// one shared host key). Returns the saved config and notes for the user
/// (address changed, pin replaced or removed). Nothing is written when a
/// value is invalid.
pub fn set_gateways<S: AsRef<str>>(
    home: &Home,
    addresses: &[S],
    host_key: Option<&str>,
) -> ClientResult<(Config, Vec<String>)> {
    let addrs = parse_gateways(addresses)?;
    check_host_key_arg(host_key)?;
    let cfg = Config::load(home)?;
    store_gateways(home, cfg, &addrs, host_key)
}

/// Validate and store the gateway address and optional pin (the app's
/// Settings → Server, which edits one address). The `alternates` are kept:
/// when `address` is one of the configured gateways it moves to the front
/// (the others keep their order), otherwise it replaces `address`.
pub fn set_gateway(
    home: &Home,
    address: &str,
    host_key: Option<&str>,
) -> ClientResult<(Config, Vec<String>)> {
    let first = parse_gateways(&[address])?;
    check_host_key_arg(host_key)?;
    let cfg = Config::load(home)?;
    let old = cfg.server.as_ref().map(listed).unwrap_or_default();
    let addrs = match first.first() {
        Some(address) => keep_alternates(address, &old),
        None => first,
    };
    store_gateways(home, cfg, &addrs, host_key)
}

/// The usable gateways of a `[server]` section, `address` first.
fn listed(s: &ServerSection) -> Vec<GatewayAddr> {
    std::iter::once(&s.address)
        .chain(&s.alternates)
        .filter_map(|a| GatewayAddr::parse(a).ok())
        .collect()
}

/// The gateway list after the app set `address` (pure): `address` first,
/// then the old list without the old primary unless `address` was one of
/// them (a reorder keeps every gateway).
fn keep_alternates(address: &GatewayAddr, old: &[GatewayAddr]) -> Vec<GatewayAddr> {
    let skip = usize::from(!old.contains(address));
    let mut out = vec![address.clone()];
    out.extend(old.iter().skip(skip).filter(|a| *a != address).cloned());
    out
}

fn check_host_key_arg(host_key: Option<&str>) -> ClientResult<()> {
    if let Some(fp) = host_key {
        check_fingerprint(fp).map_err(|e| {
            ClientError::with_fix(
                Code::ConfigInvalid,
                format!("--host-key: {e}"),
                "copy the fingerprint exactly as your administrator gave it; nothing was changed",
            )
        })?;
    }
    Ok(())
}

fn store_gateways(
    home: &Home,
    mut cfg: Config,
    addrs: &[GatewayAddr],
    host_key: Option<&str>,
) -> ClientResult<(Config, Vec<String>)> {
    let Some((first, rest)) = addrs.split_first() else {
        return Err(ClientError::new(
            Code::ConfigInvalid,
            "no gateway address given",
        ));
    };
    let (pin, notes) = decide_pin(cfg.server.as_ref(), addrs, host_key);
    cfg.server = Some(ServerSection {
        address: first.to_string(),
        alternates: rest.iter().map(ToString::to_string).collect(),
        host_key: pin,
    });
    cfg.save(home)?;
    let pin = match cfg.host_key_pin() {
        Some(fp) => format!("host key pinned {fp}"),
        None => "host key not pinned (trust on first use)".to_string(),
    };
    let others = if rest.is_empty() {
        String::new()
    } else {
        format!(" (alternates {})", list(rest))
    };
    crate::logging::user_line(&format!("server set: gateway {first}{others}, {pin}"));
    for n in &notes {
        crate::logging::user_line(&format!("server set: {n}"));
    }
    Ok((cfg, notes))
}

/// Which pin to keep after `server set` and what to tell the user (pure).
/// An old pin survives only when one of the new gateways was configured
/// before (all gateways of one registry share its host key); an explicit
/// `--host-key` always wins.
fn decide_pin(
    old: Option<&ServerSection>,
    addrs: &[GatewayAddr],
    host_key: Option<&str>,
) -> (Option<String>, Vec<String>) {
    let old_all = old.map(listed).unwrap_or_default();
    let old_addr = old_all.first();
    let old_pin = old.and_then(|s| s.host_key.clone());
    let same = addrs.iter().any(|a| old_all.contains(a));
    let mut notes = Vec::new();
    if let (Some(prev), Some(addr)) = (old_addr, addrs.first())
        && prev != addr
    {
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

fn invalid(path: &Path, what: String) -> ClientError {
    ClientError::with_fix(
        Code::ConfigInvalid,
        format!("{}: {what}", path.display()),
        format!(
            "correct it in {} (or delete the file and run `pra server set` again); the file was left as it is",
            path.display()
        ),
    )
}

impl Config {
    /// Read `config.toml`; a missing file is an empty configuration.
    pub fn load(home: &Home) -> ClientResult<Config> {
        let path = home.config_file();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(invalid(&path, format!("cannot read: {e}"))),
        };
        let cfg = Config::parse(&text).map_err(|what| invalid(&path, what))?;
        Ok(cfg)
    }

    /// Parse and validate the text of a config file; the error names the key.
    pub fn parse(text: &str) -> Result<Config, String> {
        let cfg: Config = toml::from_str(text).map_err(|e| describe_toml_error(text, &e))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Check every value; the error names the key (`server.address: …`).
    pub fn validate(&self) -> Result<(), String> {
        if let Some(s) = &self.server {
            GatewayAddr::parse(&s.address).map_err(|e| format!("server.address: {e}"))?;
            for (i, a) in s.alternates.iter().enumerate() {
                GatewayAddr::parse(a).map_err(|e| format!("server.alternates[{i}]: {e}"))?;
            }
            if let Some(fp) = &s.host_key {
                check_fingerprint(fp).map_err(|e| format!("server.host_key: {e}"))?;
            }
        }
        if let Some(r) = &self.registry {
            check_registry_url(&r.url).map_err(|e| format!("registry.url: {e}"))?;
        }
        Ok(())
    }

    /// Write `config.toml` atomically (after validating).
    pub fn save(&self, home: &Home) -> ClientResult<()> {
        let path = home.config_file();
        self.validate().map_err(|what| invalid(&path, what))?;
        let text = toml::to_string(self).map_err(|e| {
            ClientError::new(
                Code::HomeUnwritable,
                format!("cannot encode the configuration: {e}"),
            )
        })?;
        home.ensure()?;
        crate::keystore::write_atomic(&path, text.as_bytes(), false)
    }

    /// The gateway address, or `ERR(10101)` when none is set.
    pub fn gateway(&self) -> ClientResult<GatewayAddr> {
        let s = self
            .server
            .as_ref()
            .ok_or_else(|| ClientError::new(Code::ServerNotSet, "no gateway address is set"))?;
        GatewayAddr::parse(&s.address).map_err(|e| {
            ClientError::new(
                Code::ConfigInvalid,
                format!("config.toml: server.address: {e}"),
            )
        })
    }

    /// Every gateway in the order they are tried: `address`, then the
    /// `alternates` (duplicates dropped); `ERR(10101)` when none is set.
    pub fn gateways(&self) -> ClientResult<Vec<GatewayAddr>> {
        let first = self.gateway()?;
        let alternates = self
            .server
            .iter()
            .flat_map(|s| s.alternates.iter())
            .enumerate()
            .map(|(i, a)| {
                GatewayAddr::parse(a).map_err(|e| {
                    ClientError::new(
                        Code::ConfigInvalid,
                        format!("config.toml: server.alternates[{i}]: {e}"),
                    )
                })
            })
            .collect::<ClientResult<Vec<_>>>()?;
        Ok(distinct(std::iter::once(first).chain(alternates)))
    }

    /// The pinned host key fingerprint, if any.
    pub fn host_key_pin(&self) -> Option<&str> {
        self.server.as_ref().and_then(|s| s.host_key.as_deref())
    }

    /// The registry URL remembered after a submit.
    pub fn registry_url(&self) -> Option<&str> {
        self.registry.as_ref().map(|r| r.url.as_str())
    }

    /// The CA file remembered with the registry URL (`--ca`).
    pub fn registry_ca(&self) -> Option<&Path> {
        self.registry
            .as_ref()
            .and_then(|r| r.ca.as_deref())
            .map(Path::new)
    }
}

fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e
        .message()
        .replace("unknown field", "unknown key")
        .replace("missing field", "missing key");
    let msg = msg.trim_end_matches('\n').replace('\n', " ");
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let section = section_at(text, span.start);
            match section {
                Some(sec) => format!("line {line} in [{sec}]: {msg}"),
                None => format!("line {line}: {msg}"),
            }
        }
        None => msg,
    }
}

/// The `[section]` header that precedes byte `pos`.
fn section_at(text: &str, pos: usize) -> Option<String> {
    let before = text.get(..pos.min(text.len()))?;
    before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(['[', ']']).trim().to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn gateway_addresses() {
        for (input, want) in [
            ("gw.example.com", "gw.example.com:10022"),
            ("gw.example.com:22", "gw.example.com:22"),
            (" 10.0.0.1:2222 ", "10.0.0.1:2222"),
            ("[::1]", "[::1]:10022"),
            ("[2001:db8::1]:443", "[2001:db8::1]:443"),
            ("localhost", "localhost:10022"),
        ] {
            assert_eq!(
                GatewayAddr::parse(input).unwrap().to_string(),
                want,
                "{input}"
            );
        }
        for (input, why) in [
            ("", "empty"),
            ("gw:0", "bad port"),
            ("gw:70000", "bad port"),
            ("gw:+22", "bad port"),
            ("gw:", "bad port"),
            ("2001:db8::1", "brackets"),
            ("[2001:db8::1", "missing `]`"),
            ("[gw]:22", "not an IPv6"),
            ("[::1]22", "expected `:PORT`"),
            ("ssh://gw", "scheme"),
            ("gw host", "bad host name"),
            ("-gw", "bad host name"),
            ("a..b", "bad host name"),
        ] {
            let e = GatewayAddr::parse(input).unwrap_err();
            assert!(e.contains(why), "{input:?}: {e}");
        }
    }

    #[test]
    fn fingerprints() {
        let good = "SHA256:O0dkuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10";
        assert_eq!(check_fingerprint(good), Ok(()));
        for bad in [
            "O0dkuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10",
            "SHA256:O0dkuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10=",
            "SHA256:O0dkuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI1",
            "SHA256:O0dkuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI1!",
            "MD5:O0dkuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10",
            "sha256:O0dkuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10",
        ] {
            assert!(check_fingerprint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_errors_name_the_key() {
        for (text, want) in [
            (
                "[server]\ngatway = \"x\"\n",
                "line 2 in [server]: unknown key `gatway`",
            ),
            ("gatway = 1\n", "line 1: unknown key `gatway`"),
            (
                "[server]\naddress = \"gw:99999\"\n",
                "server.address: bad port `99999`",
            ),
            (
                "[server]\naddress = \"gw\"\nhost_key = \"MD5:aa\"\n",
                "server.host_key: `MD5:aa` is not a SHA256 fingerprint",
            ),
            (
                "[registry]\nurl = \"ftp://x\"\n",
                "registry.url: `ftp://x` must start with https://",
            ),
            ("[server]\n", "missing key `address`"),
            ("[server\n", "line 1"),
        ] {
            let e = Config::parse(text).unwrap_err();
            assert!(e.starts_with(want) || e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn round_trip_and_pin_logic() {
        let cfg = Config {
            server: Some(ServerSection {
                address: "[::1]:2222".into(),
                alternates: vec!["gw2.example.com:10022".into(), "10.0.0.3:2222".into()],
                host_key: Some("SHA256:O0dkuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10".into()),
            }),
            registry: Some(RegistrySection {
                url: "https://registry.example.com".into(),
                ca: Some("/etc/pra/ca.pem".into()),
            }),
        };
        let text = toml::to_string(&cfg).unwrap();
        assert_eq!(Config::parse(&text).unwrap(), cfg);
        assert_eq!(Config::parse("").unwrap(), Config::default());
        let fp = "SHA256:O0dkuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10";
        assert_eq!(check_host_key(None, fp), HostKeyCheck::FirstUse);
        assert_eq!(check_host_key(Some(fp), fp), HostKeyCheck::Matches);
        assert_eq!(
            check_host_key(Some("SHA256:other"), fp),
            HostKeyCheck::Changed {
                pinned: "SHA256:other".into()
            }
        );
    }

    #[test]
    fn pinning_on_first_use_never_replaces_a_pin() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let gw = GatewayAddr::parse("gw.example.com").unwrap();
        let fp1 = "SHA256:O0dkuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10";
        let fp2 = "SHA256:AAAAuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10";
        assert_eq!(
            pin_host_key(&home, &gw, fp1).unwrap_err().code(),
            Code::ServerNotSet
        );
        Config {
            server: Some(ServerSection {
                address: gw.to_string(),
                alternates: vec!["gw2.example.com:10022".into()],
                host_key: None,
            }),
            registry: None,
        }
        .save(&home)
        .unwrap();
        pin_host_key(&home, &gw, fp1).unwrap();
        assert_eq!(Config::load(&home).unwrap().host_key_pin(), Some(fp1));
        pin_host_key(&home, &gw, fp1).unwrap();
        let e = pin_host_key(&home, &gw, fp2).unwrap_err();
        assert_eq!(e.code(), Code::HostKeyChanged);
        assert_eq!(Config::load(&home).unwrap().host_key_pin(), Some(fp1));
        let other = GatewayAddr::parse("other.example.com").unwrap();
        assert_eq!(
            pin_host_key(&home, &other, fp2).unwrap_err().code(),
            Code::ConfigInvalid
        );
        // An alternate shares the one pin.
        let alt = GatewayAddr::parse("gw2.example.com").unwrap();
        pin_host_key(&home, &alt, fp1).unwrap();
        assert_eq!(
            pin_host_key(&home, &alt, fp2).unwrap_err().code(),
            Code::HostKeyChanged
        );
    }

    #[test]
    fn old_configs_load_and_are_written_unchanged() {
        // A file from before alternates existed.
        let old = format!("[server]\naddress = \"gw.example.com:10022\"\nhost_key = \"{A}\"\n");
        let cfg = Config::parse(&old).unwrap();
        let server = cfg.server.as_ref().unwrap();
        assert!(server.alternates.is_empty());
        assert_eq!(toml::to_string(&cfg).unwrap(), old);
        assert_eq!(
            cfg.gateways().unwrap(),
            vec![GatewayAddr::parse("gw.example.com").unwrap()]
        );

        let text = format!(
            "[server]\naddress = \"a:1\"\nalternates = [\"b:2\", \"[::1]:3\", \"a:1\"]\nhost_key = \"{A}\"\n"
        );
        let cfg = Config::parse(&text).unwrap();
        let all: Vec<String> = cfg
            .gateways()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(all, ["a:1", "b:2", "[::1]:3"]);
        assert_eq!(Config::parse(&toml::to_string(&cfg).unwrap()).unwrap(), cfg);

        let e = Config::parse("[server]\naddress = \"a\"\nalternates = [\"b\", \"c:0\"]\n")
            .unwrap_err();
        assert!(e.starts_with("server.alternates[1]: bad port `0`"), "{e}");
    }

    #[test]
    fn the_app_keeps_the_alternates() {
        let p = |s: &str| GatewayAddr::parse(s).unwrap();
        let names = |v: Vec<GatewayAddr>| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        let old = [p("a:1"), p("b:1"), p("c:1")];
        // Same address: unchanged.
        assert_eq!(
            names(keep_alternates(&p("a:1"), &old)),
            ["a:1", "b:1", "c:1"]
        );
        // An alternate chosen: moved to the front, nothing lost.
        assert_eq!(
            names(keep_alternates(&p("c:1"), &old)),
            ["c:1", "a:1", "b:1"]
        );
        // A new address replaces the first one; the alternates stay.
        assert_eq!(
            names(keep_alternates(&p("d:1"), &old)),
            ["d:1", "b:1", "c:1"]
        );
        assert_eq!(names(keep_alternates(&p("d:1"), &[])), ["d:1"]);

        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        set_gateways(&home, &["a:1", "b:1", "a:1"], Some(A)).unwrap();
        let cfg = Config::load(&home).unwrap();
        assert_eq!(cfg.server.as_ref().unwrap().alternates, ["b:1"]);
        let (cfg, notes) = set_gateway(&home, "b:1", None).unwrap();
        assert_eq!(cfg.server.as_ref().unwrap().address, "b:1");
        assert_eq!(cfg.server.as_ref().unwrap().alternates, ["a:1"]);
        assert_eq!(cfg.host_key_pin(), Some(A), "{notes:?}");
    }

    const A: &str = "SHA256:O0dkuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10";
    const B: &str = "SHA256:AAAAuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10";

    fn sec(addr: &str, pin: Option<&str>) -> ServerSection {
        ServerSection {
            address: addr.into(),
            alternates: Vec::new(),
            host_key: pin.map(str::to_string),
        }
    }

    #[test]
    fn pin_survives_while_one_gateway_stays() {
        let p = |s: &str| GatewayAddr::parse(s).unwrap();
        let mut old = sec("a", Some(A));
        old.alternates = vec!["b".into()];
        // b was an alternate: same registry, the pin stays.
        let (pin, notes) = decide_pin(Some(&old), &[p("b"), p("c")], None);
        assert_eq!(pin.as_deref(), Some(A));
        assert_eq!(notes, ["gateway address changed from a:10022 to b:10022"]);
        // Nothing in common: the pin goes.
        let (pin, notes) = decide_pin(Some(&old), &[p("c"), p("d")], None);
        assert_eq!(pin, None);
        assert!(notes.iter().any(|n| n.contains("was removed")), "{notes:?}");
        // Same first address, new alternates: nothing to say.
        let (pin, notes) = decide_pin(Some(&old), &[p("a"), p("c")], None);
        assert_eq!(pin.as_deref(), Some(A));
        assert!(notes.is_empty(), "{notes:?}");
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
            let (pin, notes) = decide_pin(old.as_ref(), std::slice::from_ref(&gw), given);
            assert_eq!(pin.as_deref(), want_pin, "{old:?} {given:?}");
            match want_note {
                Some(n) => assert!(notes.iter().any(|x| x.contains(n)), "{notes:?}"),
                None => assert!(notes.is_empty(), "{notes:?}"),
            }
        }
    }
}
