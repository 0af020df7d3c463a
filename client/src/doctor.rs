//! `pra doctor`: the helpdesk's checklist as one run, one line per check
//! with OK/FAIL/SKIP and the code. A check that cannot run because an
//! earlier one failed says so (SKIP) instead of failing again.
//!
//! Order: address set, name resolves, TCP reach of the gateway port, host
//! key matches the pin, key unlocks on this PC, key approved (login), rules
//! fetched, then per rule: local port free, target reachable through the
//! tunnel.

use crate::config::Config;
use crate::error::ClientError;
use crate::home::Home;
use crate::tunnel::session::{self, OpenError, SshSession};
use crate::tunnel::{Timing, portowner};
use pra_proto::codes::Code;
use pra_proto::sanitize::sanitize;
use russh::keys::PrivateKey;
use serde::Serialize;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// Outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Fine.
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
    /// Outcome.
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
    /// The key.
    pub key: KeyAccess,
    /// Registry URL, to tell pending/revoked apart when the gateway refuses
    /// the key (`None`: from `config.toml`).
    pub registry: Option<String>,
    /// Timers (connect and SSH timeouts).
    pub timing: Timing,
}

/// Run every check, calling `each` as soon as a line is known (the CLI
/// prints it at once).
pub async fn run(home: &Home, input: DoctorInput, mut each: impl FnMut(&Check)) -> Report {
    let mut report = Report::default();
    let mut push = |c: Check, r: &mut Report| {
        each(&c);
        r.checks.push(c);
    };
    let timing = input.timing.clone();

    // 1. Address.
    let cfg = Config::load(home);
    let gw = match cfg
        .as_ref()
        .map_err(|e| ClientError::with_fix(e.code(), e.to_string(), e.fix()))
        .and_then(|c| c.gateway())
    {
        Ok(gw) => {
            push(
                Check::ok("gateway address set", gw.to_string()),
                &mut report,
            );
            gw
        }
        Err(e) => {
            push(Check::fail("gateway address set", &e), &mut report);
            for n in network_check_names() {
                push(Check::skip(n, "needs the gateway address"), &mut report);
            }
            if let Some(line) = identity_check().await {
                push(line, &mut report);
            }
            let key = key_check(home, input.key).await;
            push(key.0, &mut report);
            return report;
        }
    };
    let pin = cfg
        .as_ref()
        .ok()
        .and_then(|c| c.host_key_pin().map(str::to_string));

    // 2-4. Network and host key.
    let mut session: Option<SshSession> = None;
    let mut blocked: Option<String> = None;
    match session::resolve(&gw, &timing).await {
        Ok(addrs) => {
            let shown: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            push(
                Check::ok(format!("name {} resolves", gw.host), shown.join(", ")),
                &mut report,
            );
            match session::tcp_connect(&gw, &addrs, &timing).await {
                Ok(stream) => {
                    let peer = stream
                        .peer_addr()
                        .map(|a| a.to_string())
                        .unwrap_or_default();
                    push(
                        Check::ok(format!("TCP reach of {gw}"), format!("connected to {peer}")),
                        &mut report,
                    );
                    let cfg_ssh = session::ssh_config(&timing);
                    match session::handshake(&gw, stream, pin.as_deref(), cfg_ssh, &timing).await {
                        Ok(s) => {
                            let detail = match &pin {
                                Some(_) => format!("{} matches the pin", s.host_key),
                                None => format!(
                                    "{} offered; nothing pinned yet (the first `pra connect` pins it; compare it with your administrator's)",
                                    s.host_key
                                ),
                            };
                            push(Check::ok("gateway host key", detail), &mut report);
                            session = Some(s);
                        }
                        Err(e) => {
                            push(Check::fail("gateway host key", &e), &mut report);
                            blocked = Some("the SSH connection failed".into());
                        }
                    }
                }
                Err(e) => {
                    push(Check::fail(format!("TCP reach of {gw}"), &e), &mut report);
                    push(
                        Check::skip("gateway host key", "needs TCP reach"),
                        &mut report,
                    );
                    blocked = Some("needs TCP reach".into());
                }
            }
        }
        Err(e) => {
            push(
                Check::fail(format!("name {} resolves", gw.host), &e),
                &mut report,
            );
            push(
                Check::skip(format!("TCP reach of {gw}"), "needs the name"),
                &mut report,
            );
            push(
                Check::skip("gateway host key", "needs the name"),
                &mut report,
            );
            blocked = Some("needs the name to resolve".into());
        }
    }

    // 5. Key. A line before it only when part of this PC's identity cannot
    // be read (the key is then bound to the rest).
    if let Some(line) = identity_check().await {
        push(line, &mut report);
    }
    let (key_line, key) = key_check(home, input.key).await;
    push(key_line, &mut report);

    // 6. Login.
    let approved = match (&mut session, &key) {
        (Some(s), Some((key, user))) => {
            match session::authenticate(s, user, Arc::new(key.clone()), &timing).await {
                Ok(()) => {
                    push(
                        Check::ok("key approved", format!("the gateway accepted user {user}")),
                        &mut report,
                    );
                    true
                }
                Err(e) => {
                    let registry = input.registry.clone().or_else(|| {
                        cfg.as_ref()
                            .ok()
                            .and_then(|c| c.registry_url().map(str::to_string))
                    });
                    let e = explain(e, registry, key.clone(), user.clone(), &timing).await;
                    push(Check::fail("key approved", &e), &mut report);
                    false
                }
            }
        }
        (None, _) => {
            push(
                Check::skip("key approved", blocked.clone().unwrap_or_default()),
                &mut report,
            );
            false
        }
        (Some(_), None) => {
            push(Check::skip("key approved", "needs the key"), &mut report);
            false
        }
    };

    // 7. Rules.
    let rules = match (&session, approved) {
        (Some(s), true) => match session::fetch_rules(s, &timing).await {
            Ok(doc) => {
                let names: Vec<String> = doc.rules.iter().map(|r| sanitize(&r.name, 64)).collect();
                push(
                    Check::ok(
                        "rules fetched",
                        format!("{} rule(s): {}", doc.rules.len(), names.join(", ")),
                    ),
                    &mut report,
                );
                Some(doc.rules)
            }
            Err(e) => {
                push(Check::fail("rules fetched", &e), &mut report);
                None
            }
        },
        _ => {
            push(Check::skip("rules fetched", "needs the login"), &mut report);
            None
        }
    };

    // 8-9. Per rule.
    if let (Some(rules), Some(s)) = (rules, &session) {
        for r in &rules {
            let name = sanitize(&r.name, 64);
            push(port_check(&name, r.local_port), &mut report);
        }
        for r in &rules {
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
                    push(Check::ok(label, "the gateway connected to it"), &mut report);
                }
                Err(OpenError::Refused(reason)) | Err(OpenError::Session(reason)) => {
                    let e = ClientError::new(
                        Code::TargetRefused,
                        format!("the gateway could not open {target} ({reason})"),
                    );
                    push(Check::fail(label, &e), &mut report);
                }
            }
        }
    }
    if let Some(s) = session {
        s.disconnect().await;
    }
    report
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
    let id = tokio::task::spawn_blocking(crate::identity::current)
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
    registry: Option<String>,
    key: PrivateKey,
    user: String,
    timing: &Timing,
) -> ClientError {
    if e.code() != Code::KeyRefused {
        return e;
    }
    let Some(url) = registry else { return e };
    let f = crate::commands::connect::refusal_explainer(url, Arc::new(key), user);
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
