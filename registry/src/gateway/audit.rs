//! Gateway audit events, "last seen" logins and live-session rows,
//! written in order by one background task so that network paths never
//! wait for the database (and a `session.end` is never stored before its
//! `session.start`). The task writes everything that queued up while its
//! previous write was on disk in one transaction: one flush per group
//! instead of one per event, so a burst of logins does not queue behind
//! the disk (group commit).
//!
//! A group the database refuses for a moment (a restart, a fail-over) is
//! tried again a few times, a second apart, before it is given up.
//! Audit events and last-seen times are dropped (and counted) when the
//! queue is full. Live-session rows are not: [`Audit::session_open`] and
//! [`Audit::session_close`] wait for room in the queue (backpressure on
//! the session's own registration task, never on its traffic), then for
//! their group's transaction, and say whether it was written.
//!
//! Kinds: `login.refused`, `session.start`, `session.end`, `session.revoked`,
//! `forward.refused`, `forward.failed`. `detail` never holds secrets; text
//! that came from the network is sanitized.
//!
//! Refused logins go through [`Refusals`]: per source (address, IPv6 /64)
//! and window (a minute by default) the first few are recorded one by one,
//! the rest are counted and written as one `login.refused` event with
//! `"aggregated": true`, the `count` and the count per reason when the
//! window closes. Junk logins therefore add a bounded number of events per
//! source and minute, whatever their rate.

use crate::error::RegistryError;
use crate::model::{AuditEvent, BackgroundWrites, NewSession, SessionProgress, Timestamp};
use crate::store::{Store, checks};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Writes waiting at most; beyond this audit events are dropped (and
/// counted) rather than slowing the gateway down, and live-session rows
/// wait for room.
const QUEUE: usize = 4096;

/// Most writes in one transaction.
const MAX_GROUP: usize = 1024;

/// One queued write.
enum Write {
    Event(AuditEvent),
    Seen(String, Timestamp),
    /// A new live session; learns its id (`None`: not written).
    Open(NewSession, oneshot::Sender<Option<i64>>),
    /// A live session ended; learns whether that was written.
    Close(SessionProgress, Timestamp, String, oneshot::Sender<bool>),
}

/// What [`Audit::try_queue`] did.
enum TryQueue {
    Queued,
    /// No room: the write back.
    Full(Write),
    Closed,
}

/// Who waits for the outcome of a group's live-session rows.
#[derive(Default)]
struct Replies {
    opened: Vec<oneshot::Sender<Option<i64>>>,
    closed: Vec<oneshot::Sender<bool>>,
}

impl Replies {
    /// Tell each waiter the outcome: the ids of the opened sessions (in
    /// order) when the group was written, nothing otherwise.
    fn send(self, written: Option<Vec<i64>>) {
        let ok = written.is_some();
        let mut ids = written.unwrap_or_default().into_iter();
        for tx in self.opened {
            let _ = tx.send(ids.next().filter(|_| ok));
        }
        for tx in self.closed {
            let _ = tx.send(ok);
        }
    }
}

/// A live-session row on its way (see [`Audit::session_open`]): its id
/// once written.
pub type Registration = std::pin::Pin<Box<dyn Future<Output = Option<i64>> + Send>>;

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
    pub fn start(store: Arc<Store>, actor: String) -> (Arc<Audit>, JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Write>(QUEUE);
        let writer = tokio::spawn(async move {
            let queued = &crate::metrics::get().audit_queue;
            while let Some(first) = rx.recv().await {
                queued.dec();
                let mut group = BackgroundWrites::default();
                let mut replies = Replies::default();
                add(&mut group, &mut replies, first);
                while size(&group) < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(w) => {
                            queued.dec();
                            add(&mut group, &mut replies, w);
                        }
                        Err(_) => break,
                    }
                }
                let written = write_group(&store, group).await;
                replies.send(written);
            }
        });
        (Arc::new(Audit::new(tx, actor)), writer)
    }

    fn new(tx: mpsc::Sender<Write>, actor: String) -> Audit {
        Audit {
            tx: Mutex::new(Some(tx)),
            actor,
            dropped: AtomicU64::new(0),
        }
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
        // The same event in the log (stable fields: `kind`, `actor`,
        // `user`, `fingerprint`, `source`, `detail` as JSON text).
        tracing::info!(
            target: "pra_registry::audit",
            kind = %event.kind,
            actor = %event.actor,
            user = event.user.as_deref(),
            fingerprint = event.fingerprint.as_deref(),
            source = event.source.as_deref(),
            detail = %event.detail,
            "audit event"
        );
        self.send(Write::Event(event));
    }

    /// Queue "`fingerprint` logged in at `at`" (the key's last seen). Never waits.
    pub fn last_seen(&self, fingerprint: &str, at: Timestamp) {
        self.send(Write::Seen(fingerprint.to_owned(), at));
    }

    /// Queue `session`'s row for the live-sessions list now (called at the
    /// login, before its `session.start`, so that the row goes with the
    /// first group: no later than a direct write would); the returned
    /// future gives its id once written, or `None` when it could not be
    /// (or the writer stopped). When the queue is full the future waits
    /// for room rather than drop the row.
    pub fn session_open(self: &Arc<Self>, session: NewSession) -> Registration {
        let (tx, rx) = oneshot::channel();
        let waiting = match self.try_queue(Write::Open(session, tx)) {
            TryQueue::Queued => None,
            TryQueue::Full(write) => Some(write),
            TryQueue::Closed => return Box::pin(async { None }),
        };
        let audit = Arc::clone(self);
        Box::pin(async move {
            if let Some(write) = waiting
                && !audit.send_waiting(write).await
            {
                return None;
            }
            rx.await.ok().flatten()
        })
    }

    /// Mark the live session `progress.id` ended at `at` for `reason`, with
    /// its final counts, with the next group; true once written. Waits for
    /// room in the queue rather than drop the row.
    pub async fn session_close(
        &self,
        progress: SessionProgress,
        at: Timestamp,
        reason: String,
    ) -> bool {
        let (tx, rx) = oneshot::channel();
        if !self
            .send_waiting(Write::Close(progress, at, reason, tx))
            .await
        {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// Queue `write` if there is room (counted in the queue metric).
    fn try_queue(&self, write: Write) -> TryQueue {
        let guard = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = guard.as_ref() else {
            return TryQueue::Closed;
        };
        match tx.try_send(write) {
            Ok(()) => {
                crate::metrics::get().audit_queue.inc();
                TryQueue::Queued
            }
            Err(mpsc::error::TrySendError::Full(write)) => TryQueue::Full(write),
            Err(mpsc::error::TrySendError::Closed(_)) => TryQueue::Closed,
        }
    }

    /// Queue `write`, waiting for room; false when the writer is closed.
    async fn send_waiting(&self, write: Write) -> bool {
        let tx = self
            .tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .cloned();
        let Some(tx) = tx else {
            return false;
        };
        // Counted before it can be taken out (the writer decrements).
        let queued = &crate::metrics::get().audit_queue;
        queued.inc();
        if tx.send(write).await.is_ok() {
            true
        } else {
            queued.dec();
            false
        }
    }

    fn send(&self, write: Write) {
        let guard = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = guard.as_ref() else {
            return;
        };
        if tx.try_send(write).is_ok() {
            crate::metrics::get().audit_queue.inc();
        } else {
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

/// Attempts at writing a group whose write failed for a reason other than
/// an invalid write (the database gone for a moment: a restart, a
/// fail-over), [`RETRY_PAUSE`] apart; meanwhile later writes queue.
const ATTEMPTS: u32 = 5;
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Write `group` in one transaction; the new sessions' ids, `None` when it
/// could not be written (logged).
async fn write_group(store: &Arc<Store>, group: BackgroundWrites) -> Option<Vec<i64>> {
    let (events, sessions) = (group.events.len(), group.opened.len() + group.closed.len());
    let group = Arc::new(group);
    for attempt in 1..=ATTEMPTS {
        let (store, g) = (Arc::clone(store), Arc::clone(&group));
        match tokio::task::spawn_blocking(move || store.record_background(&g)).await {
            Ok(Ok(ids)) => return Some(ids),
            Ok(Err(e)) if attempt < ATTEMPTS && !matches!(e, RegistryError::Invalid { .. }) => {
                tracing::warn!(%e, events, sessions, attempt, "cannot write audit events and session rows yet; trying again");
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Ok(Err(e)) => {
                tracing::error!(%e, events, sessions, "cannot write audit events and session rows");
                return None;
            }
            Err(e) => {
                tracing::error!(%e, events, sessions, "audit writer failed");
                return None;
            }
        }
    }
    None
}

/// Writes in a group.
fn size(group: &BackgroundWrites) -> usize {
    group.events.len() + group.last_seen.len() + group.opened.len() + group.closed.len()
}

/// Add one write to a group; an invalid event or session (a bug) is
/// logged and left out so that the rest of the group is kept.
fn add(group: &mut BackgroundWrites, replies: &mut Replies, write: Write) {
    match write {
        Write::Event(e) => match checks::audit_event(&e) {
            Ok(()) => group.events.push(e),
            Err(err) => tracing::error!(%err, kind = %e.kind, "audit event left out"),
        },
        Write::Seen(fingerprint, at) => group.last_seen.push((fingerprint, at)),
        Write::Open(session, tx) => match checks::session(&session) {
            Ok(()) => {
                group.opened.push(session);
                replies.opened.push(tx);
            }
            Err(err) => {
                tracing::error!(%err, "live session row left out");
                let _ = tx.send(None);
            }
        },
        Write::Close(progress, at, reason, tx) => {
            group.closed.push((progress, at, reason));
            replies.closed.push(tx);
        }
    }
}

/// How [`Refusals`] aggregates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefusalAuditPolicy {
    /// Length of a source's window.
    pub window: Duration,
    /// Refusals per source and window recorded one by one.
    pub individual: u32,
}

impl Default for RefusalAuditPolicy {
    fn default() -> Self {
        RefusalAuditPolicy {
            window: Duration::from_secs(60),
            individual: 10,
        }
    }
}

/// Most sources with an open window; refusals from further sources are
/// counted together (written with no source).
const MAX_WINDOWS: usize = 4096;

struct Window {
    started: Instant,
    individual: u32,
    counted: u64,
    reasons: BTreeMap<String, u64>,
}

#[derive(Default)]
struct Windows {
    by_source: HashMap<IpAddr, Window>,
    overflow: Option<Window>,
}

/// Refused logins, recorded one by one up to a limit per source and
/// window, then aggregated (see the module documentation).
pub struct Refusals {
    audit: Arc<Audit>,
    policy: RefusalAuditPolicy,
    windows: Mutex<Windows>,
}

impl Refusals {
    /// Aggregate into `audit` under `policy`.
    pub fn new(audit: Arc<Audit>, policy: RefusalAuditPolicy) -> Refusals {
        Refusals {
            audit,
            policy,
            windows: Mutex::new(Windows::default()),
        }
    }

    /// How often [`Refusals::flush`] should run.
    pub fn tick(&self) -> Duration {
        (self.policy.window / 4).clamp(Duration::from_millis(100), Duration::from_secs(10))
    }

    /// A refused login from `source` with `reason` (`detail.reason`); true
    /// when it was recorded on its own (false: only counted).
    pub fn record(
        &self,
        user: Option<&str>,
        fingerprint: Option<&str>,
        source: SocketAddr,
        detail: serde_json::Value,
    ) -> bool {
        let reason = detail["reason"].as_str().unwrap_or("unknown").to_owned();
        crate::metrics::get().login("refused", &reason);
        let key = super::limits::source_key(source.ip());
        let now = Instant::now();
        let mut expired = None;
        let individual = {
            let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
            let full = w.by_source.len() >= MAX_WINDOWS && !w.by_source.contains_key(&key);
            let slot = if full {
                w.overflow.get_or_insert_with(|| new_window(now))
            } else {
                w.by_source.entry(key).or_insert_with(|| new_window(now))
            };
            if now.saturating_duration_since(slot.started) >= self.policy.window {
                let old = std::mem::replace(slot, new_window(now));
                expired = Some(old);
            }
            if !full && slot.individual < self.policy.individual {
                slot.individual += 1;
                true
            } else {
                slot.counted += 1;
                *slot.reasons.entry(reason).or_insert(0) += 1;
                false
            }
        };
        if let Some(old) = expired {
            self.summary(Some(key), &old);
        }
        if individual {
            self.audit
                .record("login.refused", user, fingerprint, Some(source), detail);
        }
        individual
    }

    /// Write the summaries of windows that closed (all of them when
    /// `all`, at shutdown) and forget idle sources.
    pub fn flush(&self, all: bool) {
        let now = Instant::now();
        let window = self.policy.window;
        let closed = |w: &Window| all || now.saturating_duration_since(w.started) >= window;
        let (done, overflow) = {
            let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
            let keys: Vec<IpAddr> = w
                .by_source
                .iter()
                .filter(|(_, v)| closed(v))
                .map(|(k, _)| *k)
                .collect();
            let done: Vec<(IpAddr, Window)> = keys
                .into_iter()
                .filter_map(|k| w.by_source.remove(&k).map(|v| (k, v)))
                .collect();
            let overflow = match &w.overflow {
                Some(o) if closed(o) => w.overflow.take(),
                _ => None,
            };
            (done, overflow)
        };
        for (source, w) in &done {
            self.summary(Some(*source), w);
        }
        if let Some(o) = overflow {
            self.summary(None, &o);
        }
    }

    fn summary(&self, source: Option<IpAddr>, w: &Window) {
        if w.counted == 0 {
            return;
        }
        let secs = w.started.elapsed().as_secs();
        tracing::warn!(source = ?source, refused = w.counted, secs, "repeated refused logins (aggregated in the audit log)");
        let event = AuditEvent {
            kind: "login.refused".to_owned(),
            actor: self.audit.actor.clone(),
            user: None,
            fingerprint: None,
            source: source.map(|s| s.to_string()),
            detail: serde_json::json!({
                "aggregated": true,
                "count": w.counted,
                "reasons": w.reasons,
                "window_secs": self.policy.window.as_secs(),
                "individually_recorded": w.individual,
            }),
        };
        self.audit.send(Write::Event(event));
    }
}

fn new_window(now: Instant) -> Window {
    Window {
        started: now,
        individual: 0,
        counted: 0,
        reasons: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn session() -> NewSession {
        NewSession {
            gateway: "gw".into(),
            user: "alice".into(),
            fingerprint: "SHA256:x".into(),
            source: "192.0.2.1:1".into(),
            started_at: 1,
        }
    }

    /// A full queue drops audit events but never a live-session row: its
    /// caller waits for room, and learns the id once the row is written.
    #[tokio::test]
    async fn a_full_queue_drops_events_but_session_rows_wait() {
        let (tx, mut rx) = mpsc::channel::<Write>(1);
        let audit = Arc::new(Audit::new(tx, "gateway:gw".into()));
        audit.record("session.start", None, None, None, serde_json::json!({}));
        audit.record("session.start", None, None, None, serde_json::json!({}));
        assert_eq!(audit.dropped(), 1, "the second event found the queue full");

        let a = Arc::clone(&audit);
        let open = tokio::spawn(async move { a.session_open(session()).await });
        let a = Arc::clone(&audit);
        let close = tokio::spawn(async move {
            a.session_close(SessionProgress::default(), 2, "closed".into())
                .await
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !open.is_finished() && !close.is_finished(),
            "waiting for room"
        );
        assert_eq!(audit.dropped(), 1, "nothing more dropped");

        // The writer's side: the event, then both rows (in either order).
        assert!(matches!(rx.recv().await, Some(Write::Event(_))));
        for _ in 0..2 {
            match rx.recv().await {
                Some(Write::Open(s, reply)) => {
                    assert_eq!(s, session());
                    reply.send(Some(7)).unwrap();
                }
                Some(Write::Close(p, at, reason, reply)) => {
                    assert_eq!((p.id, at, reason.as_str()), (0, 2, "closed"));
                    reply.send(true).unwrap();
                }
                _ => panic!("a session row expected"),
            }
        }
        assert_eq!(open.await.unwrap(), Some(7));
        assert!(close.await.unwrap());

        // A group that could not be written: the callers hear it.
        let a = Arc::clone(&audit);
        let open = tokio::spawn(async move { a.session_open(session()).await });
        let Some(Write::Open(_, reply)) = rx.recv().await else {
            panic!("a session row expected");
        };
        let mut replies = Replies::default();
        replies.opened.push(reply);
        replies.send(None);
        assert_eq!(open.await.unwrap(), None);

        // A closed writer: nothing waits forever.
        audit.close();
        assert_eq!(audit.session_open(session()).await, None);
        assert!(
            !audit
                .session_close(SessionProgress::default(), 3, "x".into())
                .await
        );
    }
}
