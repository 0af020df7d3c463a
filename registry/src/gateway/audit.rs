//! Gateway audit events and "last seen" logins, written in order by one
//! background task so that network paths never wait for the database (and
//! a `session.end` is never stored before its `session.start`). The task
//! writes everything that queued up while its previous write was on disk
//! in one transaction: one flush per group instead of one per event, so a
//! burst of logins does not queue behind the disk (group commit).
//!
//! Kinds: `login.refused`, `session.start`, `session.end`, `session.revoked`,
//! `forward.refused`, `forward.failed`. `detail` never holds secrets; text
//! that came from the network is sanitized.

use crate::model::{AuditEvent, BackgroundWrites, Timestamp};
use crate::store::{Store, checks};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Writes waiting at most; beyond this they are dropped (and counted)
/// rather than slowing the gateway down.
const QUEUE: usize = 4096;

/// Most writes in one transaction.
const MAX_GROUP: usize = 1024;

/// One queued write.
enum Write {
    Event(AuditEvent),
    Seen(String, Timestamp),
}

/// Longest user name (in characters) kept in an audit event.
pub const MAX_USER_CHARS: usize = 64;

/// Sends gateway events to the store.
pub struct Audit {
    tx: Mutex<Option<mpsc::Sender<Write>>>,
    actor: String,
    dropped: AtomicU64,
}

impl Audit {
    /// Start the writer task for `store`; events carry `actor`.
    pub fn start(store: Arc<dyn Store>, actor: String) -> (Arc<Audit>, JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Write>(QUEUE);
        let writer = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut group = BackgroundWrites::default();
                add(&mut group, first);
                while group.events.len() + group.last_seen.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(w) => add(&mut group, w),
                        Err(_) => break,
                    }
                }
                let events = group.events.len();
                let store = Arc::clone(&store);
                match tokio::task::spawn_blocking(move || store.record_background(&group)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(%e, events, "cannot write audit events"),
                    Err(e) => tracing::error!(%e, events, "audit writer failed"),
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
        self.send(Write::Event(event));
    }

    /// Queue "`fingerprint` logged in at `at`" (the key's last seen). Never waits.
    pub fn last_seen(&self, fingerprint: &str, at: Timestamp) {
        self.send(Write::Seen(fingerprint.to_owned(), at));
    }

    fn send(&self, write: Write) {
        let guard = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = guard.as_ref() else {
            return;
        };
        if tx.try_send(write).is_err() {
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

/// Add one write to a group; an invalid event (a bug) is logged and left
/// out so that the rest of the group is kept.
fn add(group: &mut BackgroundWrites, write: Write) {
    match write {
        Write::Event(e) => match checks::audit_event(&e) {
            Ok(()) => group.events.push(e),
            Err(err) => tracing::error!(%err, kind = %e.kind, "audit event left out"),
        },
        Write::Seen(fingerprint, at) => group.last_seen.push((fingerprint, at)),
    }
}
