//! Gateway audit events, written in order by one background task so that
//! network paths never wait for the database (and a `session.end` is never
//! stored before its `session.start`).
//!
//! Kinds: `login.refused`, `session.start`, `session.end`, `session.revoked`,
//! `forward.refused`, `forward.failed`. `detail` never holds secrets; text
//! that came from the network is sanitized.

use crate::model::AuditEvent;
use crate::store::Store;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Events waiting to be written at most; beyond this they are dropped (and
/// counted) rather than slowing the gateway down.
const QUEUE: usize = 4096;

/// Longest user name (in characters) kept in an audit event.
pub const MAX_USER_CHARS: usize = 64;

/// Sends gateway events to the store.
pub struct Audit {
    tx: Mutex<Option<mpsc::Sender<AuditEvent>>>,
    actor: String,
    dropped: AtomicU64,
}

impl Audit {
    /// Start the writer task for `store`; events carry `actor`.
    pub fn start(store: Arc<dyn Store>, actor: String) -> (Arc<Audit>, JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<AuditEvent>(QUEUE);
        let writer = tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                let store = Arc::clone(&store);
                let kind = event.kind.clone();
                match tokio::task::spawn_blocking(move || store.record(&event)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(%e, %kind, "cannot write an audit event"),
                    Err(e) => tracing::error!(%e, %kind, "audit writer failed"),
                }
            }
        });
        let audit = Arc::new(Audit {
            tx: Mutex::new(Some(tx)),
            actor,
            dropped: AtomicU64::new(0),
        });
        (audit, writer)
    }

    /// Queue one event. Never waits.
    pub fn record(
        &self,
        kind: &str,
        user: Option<&str>,
        fingerprint: Option<&str>,
        source: Option<SocketAddr>,
        detail: serde_json::Value,
    ) {
        let event = AuditEvent {
            kind: kind.to_owned(),
            actor: self.actor.clone(),
            user: user.map(|u| pra_proto::sanitize::sanitize(u, MAX_USER_CHARS)),
            fingerprint: fingerprint.map(str::to_owned),
            source: source.map(|s| s.to_string()),
            detail,
        };
        let guard = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = guard.as_ref() else {
            return;
        };
        if tx.try_send(event).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "audit queue full: events dropped");
            }
        }
    }

    /// Stop accepting events; the writer finishes what is queued and ends.
    pub fn close(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
