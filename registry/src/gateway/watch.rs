//! Live revocation: admin changes made while the gateway runs (through the
//! API, by a separate `pra-registry` CLI process, or through another gateway
//! on the same PostgreSQL registry) end the sessions they no longer allow.
//!
//! The watcher follows the store's change feed ([`Store::subscribe`]:
//! `LISTEN/NOTIFY` on PostgreSQL with a 2 s re-check, a 250 ms poll on
//! SQLite), and also wakes every `revocation_poll`. When the revision moved
//! past what a session was last checked against, it reads the allowed
//! (fingerprint, user) pairs and this gateway's disconnect requests once,
//! and ends every session whose pair is gone (with the reason:
//! `key_revoked`, `user_disabled`, …) or whose disconnect an admin asked
//! for (`disconnect_requested`). A session registers with the revision read
//! *before* its login was decided, so a change that lands between the login
//! check and the registration is caught by the next check.
//!
//! Registry outage policy: when the registry cannot be read, new logins are
//! refused (the handler cannot check them) and live sessions are kept, but
//! only while the last confirmation (a successful check, or the feed
//! hearing from the database) is younger than `recheck_window` (60 s by
//! default): past that the gateway could have missed a revocation, so it
//! ends every session (`registry_unreachable`). Once the database answers
//! again, everything goes on by itself (the pool reconnects).
//!
//! [`heartbeat`] writes every live session's byte counts to the registry
//! every `progress_interval`, which also tells the live-sessions list that
//! this gateway still serves them.
//!
//! [`Store::subscribe`]: crate::store::Store::subscribe

use super::session::SessionState;
use super::{Shared, blocking, policy};
use crate::error::RegistryError;
use crate::model::{SessionProgress, Timestamp, now};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// The feed's revision is trusted when it heard from the database this
/// recently (it re-checks every 2 s at most; SQLite every 250 ms).
const FEED_FRESH: Duration = Duration::from_secs(10);

/// Run until `stop` is cancelled.
pub async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let mut feed = shared.feed.clone();
    let mut feed_open = true;
    let mut tick = tokio::time::interval(shared.cfg.revocation_poll);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_ok = Instant::now();
    let mut failing: Option<String> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            r = feed.changed(), if feed_open => {
                feed_open = r.is_ok();
            }
            () = stop.cancelled() => return,
        }
        let change = feed.borrow_and_update().clone();
        let fresh =
            change.error.is_none() && change.confirmed.is_some_and(|t| t.elapsed() < FEED_FRESH);
        if let Some(t) = change.confirmed.filter(|_| fresh)
            && t > last_ok
        {
            last_ok = t;
        }
        if shared.sessions.is_empty() {
            // Nothing to keep or end (logins check the registry themselves).
            last_ok = Instant::now();
            continue;
        }
        // The feed's revision, or the store's when the feed is not fresh.
        let revision = if fresh {
            Ok(change.revision)
        } else {
            blocking(&shared.store, |s| s.revision()).await
        };
        let checked = match revision {
            Ok(rev) => check(&shared, rev).await,
            Err(e) => Err(e),
        };
        match checked {
            Ok(()) => {
                last_ok = Instant::now();
                if failing.take().is_some() {
                    tracing::info!("revocation watcher reads the registry again");
                }
            }
            Err(e) => {
                let e = e.to_string();
                if failing.is_none() {
                    tracing::error!(error = %e, window_secs = shared.cfg.recheck_window.as_secs(), "revocation watcher cannot read the registry; live sessions are kept for at most the re-check window");
                }
                failing = Some(e);
            }
        }
        let unconfirmed = last_ok.elapsed();
        if unconfirmed >= shared.cfg.recheck_window {
            let why = failing
                .clone()
                .or(change.error.clone())
                .unwrap_or_else(|| "no confirmation".into());
            end_all_unconfirmed(&shared, unconfirmed.as_secs(), &why);
        }
    }
}

/// The outage policy's last step: end every session.
fn end_all_unconfirmed(shared: &Shared, secs: u64, why: &str) {
    let mut ended = 0;
    for session in shared.sessions.all() {
        if session.end(
            "registry_unreachable".into(),
            "the gateway cannot reach the registry to re-check your access; reconnect later".into(),
        ) {
            ended += 1;
            shared.audit.record(
                "session.revoked",
                Some(&session.user),
                Some(&session.fingerprint),
                Some(session.source),
                serde_json::json!({ "reason": "registry_unreachable", "unconfirmed_secs": secs }),
            );
        }
    }
    if ended > 0 {
        tracing::error!(sessions = ended, unconfirmed_secs = secs, error = %why, "the registry could not be read for the whole re-check window; live sessions ended (new logins are refused until it answers)");
    }
}

async fn check(shared: &Arc<Shared>, revision: i64) -> Result<(), RegistryError> {
    let due = shared.sessions.due(revision);
    if due.is_empty() {
        return Ok(());
    }
    let seen = Instant::now();
    let allowed: HashSet<(String, String)> = blocking(&shared.store, |s| s.allowed_keys())
        .await?
        .into_iter()
        .collect();
    let gateway = shared.gateway_id.clone();
    let asked: HashSet<i64> = blocking(&shared.store, move |s| s.disconnect_requests(&gateway))
        .await?
        .into_iter()
        .collect();
    for session in due {
        if session.registry_id().is_some_and(|id| asked.contains(&id)) {
            end(shared, &session, "disconnect_requested", revision, seen);
            continue;
        }
        if allowed.contains(&(session.fingerprint.clone(), session.user.clone())) {
            shared.sessions.checked(session.id, revision);
            continue;
        }
        // Say why: the same decision a new login would get now.
        let (user, fp) = (session.user.clone(), session.fingerprint.clone());
        let reason = match blocking(&shared.store, move |s| s.login_facts(&user, &fp)).await {
            Ok(facts) => match policy::login(&session.user, &facts) {
                Err(r) => r.as_str().to_owned(),
                // Allowed again by the time we asked (approved in between).
                Ok(()) => {
                    shared.sessions.checked(session.id, revision);
                    continue;
                }
            },
            Err(_) => "no_longer_allowed".to_owned(),
        };
        end(shared, &session, &reason, revision, seen);
    }
    Ok(())
}

fn end(shared: &Shared, session: &Arc<SessionState>, reason: &str, revision: i64, seen: Instant) {
    let message = if reason == "disconnect_requested" {
        "disconnected by an administrator".to_owned()
    } else {
        format!("access revoked ({reason})")
    };
    if session.end(format!("revoked: {reason}"), message) {
        tracing::info!(user = %session.user, fingerprint = %session.fingerprint, %reason, "live session revoked");
        let m = crate::metrics::get();
        crate::metrics::Metrics::reason(&m.revocations, reason);
        crate::metrics::Metrics::observe(&m.revocation_seconds, seen.elapsed());
        shared.audit.record(
            "session.revoked",
            Some(&session.user),
            Some(&session.fingerprint),
            Some(session.source),
            serde_json::json!({
                "reason": reason,
                "revision": revision,
                "session": session.registry_id(),
            }),
        );
    }
}

/// A session's end that the registry did not take yet.
#[derive(Clone, Debug)]
pub struct PendingEnd {
    /// Final counts.
    pub progress: SessionProgress,
    /// When it ended.
    pub at: Timestamp,
    /// Why.
    pub reason: String,
}

/// Write the session ends the registry missed; keep those it still misses.
async fn retry_ends(shared: &Arc<Shared>) {
    let ends: Vec<PendingEnd> = std::mem::take(
        &mut *shared
            .pending_ends
            .lock()
            .unwrap_or_else(|p| p.into_inner()),
    );
    if ends.is_empty() {
        return;
    }
    let left = blocking(&shared.store, move |s| {
        let mut left = Vec::new();
        for (i, e) in ends.iter().enumerate() {
            if s.session_close(e.progress, e.at, &e.reason).is_err() {
                left.extend(ends[i..].iter().cloned());
                break;
            }
        }
        Ok(left)
    })
    .await
    .unwrap_or_default();
    let n = left.len();
    shared
        .pending_ends
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(left);
    if n == 0 {
        tracing::info!("session ends the registry missed are written");
    }
}

/// Every `progress_interval`: write the live sessions' byte counts (one
/// store call for all of them), which is also their heartbeat in the
/// live-sessions list, and retry the session ends the registry missed.
/// Runs until `stop` is cancelled (then retries those ends once more).
pub async fn heartbeat(shared: Arc<Shared>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(shared.cfg.progress_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick.tick().await;
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => {
                retry_ends(&shared).await;
                return;
            }
        }
        retry_ends(&shared).await;
        let updates: Vec<SessionProgress> = shared
            .sessions
            .all()
            .iter()
            .filter_map(|s| {
                let (up, down) = s.bytes();
                s.registry_id().map(|id| SessionProgress {
                    id,
                    bytes_up: up,
                    bytes_down: down,
                })
            })
            .collect();
        if updates.is_empty() {
            continue;
        }
        match blocking(&shared.store, move |s| s.session_progress(now(), &updates)).await {
            Ok(()) => failing = false,
            Err(e) => {
                if !failing {
                    tracing::warn!(%e, "cannot write the live sessions' byte counts to the registry");
                }
                failing = true;
            }
        }
    }
}
