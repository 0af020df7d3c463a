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
//!
//! Refused logins go through [`Refusals`]: per source (address, IPv6 /64)
//! and window (a minute by default) the first few are recorded one by one,
//! the rest are counted and written as one `login.refused` event with
//! `"aggregated": true`, the `count` and the count per reason when the
//! window closes. Junk logins therefore add a bounded number of events per
//! source and minute, whatever their rate.

use crate::model::{AuditEvent, BackgroundWrites, Timestamp};
use crate::store::{Store, checks};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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
    pub fn start(store: Arc<Store>, actor: String) -> (Arc<Audit>, JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Write>(QUEUE);
        let writer = tokio::spawn(async move {
            let queued = &crate::metrics::get().audit_queue;
            while let Some(first) = rx.recv().await {
                queued.dec();
                let mut group = BackgroundWrites::default();
                add(&mut group, first);
                while group.events.len() + group.last_seen.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(w) => {
                            queued.dec();
                            add(&mut group, w);
                        }
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
