//! Keeps the tunnel up: the first connection (any failure is fatal and
//! reported with its code), then watching the session; when it ends
//! (keepalives unanswered, gateway restarted, network gone) reconnecting
//! with exponential backoff and jitter, listeners left bound, rules fetched
//! again and the forwards reconciled. Key refused/pending/revoked, a changed
//! host key and an empty rule set stop the tunnel (`ERR`); everything else
//! is retried.

use super::forward::{Forwards, Shared};
use super::session::{self, Connector, Opened, SshSession};
use super::status::{ErrorInfo, ForwardState, Hub, Phase};
use super::{TunnelConfig, USER_LOG_TARGET};
use crate::error::{ClientError, ClientResult};
use pra_proto::codes::Code;
use pra_proto::rules::RulesDocument;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
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

async fn cancelled(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|c| *c).await;
}

/// The tunnel's main task.
pub(crate) async fn run(
    cfg: TunnelConfig,
    hub: Hub,
    mut cancel: watch::Receiver<bool>,
) -> ClientResult<()> {
    let connector = Connector::new(&cfg);
    let timing = cfg.timing.clone();
    let (session_tx, session_rx) = watch::channel::<Option<Arc<SshSession>>>(None);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut forwards = Forwards::new(Shared {
        hub: hub.clone(),
        session: session_rx,
        stop: stop_rx,
        timing: timing.clone(),
    });

    hub.update(|s| {
        s.phase = Phase::Connecting;
        true
    });
    info!(gateway = %connector.gateway(), user = %cfg.user, key = %pra_proto::fingerprint(cfg.key.public_key()), "connecting");
    let first = tokio::select! {
        r = connector.open_with_rules() => r,
        () = cancelled(&mut cancel) => {
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
                () = cancelled(&mut cancel) => {
                    let _ = stop_tx.send(true);
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
            let _ = stop_tx.send(true);
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

        let mut attempt = 0u32;
        session = loop {
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
                    () = cancelled(&mut cancel) => {
                        let _ = stop_tx.send(true);
                        finish(&hub, &mut forwards, None).await;
                        return Ok(());
                    }
                }
            }
            let r = tokio::select! {
                r = connector.open_with_rules() => r,
                () = cancelled(&mut cancel) => {
                    let _ = stop_tx.send(true);
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
                    let _ = stop_tx.send(true);
                    return Err(fail(&hub, &mut forwards, e).await);
                }
                Err(e) => {
                    attempt = attempt.saturating_add(1);
                    let next = backoff(attempt, timing.backoff_base, timing.backoff_cap, 0.75);
                    info!(attempt, error = %e.line(), "reconnect attempt failed");
                    let still = ClientError::new(
                        Code::Reconnecting,
                        format!(
                            "still reconnecting to {} (attempt {attempt}: {e}); next try in about {} s",
                            connector.gateway(),
                            next.as_secs().max(1)
                        ),
                    );
                    hub.update(|s| {
                        s.last_error = Some(ErrorInfo::from(&still));
                        true
                    });
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

/// Publish a new session: forwards reconciled, phase connected; rules
/// whose target refused the probe are shown as such.
fn connected(
    hub: &Hub,
    forwards: &mut Forwards,
    session_tx: &watch::Sender<Option<Arc<SshSession>>>,
    s: SshSession,
    opened: Opened,
    doc: &RulesDocument,
    refused: &[(String, String)],
) -> Arc<SshSession> {
    info!(peer = %s.peer, host_key = %s.host_key, algorithms = %s.algorithms, rules = doc.rules.len(), "connected");
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
        ] {
            assert!(!is_fatal(c), "{c}");
        }
    }
}
