//! `config.toml` in the client's home: the gateway address, its pinned host
//! key, and the registry URL remembered after `pra key submit`.
//!
//! ```toml
//! [server]
//! address = "gateway.example.com:10022"
//! host_key = "SHA256:…"        # absent: the first connection pins it
//!
//! [registry]
//! url = "https://registry.example.com"
//! ```
//!
//! Unknown keys are refused and every error names the bad key. A broken file
//! is never overwritten: [`Config::load`] fails and nothing is saved.

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
    /// `HOST:PORT` (`[v6]:PORT`).
    pub address: String,
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
}

/// A validated gateway address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GatewayAddr {
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// TCP port.
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
pub fn check_fingerprint(fp: &str) -> Result<(), String> {
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
pub fn check_registry_url(url: &str) -> Result<(), String> {
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
pub enum HostKeyCheck {
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
pub fn check_host_key(pinned: Option<&str>, offered: &str) -> HostKeyCheck {
    match pinned {
        None => HostKeyCheck::FirstUse,
        Some(p) if p == offered => HostKeyCheck::Matches,
        Some(p) => HostKeyCheck::Changed {
            pinned: p.to_string(),
        },
    }
}

/// The error for a changed host key (`ERR(10204)`).
pub fn host_key_changed(gateway: &GatewayAddr, pinned: &str, offered: &str) -> ClientError {
    ClientError::new(
        Code::HostKeyChanged,
        format!(
            "the gateway {gateway} offered host key {offered}, but {pinned} is pinned (someone may be intercepting the connection)"
        ),
    )
}

/// The line to print when a key is pinned on first use.
pub fn first_use_notice(gateway: &GatewayAddr, fingerprint: &str) -> String {
    format!(
        "host key of {gateway} was not pinned yet: pinned {fingerprint} now (trust on first use); compare it with the fingerprint your administrator gives you"
    )
}

/// Store `fingerprint` as the pinned host key of `gateway` after a first
/// successful connection. Re-reads the file so a concurrent change is not
/// lost. Refuses to replace a different pin (`ERR(10204)`) and to pin for
/// an address that is no longer the configured one.
pub fn pin_host_key(home: &Home, gateway: &GatewayAddr, fingerprint: &str) -> ClientResult<()> {
    check_fingerprint(fingerprint).map_err(|e| {
        ClientError::with_fix(
            Code::GatewayProtocol,
            format!("gateway host key: {e}"),
            Code::GatewayProtocol.fix(),
        )
    })?;
    let mut cfg = Config::load(home)?;
    let current = cfg.gateway()?;
    let Some(server) = cfg.server.as_mut() else {
        return Err(ClientError::new(
            Code::ServerNotSet,
            "no gateway address is set",
        ));
    };
    if &current != gateway {
        return Err(ClientError::with_fix(
            Code::ConfigInvalid,
            format!(
                "the gateway address changed to {current} while connecting to {gateway}; the host key was not pinned"
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

    /// The pinned host key fingerprint, if any.
    pub fn host_key_pin(&self) -> Option<&str> {
        self.server.as_ref().and_then(|s| s.host_key.as_deref())
    }

    /// The registry URL remembered after a submit.
    pub fn registry_url(&self) -> Option<&str> {
        self.registry.as_ref().map(|r| r.url.as_str())
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
                host_key: Some("SHA256:O0dkuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10".into()),
            }),
            registry: Some(RegistrySection {
                url: "https://registry.example.com".into(),
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
    }
}
