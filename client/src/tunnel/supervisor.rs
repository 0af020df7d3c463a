//! Keeps the tunnel up: the first connection (each gateway tried once in
//! order; when none can be used the failure is fatal and reported with its
//! code), then watching the session; when it ends (keepalives unanswered,
//! gateway restarted, network gone) reconnecting, listeners left bound,
//! rules fetched again and the forwards reconciled.
//!
//! With several gateways ([`Rotation`]) a reconnect starts at the gateway
//! after the one just lost and goes round robin; an unreachable gateway, a
//! timeout or a failed handshake moves on to the next one at once
//! (`WAR(10221)`), and the exponential backoff with jitter is waited before
//! each full round. Key refused/pending/revoked, a changed host key (one pin
//! for all gateways) and an empty rule set stop the tunnel (`ERR`) on any
//! gateway, without trying the others; everything else is retried.

use super::forward::{Forwards, Shared};
use super::session::{self, Connector, Opened, SshSession};
use super::setup::TunnelConfig;
use super::status::{ErrorInfo, ForwardState, Hub, Phase};
use crate::config::GatewayAddr;
use crate::error::{ClientError, ClientResult};
use crate::logging::USER_LOG_TARGET;
use pra_proto::codes::Code;
use pra_proto::rules::RulesDocument;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Codes that stop the tunnel instead of another attempt.
pub(crate) fn is_fatal(code: Code) -> bool {
    matches!(
        code,
        Code::HostKeyChanged
            | Code::KeyRefused
            | Code::KeyPending
            | Code::KeyRevoked
            | Code::NoRules
            | Code::HomeUnwritable
            | Code::ConfigInvalid
            | Code::ServerNotSet
    )
}

/// Delay before reconnect attempt `attempt` (0-based): `base · 2^attempt`
/// capped at `cap`, scaled by a random factor in [0.5, 1.0) from `unit` in
/// [0, 1) so that many clients do not return in step.
pub(crate) fn backoff(attempt: u32, base: Duration, cap: Duration, unit: f64) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(20));
    let d = exp.min(cap);
    d.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

/// A number in [0, 1) from the OS random generator (0.5 if it fails).
fn random_unit() -> f64 {
    let mut b = [0u8; 8];
    match getrandom::fill(&mut b) {
        Ok(()) => (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

/// Which gateway the next attempt dials and when a full round is over
/// (pure). `n` gateways, `next` the index to dial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rotation {
    n: usize,
    next: usize,
    tried: usize,
}

impl Rotation {
    /// A round over `n` gateways beginning at `start`.
    pub(crate) fn starting_at(n: usize, start: usize) -> Rotation {
        let n = n.max(1);
        Rotation {
            n,
            next: start % n,
            tried: 0,
        }
    }

    /// The gateway to dial now.
    pub(crate) fn next(&self) -> usize {
        self.next
    }

    /// The attempt on the current gateway failed: move on. True when that
    /// ended a full round (every gateway tried once since the last one).
    pub(crate) fn failed(&mut self) -> bool {
        self.next = (self.next + 1) % self.n;
        self.tried += 1;
        if self.tried == self.n {
            self.tried = 0;
            true
        } else {
            false
        }
    }

    /// True at the start of a round (back-off is waited here).
    pub(crate) fn at_round_start(&self) -> bool {
        self.tried == 0
    }
}

/// `WAR(10221)`: gateway `gw` failed with `e`, `next` is tried now.
fn failover_notice(gw: &GatewayAddr, e: &ClientError, next: &GatewayAddr) -> ClientError {
    ClientError::new(
        Code::GatewayFailover,
        format!(
            "the gateway {gw} cannot be used ({}: {e}); trying the gateway {next}",
            e.code().label()
        ),
    )
}

/// A `WAR(10221)` line: written to User.log here (the next gateway may
/// answer before the state's readers look, so the log must not depend on
/// them) and shown in the state for the CLI and the app.
fn announce_failover(hub: &Hub, note: &ClientError) {
    info!(target: USER_LOG_TARGET, "{}", note.line());
    hub.update(|s| {
        s.last_error = Some(ErrorInfo::from(note));
        true
    });
}

/// The first connection: each gateway once, in order. A fatal code stops
/// at once; when no gateway could be used, the last error (naming the
/// others' errors too when there are several).
async fn first_connect(
    connector: &Connector,
    hub: &Hub,
) -> ClientResult<(SshSession, Opened, RulesDocument)> {
    let n = connector.count();
    let mut errors: Vec<ClientError> = Vec::new();
    for i in 0..n {
        match connector.open_with_rules_at(i).await {
            Ok(r) => return Ok(r),
            Err(e) if is_fatal(e.code()) => return Err(e),
            Err(e) => {
                let gw = connector.gateway_at(i);
                info!(gateway = %gw, error = %e.line(), "gateway cannot be used");
                if i + 1 < n {
                    announce_failover(hub, &failover_notice(gw, &e, connector.gateway_at(i + 1)));
                }
                errors.push(e);
            }
        }
    }
    let last = errors
        .pop()
        .unwrap_or_else(|| ClientError::new(Code::ServerNotSet, "no gateway address is set"));
    if errors.is_empty() {
        return Err(last);
    }
    let others: Vec<String> = errors
        .iter()
        .map(|e| format!("{} {e}", e.code().label()))
        .collect();
    let fix = last.fix().to_string();
    Err(ClientError::with_fix(
        last.code(),
        format!(
            "none of the {n} gateways could be used: {last} (before: {})",
            others.join("; ")
        ),
        fix,
    ))
}

/// The tunnel's main task.
pub(crate) async fn run(
    cfg: TunnelConfig,
    hub: Hub,
    cancel: CancellationToken,
) -> ClientResult<()> {
    let connector = Connector::new(&cfg);
    let timing = cfg.timing.clone();
    let (session_tx, session_rx) = watch::channel::<Option<Arc<SshSession>>>(None);
    // Stops the connection tasks: with the tunnel, or alone on a fatal error.
    let stop = cancel.child_token();
    let mut forwards = Forwards::new(Shared {
        hub: hub.clone(),
        session: session_rx,
        stop: stop.clone(),
        timing: timing.clone(),
    });

    hub.update(|s| {
        s.phase = Phase::Connecting;
        true
    });
    info!(gateway = %connector.gateway(), alternates = connector.count() - 1, user = %cfg.user, key = %pra_proto::fingerprint(cfg.key.public_key()), "connecting");
    let first = tokio::select! {
        r = first_connect(&connector, &hub) => r,
        () = cancel.cancelled() => {
            finish(&hub, &mut forwards, None).await;
            return Ok(());
        }
    };
    let mut session = match first {
        Ok((s, opened, doc)) => {
            let refused = probe_targets(&s, &doc, timing.ssh_timeout).await;
            connected(&hub, &mut forwards, &session_tx, s, opened, &doc, &refused)
        }
        Err(e) => return Err(fail(&hub, &mut forwards, e).await),
    };

    let mut port_retry = tokio::time::interval(timing.port_retry);
    let mut counters = tokio::time::interval(Duration::from_secs(2));
    loop {
        // Connected: wait for the session to end.
        let reason = loop {
            tokio::select! {
                r = session.closed() => break r,
                _ = port_retry.tick() => forwards.retry_unbound(),
                _ = counters.tick() => forwards.publish(),
                () = cancel.cancelled() => {
                    finish(&hub, &mut forwards, Some(&session)).await;
                    return Ok(());
                }
            }
        };
        session_tx.send_replace(None);
        // Revoked key or disabled account: one fatal line, no retry.
        if let Some(why) = session::revocation(&reason) {
            let e = session::revoked_error(
                why,
                &cfg.user,
                &pra_proto::fingerprint(cfg.key.public_key()),
            );
            stop.cancel();
            return Err(fail_as_is(&hub, &mut forwards, e).await);
        }
        let lost = ClientError::new(
            Code::Reconnecting,
            format!("connection to {} lost: {reason}", connector.gateway()),
        );
        warn!(%reason, "session lost; reconnecting");
        hub.update(|s| {
            s.phase = Phase::Reconnecting;
            s.last_error = Some(ErrorInfo::from(&lost));
            true
        });

        // Round robin from the gateway after the lost one; the backoff
        // (with jitter) before each full round.
        let mut rotation = Rotation::starting_at(connector.count(), connector.current() + 1);
        let mut attempt = 0u32;
        session = loop {
            if rotation.at_round_start() {
                let delay = backoff(
                    attempt,
                    timing.backoff_base,
                    timing.backoff_cap,
                    random_unit(),
                );
                let until = tokio::time::Instant::now() + delay;
                loop {
                    tokio::select! {
                        () = tokio::time::sleep_until(until) => break,
                        _ = port_retry.tick() => forwards.retry_unbound(),
                        () = cancel.cancelled() => {
                            finish(&hub, &mut forwards, None).await;
                            return Ok(());
                        }
                    }
                }
            }
            let i = rotation.next();
            let r = tokio::select! {
                r = connector.open_with_rules_at(i) => r,
                () = cancel.cancelled() => {
                    finish(&hub, &mut forwards, None).await;
                    return Ok(());
                }
            };
            match r {
                Ok((s, opened, doc)) => {
                    let refused = probe_targets(&s, &doc, timing.ssh_timeout).await;
                    break connected(&hub, &mut forwards, &session_tx, s, opened, &doc, &refused);
                }
                Err(e) if is_fatal(e.code()) => {
                    stop.cancel();
                    return Err(fail(&hub, &mut forwards, e).await);
                }
                Err(e) => {
                    let gw = connector.gateway_at(i);
                    info!(gateway = %gw, attempt, error = %e.line(), "reconnect attempt failed");
                    if rotation.failed() {
                        attempt = attempt.saturating_add(1);
                        let next = backoff(attempt, timing.backoff_base, timing.backoff_cap, 0.75);
                        let still = ClientError::new(
                            Code::Reconnecting,
                            format!(
                                "still reconnecting to {gw} (attempt {attempt}: {e}); next try in about {} s",
                                next.as_secs().max(1)
                            ),
                        );
                        hub.update(|s| {
                            s.last_error = Some(ErrorInfo::from(&still));
                            true
                        });
                    } else {
                        let next = connector.gateway_at(rotation.next());
                        announce_failover(&hub, &failover_notice(gw, &e, next));
                    }
                }
            }
        };
    }
}

/// Open each rule's target once through the new session (in parallel,
/// each within `limit`), so that a target that refuses is reported at
/// connect (`WAR(10103)` with the target's error) rather than "forwarding"
/// until a program tries it. Returns the refused rules with the reason;
/// their listeners stay open.
async fn probe_targets(
    s: &SshSession,
    doc: &RulesDocument,
    limit: Duration,
) -> Vec<(String, String)> {
    let origin = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0));
    let probes = doc.rules.iter().map(|r| async move {
        let name = pra_proto::sanitize::sanitize(&r.name, 64);
        match tokio::time::timeout(
            limit,
            s.open_direct_tcpip(&r.target_host, r.target_port, origin),
        )
        .await
        {
            Ok(Ok(ch)) => {
                let _ = ch.close().await;
                None
            }
            Ok(Err(session::OpenError::Refused(reason))) => {
                warn!(rule = %name, %reason, "target refused at connect");
                Some((name, reason))
            }
            // Session trouble shows as a lost session; a slow target is
            // not a refusal.
            Ok(Err(session::OpenError::Session(_))) | Err(_) => None,
        }
    });
    join_all(probes).await.into_iter().flatten().collect()
}

/// Await every future concurrently (a handful of rules: each poll polls
/// the ones still pending).
async fn join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    use std::task::Poll;
    let mut futs: Vec<std::pin::Pin<Box<F>>> = futs.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *o = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// Publish a new session: forwards reconciled, phase connected (the status
/// line names the gateway it went to); rules whose target refused the
/// probe are shown as such.
fn connected(
    hub: &Hub,
    forwards: &mut Forwards,
    session_tx: &watch::Sender<Option<Arc<SshSession>>>,
    s: SshSession,
    opened: Opened,
    doc: &RulesDocument,
    refused: &[(String, String)],
) -> Arc<SshSession> {
    let gateway = opened.gateway.to_string();
    info!(%gateway, peer = %s.peer, host_key = %s.host_key, algorithms = %s.algorithms, rules = doc.rules.len(), "connected");
    let s = Arc::new(s);
    forwards.reconcile(doc);
    session_tx.send_replace(Some(s.clone()));
    let mut rules = forwards.states();
    for r in rules.iter_mut() {
        if let Some((_, reason)) = refused.iter().find(|(n, _)| *n == r.name)
            && r.state == ForwardState::Forwarding
        {
            r.state = ForwardState::TargetRefused {
                reason: reason.clone(),
            };
        }
    }
    let host_key = s.host_key.clone();
    let user = pra_proto::sanitize::sanitize(&doc.user, 64);
    hub.update(|st| {
        st.phase = Phase::Connected;
        st.gateway = gateway;
        st.connects += 1;
        st.user = Some(user);
        st.host_key = Some(host_key);
        st.pinned_on_first_use |= opened.pinned_now;
        st.rules = rules;
        st.last_error = None;
        true
    });
    s
}

/// A fatal error while connecting: listeners closed, state says why (the
/// line names `ERR(10203)` too).
async fn fail(hub: &Hub, forwards: &mut Forwards, e: ClientError) -> ClientError {
    fail_as_is(hub, forwards, session::in_rules_context(e)).await
}

/// A fatal error: listeners closed, state says why.
async fn fail_as_is(hub: &Hub, forwards: &mut Forwards, e: ClientError) -> ClientError {
    warn!(error = %e.line(), "tunnel stopped");
    forwards.stop_all();
    let rules = forwards.states();
    hub.update(|s| {
        s.last_error = Some(ErrorInfo::from(&e));
        s.phase = Phase::Disconnected;
        s.rules = rules;
        true
    });
    e
}

/// Orderly stop after Ctrl-C / cancel.
async fn finish(hub: &Hub, forwards: &mut Forwards, session: Option<&Arc<SshSession>>) {
    forwards.stop_all();
    if let Some(s) = session {
        s.disconnect().await;
    }
    for (rule, up, down) in forwards.totals() {
        info!(%rule, bytes_up = up, bytes_down = down, "forward totals");
    }
    let rules = forwards.states();
    hub.update(|s| {
        s.phase = Phase::Disconnected;
        s.rules = rules
            .into_iter()
            .map(|mut r| {
                r.state = ForwardState::Stopped;
                r
            })
            .collect();
        true
    });
    info!(target: USER_LOG_TARGET, "disconnected (stopped by the user)");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_jitters_and_caps() {
        let base = Duration::from_millis(200);
        let cap = Duration::from_secs(30);
        for (attempt, unit, want_ms) in [
            (0, 0.0, 100),
            (0, 1.0, 200),
            (1, 0.0, 200),
            (3, 1.0, 1600),
            (3, 0.5, 1200),
            (10, 1.0, 30_000),
            (10, 0.0, 15_000),
            (60, 1.0, 30_000),
        ] {
            assert_eq!(
                backoff(attempt, base, cap, unit),
                Duration::from_millis(want_ms),
                "attempt {attempt} unit {unit}"
            );
        }
        let u = random_unit();
        assert!((0.0..1.0).contains(&u));
    }

    #[test]
    fn revocations_stop_and_other_endings_reconnect() {
        for (closed, want) in [
            (
                "the gateway closed the session: access revoked (key_revoked)",
                Some("key_revoked"),
            ),
            (
                "the gateway closed the session: access revoked (user_disabled)",
                Some("user_disabled"),
            ),
            (
                "the gateway closed the session: access revoked (no_longer_allowed)",
                None,
            ),
            (
                "the gateway closed the session: disconnected by an administrator",
                None,
            ),
            (
                "the gateway stopped answering keepalives (network path lost)",
                None,
            ),
        ] {
            assert_eq!(session::revocation(closed), want, "{closed}");
        }
        let e = session::revoked_error("key_revoked", "alice", "SHA256:abc");
        assert_eq!(
            e.line(),
            "ERR(10206) the administrator revoked the key SHA256:abc; the gateway ended the session: \
             generate a new key with `pra keygen --user alice --force` and have it approved"
        );
        assert_eq!(
            session::revoked_error("user_disabled", "alice", "SHA256:abc").code(),
            Code::KeyRefused
        );
    }

    #[test]
    fn rotation_goes_round_robin_and_counts_rounds() {
        // Three gateways, the session on 1 was lost: 2, 0, 1, then a pause.
        let mut r = Rotation::starting_at(3, 1 + 1);
        let mut seen = Vec::new();
        let mut rounds = Vec::new();
        for _ in 0..6 {
            assert_eq!(r.at_round_start(), seen.len() % 3 == 0);
            seen.push(r.next());
            rounds.push(r.failed());
        }
        assert_eq!(seen, [2, 0, 1, 2, 0, 1]);
        assert_eq!(rounds, [false, false, true, false, false, true]);
        // One gateway: every attempt is a full round (backoff each time).
        let mut one = Rotation::starting_at(1, 1);
        assert_eq!(one.next(), 0);
        assert!(one.failed());
        assert!(one.at_round_start());
        assert_eq!(Rotation::starting_at(0, 5).next(), 0);
    }

    #[test]
    fn fatal_codes() {
        for c in [
            Code::KeyPending,
            Code::KeyRevoked,
            Code::KeyRefused,
            Code::HostKeyChanged,
            Code::NoRules,
        ] {
            assert!(is_fatal(c), "{c}");
        }
        for c in [
            Code::GatewayUnreachable,
            Code::GatewayNotResolved,
            Code::GatewayProtocol,
            Code::RulesNotFetched,
            Code::GatewayFailover,
        ] {
            assert!(!is_fatal(c), "{c}");
        }
    }
}
