//! Live revocation: admin changes made while the gateway runs (through the
//! API, or by a separate `pra-registry` CLI process on the same database)
//! end the sessions they no longer allow.
//!
//! Every `revocation_poll` the watcher reads the store's revision, a single
//! row. When it moved past what a session was last checked against, it
//! reads the allowed (fingerprint, user) pairs once and ends every such
//! session whose pair is gone, with the reason (`key_revoked`,
//! `user_disabled`, …) in the audit log. A session registers with the
//! revision read *before* its login was decided, so a change that lands
//! between the login check and the registration is caught on the next poll.

use super::{Shared, blocking, policy};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

/// Run until `stop` turns true (or its sender is gone).
pub async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(shared.cfg.revocation_poll);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
        if shared.sessions.is_empty() {
            continue;
        }
        match check(&shared).await {
            Ok(()) => {
                if failing {
                    tracing::info!("revocation watcher reads the store again");
                }
                failing = false;
            }
            Err(e) => {
                if !failing {
                    tracing::error!(%e, "revocation watcher cannot read the store; live sessions are not re-checked until it can");
                }
                failing = true;
            }
        }
    }
}

async fn check(shared: &Arc<Shared>) -> Result<(), crate::error::RegistryError> {
    let revision = blocking(&shared.store, |s| s.revision()).await?;
    let due = shared.sessions.due(revision);
    if due.is_empty() {
        return Ok(());
    }
    let allowed: HashSet<(String, String)> = blocking(&shared.store, |s| s.allowed_keys())
        .await?
        .into_iter()
        .collect();
    for session in due {
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
        if session.end(
            format!("revoked: {reason}"),
            format!("access revoked ({reason})"),
        ) {
            tracing::info!(user = %session.user, fingerprint = %session.fingerprint, %reason, "live session revoked");
            shared.audit.record(
                "session.revoked",
                Some(&session.user),
                Some(&session.fingerprint),
                Some(session.source),
                serde_json::json!({ "reason": reason, "revision": revision }),
            );
        }
    }
    Ok(())
}
