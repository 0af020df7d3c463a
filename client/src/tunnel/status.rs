//! What the tunnel shows: [`TunnelState`] (published on a `watch` channel for
//! the CLI and the GUI), the [`Event`]s that tell one state from the next,
//! and their one-line text and JSON forms.
//!
//! Pure: [`changes`] compares two states, [`Event::text`] renders a line.
//! The supervisor and the forwards change the state through [`Hub`].

use crate::error::ClientError;
use pra_proto::codes::Code;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// Where the tunnel is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Not connected (before start, after Ctrl-C, or after a fatal error).
    Disconnected,
    /// First connection in progress.
    Connecting,
    /// Connected; forwards carry data.
    Connected,
    /// The connection was lost; trying again with backoff.
    Reconnecting,
}

/// State of one forward.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ForwardState {
    /// Listening on 127.0.0.1; connections go through the tunnel.
    Forwarding,
    /// The local port is held by another program (`WAR(10102)`).
    PortBusy {
        /// The program holding it, where the OS tells (`name (pid N)`).
        holder: Option<String>,
    },
    /// The local port cannot be opened for another reason (`WAR(10106)`).
    PortDenied {
        /// What the OS said.
        reason: String,
    },
    /// The gateway could not open the target (`WAR(10103)`).
    TargetRefused {
        /// What the gateway said.
        reason: String,
    },
    /// The forward is closed (disconnected, or the rule was removed).
    Stopped,
}

impl ForwardState {
    /// The warning code of this state, if it is one.
    pub fn code(&self) -> Option<Code> {
        match self {
            ForwardState::PortBusy { .. } => Some(Code::PortBusy),
            ForwardState::PortDenied { .. } => Some(Code::PortDenied),
            ForwardState::TargetRefused { .. } => Some(Code::TargetRefused),
            ForwardState::Forwarding | ForwardState::Stopped => None,
        }
    }
}

/// One rule as the user sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleState {
    /// Rule name (sanitized).
    pub name: String,
    /// `127.0.0.1:PORT`.
    pub local: SocketAddr,
    /// `HOST:PORT` as seen from the gateway (sanitized).
    pub target: String,
    /// Current state.
    #[serde(flatten)]
    pub state: ForwardState,
    /// Bytes sent from local programs to the target.
    pub bytes_up: u64,
    /// Bytes received from the target.
    pub bytes_down: u64,
    /// Open connections right now.
    pub active: u64,
}

/// A failure with its code, as the GUI shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorInfo {
    /// Stable code the helpdesk looks up.
    pub code: Code,
    /// `ERR(10203)` / `WAR(10102)`.
    pub label: String,
    /// What happened.
    pub what: String,
    /// What to do.
    pub fix: String,
}

impl From<&ClientError> for ErrorInfo {
    fn from(e: &ClientError) -> Self {
        ErrorInfo {
            code: e.code(),
            label: e.code().label(),
            what: e.to_string(),
            fix: e.fix().to_string(),
        }
    }
}

impl ErrorInfo {
    /// The one line: `ERR(…) what: fix`.
    pub fn line(&self) -> String {
        pra_proto::codes::line(self.code, &self.what, &self.fix)
    }
}

/// Everything the CLI and the GUI show about a tunnel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TunnelState {
    /// Connection phase.
    pub phase: Phase,
    /// `HOST:PORT` of the gateway.
    pub gateway: String,
    /// Account the gateway knows us as (from the rules document).
    pub user: Option<String>,
    /// Host key of the gateway in use (`SHA256:…`).
    pub host_key: Option<String>,
    /// Set when this run pinned the host key on first use.
    pub pinned_on_first_use: bool,
    /// One entry per rule, sorted by local port.
    pub rules: Vec<RuleState>,
    /// The last failure (fatal, or the reason of the current reconnect).
    pub last_error: Option<ErrorInfo>,
    /// Counts connections made (1 = first connect; more = reconnects).
    pub connects: u64,
}

impl TunnelState {
    /// The state before anything happened.
    pub fn new(gateway: impl Into<String>) -> TunnelState {
        TunnelState {
            phase: Phase::Disconnected,
            gateway: gateway.into(),
            user: None,
            host_key: None,
            pinned_on_first_use: false,
            rules: Vec::new(),
            last_error: None,
            connects: 0,
        }
    }

    /// The rule named `name`.
    pub fn rule(&self, name: &str) -> Option<&RuleState> {
        self.rules.iter().find(|r| r.name == name)
    }
}

/// A change worth one line of output (and one JSON object).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The phase changed.
    Phase {
        /// New phase.
        phase: Phase,
        /// Gateway address.
        gateway: String,
        /// Account, once known.
        user: Option<String>,
        /// Connection number (reconnects count up).
        connects: u64,
    },
    /// The host key was pinned on first use.
    HostKeyPinned {
        /// Gateway address.
        gateway: String,
        /// The fingerprint now pinned.
        fingerprint: String,
    },
    /// A rule appeared or changed state.
    Rule(RuleState),
    /// A failure (fatal, or why we reconnect).
    Error(ErrorInfo),
}

/// The events that lead from `prev` (none at start) to `next`. Byte counters
/// alone are not a change.
pub fn changes(prev: Option<&TunnelState>, next: &TunnelState) -> Vec<Event> {
    let mut out = Vec::new();
    if let Some(e) = &next.last_error
        && prev.and_then(|p| p.last_error.as_ref()) != Some(e)
    {
        out.push(Event::Error(e.clone()));
    }
    let phase_changed = prev.is_none_or(|p| p.phase != next.phase || p.connects != next.connects);
    if phase_changed {
        out.push(Event::Phase {
            phase: next.phase,
            gateway: next.gateway.clone(),
            user: next.user.clone(),
            connects: next.connects,
        });
    }
    if next.pinned_on_first_use
        && !prev.is_some_and(|p| p.pinned_on_first_use)
        && let Some(fp) = &next.host_key
    {
        out.push(Event::HostKeyPinned {
            gateway: next.gateway.clone(),
            fingerprint: fp.clone(),
        });
    }
    for r in &next.rules {
        let before = prev.and_then(|p| p.rule(&r.name));
        let changed = match before {
            None => true,
            Some(b) => b.state != r.state || b.local != r.local || b.target != r.target,
        };
        // A fresh connection repeats every rule line, as the user expects.
        if changed || (phase_changed && next.phase == Phase::Connected) {
            out.push(Event::Rule(r.clone()));
        }
    }
    if let Some(p) = prev {
        for r in &p.rules {
            if next.rule(&r.name).is_none() && r.state != ForwardState::Stopped {
                let mut gone = r.clone();
                gone.state = ForwardState::Stopped;
                out.push(Event::Rule(gone));
            }
        }
    }
    out
}

impl Event {
    /// The line shown on the terminal and written to User.log.
    pub fn text(&self) -> String {
        match self {
            Event::Phase {
                phase,
                gateway,
                user,
                connects,
            } => match phase {
                Phase::Connecting => format!("connecting to {gateway} …"),
                Phase::Connected => {
                    let who = user
                        .as_deref()
                        .map(|u| format!(" as {u}"))
                        .unwrap_or_default();
                    if *connects > 1 {
                        format!("reconnected to {gateway}{who}")
                    } else {
                        format!("connected to {gateway}{who}")
                    }
                }
                Phase::Reconnecting => format!("connection to {gateway} lost; reconnecting …"),
                // A first connect that failed was never connected.
                Phase::Disconnected if *connects == 0 => {
                    format!("could not connect to {gateway}")
                }
                Phase::Disconnected => format!("disconnected from {gateway}"),
            },
            Event::HostKeyPinned {
                gateway,
                fingerprint,
            } => format!(
                "NOTE: no host key was pinned for {gateway}; pinned {fingerprint} on first use. \
                 Compare it with the fingerprint your administrator gave you."
            ),
            Event::Rule(r) => rule_line(r),
            Event::Error(e) => e.line(),
        }
    }

    /// One JSON object (no newline). Rule events in a warning state also
    /// carry its `code` (`WAR(10102)` …) and the `line` the CLI prints.
    pub fn json(&self) -> String {
        let mut v = match serde_json::to_value(self) {
            Ok(v) => v,
            Err(e) => {
                return format!("{{\"event\":\"error\",\"what\":\"cannot encode event: {e}\"}}");
            }
        };
        if let (Event::Rule(r), Some(obj)) = (self, v.as_object_mut())
            && let Some(code) = r.state.code()
        {
            obj.insert("code".into(), code.label().into());
            obj.insert("line".into(), self.text().into());
        }
        v.to_string()
    }
}

/// `smtp  127.0.0.1:10025 -> mail.corp:25  forwarding`, with the code, cause
/// and fix for warnings.
pub fn rule_line(r: &RuleState) -> String {
    let head = format!("{:<12} {:<15} -> {:<24}", r.name, r.local, r.target);
    match &r.state {
        ForwardState::Forwarding => format!("{head} forwarding"),
        ForwardState::Stopped => format!("{head} stopped"),
        ForwardState::PortBusy { holder } => {
            let by = holder
                .as_deref()
                .map(|h| format!(" (held by {h})"))
                .unwrap_or_default();
            format!(
                "{head} {} port busy: local port {} is used by another program{by}: \
                 close that program; the forward starts by itself once the port is free",
                Code::PortBusy.label(),
                r.local.port(),
            )
        }
        ForwardState::PortDenied { reason } => format!(
            "{head} {} port denied: cannot listen on {} ({reason}): {}",
            Code::PortDenied.label(),
            r.local,
            Code::PortDenied.fix()
        ),
        ForwardState::TargetRefused { reason } => format!(
            "{head} {} target refused: the gateway could not open {} ({reason}): {}",
            Code::TargetRefused.label(),
            r.target,
            Code::TargetRefused.fix()
        ),
    }
}

/// Shared writer of the state; every change is one `send_modify`.
#[derive(Clone, Debug)]
pub(crate) struct Hub {
    tx: Arc<watch::Sender<TunnelState>>,
}

impl Hub {
    /// A hub with the initial state.
    pub(crate) fn new(gateway: String) -> (Hub, watch::Receiver<TunnelState>) {
        let (tx, rx) = watch::channel(TunnelState::new(gateway));
        (Hub { tx: Arc::new(tx) }, rx)
    }

    /// A receiver for the state.
    pub(crate) fn subscribe(&self) -> watch::Receiver<TunnelState> {
        self.tx.subscribe()
    }

    /// Current state (a copy).
    pub(crate) fn snapshot(&self) -> TunnelState {
        self.tx.borrow().clone()
    }

    /// Change the state; watchers wake only if `f` returns true.
    pub(crate) fn update(&self, f: impl FnOnce(&mut TunnelState) -> bool) {
        self.tx.send_if_modified(f);
    }

    /// Change one rule's state (no-op for unknown rules or no change).
    pub(crate) fn set_rule_state(&self, name: &str, state: ForwardState) {
        self.update(|s| match s.rules.iter_mut().find(|r| r.name == name) {
            Some(r) if r.state != state => {
                r.state = state;
                true
            }
            _ => false,
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rule(name: &str, port: u16, state: ForwardState) -> RuleState {
        RuleState {
            name: name.into(),
            local: SocketAddr::from(([127, 0, 0, 1], port)),
            target: "mail.corp:25".into(),
            state,
            bytes_up: 0,
            bytes_down: 0,
            active: 0,
        }
    }

    fn connected(rules: Vec<RuleState>) -> TunnelState {
        TunnelState {
            phase: Phase::Connected,
            user: Some("alice".into()),
            connects: 1,
            rules,
            ..TunnelState::new("gw:10022")
        }
    }

    #[test]
    fn start_prints_phase_and_every_rule() {
        let s = connected(vec![
            rule("smtp", 10025, ForwardState::Forwarding),
            rule("imap", 10143, ForwardState::PortBusy { holder: None }),
        ]);
        let ev = changes(None, &s);
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].text(), "connected to gw:10022 as alice");
        assert!(ev[1].text().ends_with("forwarding"), "{}", ev[1].text());
        assert!(
            ev[2]
                .text()
                .contains("WAR(10102) port busy: local port 10143")
        );
    }

    #[test]
    fn only_real_changes_are_events() {
        let a = connected(vec![rule("smtp", 10025, ForwardState::Forwarding)]);
        let mut b = a.clone();
        b.rules[0].bytes_up = 1000;
        b.rules[0].active = 2;
        assert!(
            changes(Some(&a), &b).is_empty(),
            "bytes alone are no change"
        );

        let mut c = b.clone();
        c.rules[0].state = ForwardState::TargetRefused {
            reason: "connect failed".into(),
        };
        let ev = changes(Some(&b), &c);
        assert_eq!(ev.len(), 1);
        assert!(ev[0].text().contains("WAR(10103) target refused"));

        let mut d = c.clone();
        d.rules.clear();
        let ev = changes(Some(&c), &d);
        assert_eq!(ev.len(), 1);
        assert!(ev[0].text().ends_with("stopped"));
    }

    #[test]
    fn reconnect_repeats_rules_and_error_comes_first() {
        let a = connected(vec![rule("smtp", 10025, ForwardState::Forwarding)]);
        let mut lost = a.clone();
        lost.phase = Phase::Reconnecting;
        lost.last_error = Some(ErrorInfo::from(&ClientError::new(
            Code::Reconnecting,
            "keepalive timeout",
        )));
        let ev = changes(Some(&a), &lost);
        assert!(matches!(ev[0], Event::Error(_)));
        assert!(ev[0].text().starts_with("WAR(10220) keepalive timeout: "));
        assert!(matches!(
            ev[1],
            Event::Phase {
                phase: Phase::Reconnecting,
                ..
            }
        ));
        assert_eq!(ev.len(), 2);

        let mut back = lost.clone();
        back.phase = Phase::Connected;
        back.connects = 2;
        let ev = changes(Some(&lost), &back);
        assert_eq!(ev[0].text(), "reconnected to gw:10022 as alice");
        assert_eq!(ev.len(), 2, "the rule line is repeated: {ev:?}");
    }

    #[test]
    fn json_events_are_one_object_with_stable_fields() {
        let r = rule(
            "smtp",
            10025,
            ForwardState::PortBusy {
                holder: Some("nc (pid 7)".into()),
            },
        );
        let v: serde_json::Value = serde_json::from_str(&Event::Rule(r).json()).unwrap();
        assert_eq!(v["event"], "rule");
        assert_eq!(v["state"], "port_busy");
        assert_eq!(v["holder"], "nc (pid 7)");
        assert_eq!(v["local"], "127.0.0.1:10025");
        assert_eq!(v["code"], "WAR(10102)");
        assert!(v["line"].as_str().unwrap().contains("held by nc (pid 7)"));
        let ok = Event::Rule(rule("smtp", 10025, ForwardState::Forwarding)).json();
        assert!(!ok.contains("\"code\""), "{ok}");
        let e = Event::Error(ErrorInfo::from(&ClientError::new(
            Code::KeyPending,
            "pending",
        )));
        let v: serde_json::Value = serde_json::from_str(&e.json()).unwrap();
        assert_eq!(v["label"], "ERR(10205)");
        assert_eq!(v["code"], "key_pending");
        assert!(!e.json().contains('\n'));
    }

    #[test]
    fn a_connect_that_never_succeeded_is_not_a_disconnect() {
        let mut s = TunnelState::new("gw:10022");
        s.phase = Phase::Connecting;
        let mut failed = s.clone();
        failed.phase = Phase::Disconnected;
        let ev = changes(Some(&s), &failed);
        assert_eq!(ev[0].text(), "could not connect to gw:10022");
        let mut stopped = connected(vec![]);
        stopped.phase = Phase::Disconnected;
        let ev = changes(Some(&connected(vec![])), &stopped);
        assert_eq!(ev[0].text(), "disconnected from gw:10022");
    }

    #[test]
    fn first_use_pin_is_said_once() {
        let mut a = connected(vec![]);
        a.host_key = Some("SHA256:abc".into());
        a.pinned_on_first_use = true;
        let ev = changes(None, &a);
        assert!(
            ev.iter()
                .any(|e| e.text().contains("pinned SHA256:abc on first use"))
        );
        assert!(changes(Some(&a), &a).is_empty());
    }
}
