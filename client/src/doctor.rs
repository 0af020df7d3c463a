//! `pra doctor`: the helpdesk's checklist as one run, one line per check
//! with OK/FAIL/SKIP and the code. A check that cannot run because an
//! earlier one failed says so (SKIP) instead of failing again.
//!
//! Order: address set, name resolves, TCP reach of the gateway port, host
//! key matches the pin, one line per alternate gateway (reachable, same
//! host key; the login goes over the first one that works when the main
//! address does not), key unlocks on this PC, key approved (login), rules
//! fetched, then per rule: local port free, target reachable through the
//! tunnel.

use crate::config::{Config, GatewayAddr};
use crate::error::{ClientError, ClientResult};
use crate::home::Home;
use crate::tunnel::session::{self, OpenError, SshSession};
use crate::tunnel::{Timing, portowner};
use pra_proto::codes::Code;
use pra_proto::rules::Rule;
use pra_proto::sanitize::sanitize;
use russh::keys::PrivateKey;
use serde::Serialize;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Passed.
    Ok,
    /// Failed, with a code.
    Fail,
    /// Not run (an earlier check failed, or it needs the passphrase).
    Skip,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "OK  ",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked, e.g. `TCP reach of gw:10022`.
    pub name: String,
    /// Passed, failed or not run.
    pub status: Status,
    /// `ERR(…)`/`WAR(…)` for failures.
    pub code: Option<String>,
    /// What was found.
    pub detail: String,
    /// What to do (failures).
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Status::Ok,
            code: None,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(name: impl Into<String>, e: &ClientError) -> Check {
        Check {
            name: name.into(),
            status: Status::Fail,
            code: Some(e.code().label()),
            detail: e.to_string(),
            fix: Some(e.fix().to_string()),
        }
    }

    fn skip(name: impl Into<String>, why: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Status::Skip,
            code: None,
            detail: why.into(),
            fix: None,
        }
    }

    /// `OK   name: detail` / `FAIL name: ERR(…) detail: fix`.
    pub fn line(&self) -> String {
        match (&self.code, &self.fix) {
            (Some(code), Some(fix)) => format!(
                "{} {}: {code} {}: {fix}",
                self.status.word(),
                self.name,
                self.detail
            ),
            _ => format!("{} {}: {}", self.status.word(), self.name, self.detail),
        }
    }
}

/// The whole report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The checks in order.
    pub checks: Vec<Check>,
}

impl Report {
    /// True when no check failed.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Fail)
    }

    /// One line per check, and a summary.
    pub fn text(&self) -> String {
        let mut s: String = self.checks.iter().map(|c| c.line() + "\n").collect();
        s.push_str(&self.summary());
        s.push('\n');
        s
    }

    /// `all N checks passed` / `2 of 9 checks failed: …`.
    pub fn summary(&self) -> String {
        let failed: Vec<&Check> = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .collect();
        let skipped = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Skip)
            .count();
        let skip = if skipped > 0 {
            format!(", {skipped} skipped")
        } else {
            String::new()
        };
        match failed.first() {
            None => format!(
                "doctor: all {} checks passed{skip}",
                self.checks.len() - skipped
            ),
            Some(first) => format!(
                "doctor: {} of {} checks failed{skip}; first: {}",
                failed.len(),
                self.checks.len(),
                first.name
            ),
        }
    }

    /// The JSON form (`{"ok":…, "checks":[…]}`).
    pub fn json(&self) -> String {
        serde_json::json!({ "ok": self.ok(), "checks": self.checks }).to_string()
    }
}

/// How the doctor gets the key.
pub enum KeyAccess {
    /// Ask (or read `PRA_PASSPHRASE`) when the key check comes; runs on a
    /// blocking thread. Returns the key and the account name.
    Unlock(Box<dyn FnOnce() -> Result<(PrivateKey, String), ClientError> + Send>),
    /// Do not try; the reason is shown as SKIP.
    Skip(String),
}

/// What the doctor needs besides the home.
pub struct DoctorInput {
    /// Whether and how the key may be unlocked for the login checks.
    pub key: KeyAccess,
    /// Registry URL, to tell pending/revoked apart when the gateway refuses
    /// the key (`None`: from `config.toml`).
    pub registry: Option<String>,
    /// Timers (connect and SSH timeouts).
    pub timing: Timing,
}

/// Run every check, calling `each` as soon as a line is known (the CLI
/// prints it at once).
pub async fn run(home: &Home, input: DoctorInput, each: impl FnMut(&Check)) -> Report {
    let mut d = Doctor {
        report: Report::default(),
        each,
        timing: input.timing,
    };
    // 1. Address.
    let cfg = Config::load(home);
    let Some((gw, alternates)) = d.address(&cfg) else {
        for n in network_check_names() {
            d.push(Check::skip(n, "needs the gateway address"));
        }
        d.key(home, input.key).await;
        return d.report;
    };
    let pin = cfg
        .as_ref()
        .ok()
        .and_then(|c| c.host_key_pin().map(str::to_string));
    // 2-4. Network and host key; `Err` says why later checks cannot run.
    let mut session = d.network(&gw, pin.as_deref()).await;
    // 4b. Each alternate gateway: reachable, same host key (shared pin).
    let shared = pin
        .clone()
        .or_else(|| session.as_ref().ok().map(|s| s.host_key.clone()));
    for alt in &alternates {
        if let Some(s) = d.alternate(alt, shared.as_deref(), pin.is_some()).await {
            if session.is_err() {
                session = Ok(s);
            } else {
                s.disconnect().await;
            }
        }
    }
    // 5. Key.
    let key = d.key(home, input.key).await;
    // 6. Login.
    // The registry and the CA its certificate is checked against (the one
    // remembered with the same URL).
    let remembered = cfg.as_ref().ok().and_then(|c| {
        let ca = c.registry_ca().map(Path::to_path_buf);
        c.registry_url().map(|url| (url.to_string(), ca))
    });
    let registry = match input.registry {
        Some(url) => {
            let ca = remembered.filter(|(u, _)| *u == url).and_then(|(_, ca)| ca);
            Some((url, ca))
        }
        None => remembered,
    };
    let approved = d.login(&mut session, key, registry).await;
    // 7-9. Rules, then per rule.
    if let Ok(s) = &session {
        if let Some(rules) = d.rules(s, approved).await {
            d.per_rule(s, &rules).await;
        }
    } else {
        d.push(Check::skip("rules fetched", "needs the login"));
    }
    if let Ok(s) = session {
        s.disconnect().await;
    }
    d.report
}

/// One run of the checks: the report so far and who hears each line.
struct Doctor<F> {
    report: Report,
    each: F,
    timing: Timing,
}

impl<F: FnMut(&Check)> Doctor<F> {
    fn push(&mut self, c: Check) {
        (self.each)(&c);
        self.report.checks.push(c);
    }

    /// The gateway address from `config.toml`, and the alternates.
    fn address(&mut self, cfg: &ClientResult<Config>) -> Option<(GatewayAddr, Vec<GatewayAddr>)> {
        let all = cfg
            .as_ref()
            .map_err(|e| ClientError::with_fix(e.code(), e.to_string(), e.fix()))
            .and_then(Config::gateways);
        match all {
            Ok(all) => {
                let mut all = all.into_iter();
                let gw = all.next()?;
                let alternates: Vec<GatewayAddr> = all.collect();
                let detail = match alternates.len() {
                    0 => gw.to_string(),
                    n => format!("{gw} and {n} alternate(s)"),
                };
                self.push(Check::ok("gateway address set", detail));
                Some((gw, alternates))
            }
            Err(e) => {
                self.push(Check::fail("gateway address set", &e));
                None
            }
        }
    }

    /// Name, TCP reach and host key: the SSH session, or why there is none.
    async fn network(&mut self, gw: &GatewayAddr, pin: Option<&str>) -> Result<SshSession, String> {
        let timing = self.timing.clone();
        let addrs = match session::resolve(gw, &timing).await {
            Ok(addrs) => addrs,
            Err(e) => {
                self.push(Check::fail(format!("name {} resolves", gw.host), &e));
                self.push(Check::skip(format!("TCP reach of {gw}"), "needs the name"));
                self.push(Check::skip("gateway host key", "needs the name"));
                return Err("needs the name to resolve".into());
            }
        };
        let shown: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
        self.push(Check::ok(
            format!("name {} resolves", gw.host),
            shown.join(", "),
        ));
        let stream = match session::tcp_connect(gw, &addrs, &timing).await {
            Ok(stream) => stream,
            Err(e) => {
                self.push(Check::fail(format!("TCP reach of {gw}"), &e));
                self.push(Check::skip("gateway host key", "needs TCP reach"));
                return Err("needs TCP reach".into());
            }
        };
        let peer = stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        self.push(Check::ok(
            format!("TCP reach of {gw}"),
            format!("connected to {peer}"),
        ));
        let cfg_ssh = session::ssh_config(&timing);
        match session::handshake(gw, stream, pin, cfg_ssh, &timing).await {
            Ok(s) => {
                let detail = match pin {
                    Some(_) => format!("{} matches the pin", s.host_key),
                    None => format!(
                        "{} offered; nothing pinned yet (the first `pra connect` pins it; compare it with your administrator's)",
                        s.host_key
                    ),
                };
                self.push(Check::ok("gateway host key", detail));
                Ok(s)
            }
            Err(e) => {
                self.push(Check::fail("gateway host key", &e));
                Err("the SSH connection failed".into())
            }
        }
    }

    /// One line for an alternate gateway: name, TCP and host key in one
    /// (`pin`: the pinned key, or when `pinned` is false the one the main
    /// address showed: all gateways of a registry share it).
    async fn alternate(
        &mut self,
        gw: &GatewayAddr,
        pin: Option<&str>,
        pinned: bool,
    ) -> Option<SshSession> {
        let name = format!("alternate gateway {gw}");
        let timing = self.timing.clone();
        let r = async {
            let addrs = session::resolve(gw, &timing).await?;
            let stream = session::tcp_connect(gw, &addrs, &timing).await?;
            let peer = stream
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            let cfg_ssh = session::ssh_config(&timing);
            let s = session::handshake(gw, stream, pin, cfg_ssh, &timing).await?;
            Ok::<_, ClientError>((peer, s))
        }
        .await;
        match r {
            Ok((peer, s)) => {
                let key = match (pin, pinned) {
                    (Some(_), true) => format!("host key {} matches the pin", s.host_key),
                    (Some(_), false) => format!(
                        "host key {} is the main address's (nothing pinned yet)",
                        s.host_key
                    ),
                    (None, _) => format!("host key {} offered; nothing pinned yet", s.host_key),
                };
                self.push(Check::ok(name, format!("connected to {peer}; {key}")));
                Some(s)
            }
            Err(e) => {
                self.push(Check::fail(name, &e));
                None
            }
        }
    }

    /// A line before the key check only when part of this PC's identity
    /// cannot be read (the key is then bound to the rest), then the key.
    async fn key(&mut self, home: &Home, access: KeyAccess) -> Option<(PrivateKey, String)> {
        if let Some(line) = identity_check().await {
            self.push(line);
        }
        let (line, key) = key_check(home, access).await;
        self.push(line);
        key
    }

    /// Public-key login; a refusal is explained by the registry when known.
    async fn login(
        &mut self,
        session: &mut Result<SshSession, String>,
        key: Option<(PrivateKey, String)>,
        registry: Option<(String, Option<PathBuf>)>,
    ) -> bool {
        let (s, (key, user)) = match (session, key) {
            (Ok(s), Some(k)) => (s, k),
            (Err(blocked), _) => {
                self.push(Check::skip("key approved", blocked.clone()));
                return false;
            }
            (Ok(_), None) => {
                self.push(Check::skip("key approved", "needs the key"));
                return false;
            }
        };
        let timing = self.timing.clone();
        match session::authenticate(s, &user, Arc::new(key.clone()), &timing).await {
            Ok(()) => {
                self.push(Check::ok(
                    "key approved",
                    format!("the gateway accepted user {user}"),
                ));
                true
            }
            Err(e) => {
                let e = explain(e, registry, key, user, &timing).await;
                self.push(Check::fail("key approved", &e));
                false
            }
        }
    }

    /// The user's rules over the session (after a successful login).
    async fn rules(&mut self, s: &SshSession, approved: bool) -> Option<Vec<Rule>> {
        if !approved {
            self.push(Check::skip("rules fetched", "needs the login"));
            return None;
        }
        match session::fetch_rules(s, &self.timing).await {
            Ok(doc) => {
                let names: Vec<String> = doc.rules.iter().map(|r| sanitize(&r.name, 64)).collect();
                self.push(Check::ok(
                    "rules fetched",
                    format!("{} rule(s): {}", doc.rules.len(), names.join(", ")),
                ));
                Some(doc.rules)
            }
            Err(e) => {
                self.push(Check::fail("rules fetched", &e));
                None
            }
        }
    }

    /// Each rule's local port free, then each target reachable.
    async fn per_rule(&mut self, s: &SshSession, rules: &[Rule]) {
        for r in rules {
            let name = sanitize(&r.name, 64);
            self.push(port_check(&name, r.local_port));
        }
        for r in rules {
            let line = target_check(s, r).await;
            self.push(line);
        }
    }
}

/// Can the gateway open the rule's target?
async fn target_check(s: &SshSession, r: &Rule) -> Check {
    let name = sanitize(&r.name, 64);
    let target = format!("{}:{}", sanitize(&r.target_host, 253), r.target_port);
    let label = format!("target {target} reachable through the tunnel (rule {name})");
    let origin = SocketAddr::from((Ipv4Addr::LOCALHOST, r.local_port));
    match s
        .open_direct_tcpip(&r.target_host, r.target_port, origin)
        .await
    {
        Ok(ch) => {
            let _ = ch.close().await;
            Check::ok(label, "the gateway connected to it")
        }
        Err(OpenError::Refused(reason)) | Err(OpenError::Session(reason)) => {
            let e = ClientError::new(
                Code::TargetRefused,
                format!("the gateway could not open {target} ({reason})"),
            );
            Check::fail(label, &e)
        }
    }
}

fn network_check_names() -> [&'static str; 3] {
    [
        "gateway name resolves",
        "TCP reach of the gateway",
        "gateway host key",
    ]
}

/// `OK   PC identity readable: WAR(10107) …` when a source of the PC's
/// identity failed (a warning: the key works, bound to the rest); `None`
/// when every source answered.
async fn identity_check() -> Option<Check> {
    let id = tokio::task::spawn_blocking(crate::identity::collect::current)
        .await
        .ok()?;
    let line = crate::keystore::unavailable_line(&id.unavailable)?;
    Some(Check {
        name: "PC identity readable".into(),
        status: Status::Ok,
        code: Some(Code::IdentityPartial.label()),
        detail: line
            .trim_start_matches(&format!("{} ", Code::IdentityPartial.label()))
            .trim_end_matches(&format!(": {}", Code::IdentityPartial.fix()))
            .to_string(),
        fix: Some(Code::IdentityPartial.fix().to_string()),
    })
}

/// A key that is missing, damaged or readable by others fails whether or
/// not it may be unlocked now, so the CLI, the app and the log bundle give
/// the same verdict; only the unlock itself is skipped without passphrase.
async fn key_check(home: &Home, access: KeyAccess) -> (Check, Option<(PrivateKey, String)>) {
    const NAME: &str = "key unlocks on this PC";
    match access {
        KeyAccess::Skip(why) => match crate::keystore::read_public(home) {
            Err(e) => (Check::fail(NAME, &e), None),
            Ok(_) => (Check::skip(NAME, why), None),
        },
        KeyAccess::Unlock(f) => match tokio::task::spawn_blocking(f).await {
            Ok(Ok((key, user))) => {
                let fp = pra_proto::fingerprint(key.public_key());
                (
                    Check::ok(NAME, format!("{fp} (user {})", sanitize(&user, 64))),
                    Some((key, user)),
                )
            }
            Ok(Err(e)) => (Check::fail(NAME, &e), None),
            Err(e) => (
                Check::fail(
                    NAME,
                    &ClientError::new(Code::KeyNotLoaded, format!("the key check stopped: {e}")),
                ),
                None,
            ),
        },
    }
}

async fn explain(
    e: ClientError,
    registry: Option<(String, Option<PathBuf>)>,
    key: PrivateKey,
    user: String,
    timing: &Timing,
) -> ClientError {
    if e.code() != Code::KeyRefused {
        return e;
    }
    let Some((url, ca)) = registry else {
        return e;
    };
    let f = crate::tunnel::setup::refusal_explainer_with_ca(url, ca, Arc::new(key), user);
    match tokio::time::timeout(
        timing.connect_timeout,
        tokio::task::spawn_blocking(move || f()),
    )
    .await
    {
        Ok(Ok(Some(finer))) => finer,
        _ => e,
    }
}

/// Is 127.0.0.1:`port` free? A running `pra connect` holding it is fine.
fn port_check(rule: &str, port: u16) -> Check {
    let label = format!("local port {port} free (rule {rule})");
    match std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        Ok(_) => Check::ok(label, "free"),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let holder = portowner::holder(port);
            match holder {
                Some(h) if h.starts_with("pra ") => {
                    Check::ok(label, format!("in use by a running `pra connect`: {h}"))
                }
                _ => {
                    let by = holder.map(|h| format!(" by {h}")).unwrap_or_default();
                    Check::fail(
                        label,
                        &ClientError::new(Code::PortBusy, format!("local port {port} is used{by}")),
                    )
                }
            }
        }
        Err(e) => Check::fail(
            label,
            &ClientError::new(
                Code::PortDenied,
                format!("cannot listen on 127.0.0.1:{port} ({e})"),
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lines_and_summary() {
        let ok = Check::ok("gateway address set", "gw:10022");
        assert_eq!(ok.line(), "OK   gateway address set: gw:10022");
        let f = Check::fail(
            "TCP reach of gw:10022",
            &ClientError::new(Code::GatewayUnreachable, "cannot reach gw:10022"),
        );
        assert!(
            f.line()
                .starts_with("FAIL TCP reach of gw:10022: ERR(10202) cannot reach gw:10022: ")
        );
        let s = Check::skip("gateway host key", "needs TCP reach");
        let r = Report {
            checks: vec![ok.clone(), f, s],
        };
        assert!(!r.ok());
        assert_eq!(
            r.summary(),
            "doctor: 1 of 3 checks failed, 1 skipped; first: TCP reach of gw:10022"
        );
        let v: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(v["ok"], false);
        assert_eq!(v["checks"][1]["code"], "ERR(10202)");
        assert_eq!(v["checks"][2]["status"], "skip");
        let good = Report { checks: vec![ok] };
        assert!(good.ok());
        assert_eq!(good.summary(), "doctor: all 1 checks passed");
    }

    #[test]
    fn busy_port_names_the_holder_and_free_port_is_ok() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let c = port_check("smtp", port);
        assert_eq!(c.status, Status::Fail);
        assert_eq!(c.code.as_deref(), Some("WAR(10102)"));
        assert!(
            c.detail.contains(&format!("pid {}", std::process::id())),
            "{c:?}"
        );
        drop(l);
        // The port was ours; now nothing holds it.
        assert_eq!(port_check("smtp", port).status, Status::Ok);
    }
}
