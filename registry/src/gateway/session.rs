//! One logged-in session: who, from where, its forwards' byte counts, its
//! rules (cached per store revision), and how to end it from outside.

use super::killable::KillSwitch;
use super::memory::Budget;
use super::{Shared, blocking};
use crate::error::RegistryError;
use crate::model::RuleRecord;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::task::AbortHandle;

/// Byte counts of one forward channel, updated while it runs.
#[derive(Debug)]
pub struct ForwardStats {
    /// Rule the channel was opened under.
    pub rule: String,
    /// `host:port` as the rule names it.
    pub target: String,
    /// Client → target.
    pub up: AtomicU64,
    /// Target → client.
    pub down: AtomicU64,
}

/// Totals per rule over a session's channels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// `host:port`.
    pub target: String,
    /// Channels opened.
    pub channels: u64,
    /// Client → target bytes.
    pub up: u64,
    /// Target → client bytes.
    pub down: u64,
}

#[derive(Default)]
struct Forwards {
    live: HashMap<u64, Arc<ForwardStats>>,
    done: BTreeMap<String, Tally>,
    next: u64,
    tasks: Vec<AbortHandle>,
}

fn fold(done: &mut BTreeMap<String, Tally>, s: &ForwardStats) {
    let t = done.entry(s.rule.clone()).or_insert_with(|| Tally {
        target: s.target.clone(),
        ..Tally::default()
    });
    t.channels += 1;
    t.up += s.up.load(Ordering::Relaxed);
    t.down += s.down.load(Ordering::Relaxed);
}

/// Count a finished forward's bytes in the process metrics.
fn counted(s: &ForwardStats) {
    crate::metrics::get().forwarded(s.up.load(Ordering::Relaxed), s.down.load(Ordering::Relaxed));
}

type RulesCache = Option<(i64, Arc<Vec<RuleRecord>>)>;

/// A logged-in session, shared by its handler, its forward tasks, its
/// connection task and the revocation watcher.
pub struct SessionState {
    /// Gateway-local id.
    pub id: u64,
    /// Account.
    pub user: String,
    /// Key fingerprint.
    pub fingerprint: String,
    /// Peer address.
    pub source: SocketAddr,
    /// When it logged in.
    pub started: Instant,
    /// russh handle (disconnect).
    pub handle: russh::server::Handle,
    /// Cuts the socket.
    pub kill: KillSwitch,
    /// Receive windows of its forwards (see [`super::memory`]).
    pub window_budget: Arc<Budget>,
    revoked: AtomicBool,
    end_reason: Mutex<Option<String>>,
    forwards: Mutex<Forwards>,
    rules: tokio::sync::Mutex<RulesCache>,
    /// Forwards refused by policy.
    pub refused: AtomicU32,
    /// Forwards whose target could not be reached.
    pub failed: AtomicU32,
    /// Id in the registry's live-sessions list (0: not listed yet).
    registry_id: AtomicI64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SessionState {
    /// A new session.
    pub fn new(
        id: u64,
        user: String,
        fingerprint: String,
        source: SocketAddr,
        handle: russh::server::Handle,
        kill: KillSwitch,
        window_budget: Arc<Budget>,
    ) -> Arc<Self> {
        Arc::new(SessionState {
            id,
            user,
            fingerprint,
            source,
            started: Instant::now(),
            handle,
            kill,
            window_budget,
            revoked: AtomicBool::new(false),
            end_reason: Mutex::new(None),
            forwards: Mutex::new(Forwards::default()),
            rules: tokio::sync::Mutex::new(None),
            refused: AtomicU32::new(0),
            failed: AtomicU32::new(0),
            registry_id: AtomicI64::new(0),
        })
    }

    /// The user's rules, cached per session and re-read from the store only
    /// when the store's change feed shows a new revision (so a changed rule
    /// applies to the next channel, and opening a channel costs no query).
    /// While the feed cannot confirm the revision, the store is asked.
    pub async fn rules(&self, shared: &Shared) -> Result<Arc<Vec<RuleRecord>>, RegistryError> {
        let mut cache = self.rules.lock().await;
        let fresh = {
            let feed = shared.feed.borrow();
            feed.confirmed
                .filter(|t| feed.error.is_none() && t.elapsed() < Duration::from_secs(5))
                .map(|_| feed.revision)
        };
        let rev = match fresh {
            Some(rev) => rev,
            None => blocking(&shared.store, |s| s.revision()).await?,
        };
        if let Some((cached, rules)) = cache.as_ref()
            && *cached == rev
        {
            return Ok(Arc::clone(rules));
        }
        let user = self.user.clone();
        let mut rules = blocking(&shared.store, move |s| s.list_rules(Some(&user))).await?;
        rules.retain(|r| r.user == self.user);
        rules.sort_by_key(|r| r.local_port);
        let rules = Arc::new(rules);
        *cache = Some((rev, Arc::clone(&rules)));
        Ok(rules)
    }

    /// Keep a forward task's abort handle, to stop it with the session.
    pub fn forward_task(&self, abort: AbortHandle) {
        let mut f = lock(&self.forwards);
        f.tasks.retain(|t| !t.is_finished());
        f.tasks.push(abort);
    }

    /// Register an accepted forward; returns its stats and a key for
    /// [`SessionState::forward_done`].
    pub fn forward_started(&self, rule: &RuleRecord) -> (u64, Arc<ForwardStats>) {
        let stats = Arc::new(ForwardStats {
            rule: rule.name.clone(),
            target: format!("{}:{}", rule.target_host, rule.target_port),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
        });
        let mut f = lock(&self.forwards);
        let key = f.next;
        f.next += 1;
        f.live.insert(key, Arc::clone(&stats));
        crate::metrics::get().forwards_opened.inc();
        (key, stats)
    }

    /// A forward ended: fold its counts into the session totals.
    pub fn forward_done(&self, key: u64) {
        let mut f = lock(&self.forwards);
        if let Some(stats) = f.live.remove(&key) {
            counted(&stats);
            fold(&mut f.done, &stats);
        }
    }

    /// Stop every running forward (their counts are kept).
    pub fn abort_forwards(&self) {
        let mut f = lock(&self.forwards);
        for task in f.tasks.drain(..) {
            task.abort();
        }
        let live: Vec<_> = f.live.drain().collect();
        for (_, stats) in live {
            counted(&stats);
            fold(&mut f.done, &stats);
        }
    }

    /// Totals per rule so far (running forwards included).
    pub fn tallies(&self) -> BTreeMap<String, Tally> {
        let f = lock(&self.forwards);
        let mut all = f.done.clone();
        for stats in f.live.values() {
            fold(&mut all, stats);
        }
        all
    }

    /// Client → targets and targets → client bytes so far, all forwards.
    pub fn bytes(&self) -> (u64, u64) {
        self.tallies()
            .values()
            .fold((0, 0), |(u, d), t| (u + t.up, d + t.down))
    }

    /// Its id in the registry's live-sessions list, once listed.
    pub fn registry_id(&self) -> Option<i64> {
        Some(self.registry_id.load(Ordering::Relaxed)).filter(|id| *id != 0)
    }

    /// Listed in the registry under `id`.
    pub fn set_registry_id(&self, id: i64) {
        self.registry_id.store(id, Ordering::Relaxed);
    }

    /// Forwards running now.
    pub fn live_forwards(&self) -> usize {
        lock(&self.forwards).live.len()
    }

    /// Has the session been revoked (or is it being shut down)?
    pub fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::SeqCst)
    }

    /// Why the session ended, when the gateway ended it.
    pub fn end_reason(&self) -> Option<String> {
        lock(&self.end_reason).clone()
    }

    /// End the session from outside: no new channels, running forwards
    /// stopped, a DISCONNECT with `message` sent, and the socket cut shortly
    /// after whatever the peer does. Returns false when it was already ending.
    pub fn end(self: &Arc<Self>, reason: String, message: String) -> bool {
        if self.revoked.swap(true, Ordering::SeqCst) {
            return false;
        }
        *lock(&self.end_reason) = Some(reason);
        self.abort_forwards();
        let handle = self.handle.clone();
        let kill = self.kill.clone();
        tokio::spawn(async move {
            let bye = handle.disconnect(russh::Disconnect::ByApplication, message, "en".into());
            let _ = tokio::time::timeout(Duration::from_millis(250), bye).await;
            // Give the DISCONNECT a moment on the wire, then cut.
            tokio::time::sleep(Duration::from_millis(100)).await;
            kill.trip();
        });
        true
    }
}

/// The gateway's logged-in sessions, for the revocation watcher and shutdown.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<HashMap<u64, (Arc<SessionState>, i64)>>,
    next: AtomicU64,
    /// Logins decided but not yet registered, per key fingerprint.
    claims: Arc<Mutex<HashMap<String, usize>>>,
}

/// A session slot of one key, held from the login decision until the
/// session is registered (or the login falls through): concurrent logins
/// of one key cannot overshoot [`Sessions::claim`]'s limit.
pub struct Claim {
    claims: Arc<Mutex<HashMap<String, usize>>>,
    fingerprint: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut claims = lock(&self.claims);
        if let Some(n) = claims.get_mut(&self.fingerprint) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                claims.remove(&self.fingerprint);
            }
        }
    }
}

impl Sessions {
    /// Claim a session slot for `fingerprint` if it holds fewer than `max`
    /// sessions (live or being set up); `None` when it is at its limit (the
    /// newest login is the one refused).
    pub fn claim(&self, fingerprint: &str, max: usize) -> Option<Claim> {
        // Lock order: sessions, then claims (as in `Claim::drop`, which
        // takes only the claims).
        let inner = lock(&self.inner);
        let mut claims = lock(&self.claims);
        let live = inner
            .values()
            .filter(|(s, _)| s.fingerprint == fingerprint && !s.is_revoked())
            .count();
        let pending = claims.get(fingerprint).copied().unwrap_or(0);
        if live + pending >= max {
            return None;
        }
        *claims.entry(fingerprint.to_owned()).or_insert(0) += 1;
        Some(Claim {
            claims: Arc::clone(&self.claims),
            fingerprint: fingerprint.to_owned(),
        })
    }

    /// A fresh session id.
    pub fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Track `state`, whose login was decided at store revision `revision`.
    pub fn register(&self, state: Arc<SessionState>, revision: i64) {
        if lock(&self.inner)
            .insert(state.id, (state, revision))
            .is_none()
        {
            crate::metrics::get().sessions.inc();
        }
    }

    /// Stop tracking a session.
    pub fn unregister(&self, id: u64) {
        if lock(&self.inner).remove(&id).is_some() {
            crate::metrics::get().sessions.dec();
        }
    }

    /// Sessions not yet checked against `revision`.
    pub fn due(&self, revision: i64) -> Vec<Arc<SessionState>> {
        lock(&self.inner)
            .values()
            .filter(|(_, checked)| *checked < revision)
            .map(|(s, _)| Arc::clone(s))
            .collect()
    }

    /// `id` is still allowed as of `revision`.
    pub fn checked(&self, id: u64, revision: i64) {
        if let Some((_, checked)) = lock(&self.inner).get_mut(&id) {
            *checked = (*checked).max(revision);
        }
    }

    /// All sessions.
    pub fn all(&self) -> Vec<Arc<SessionState>> {
        lock(&self.inner)
            .values()
            .map(|(s, _)| Arc::clone(s))
            .collect()
    }

    /// How many.
    pub fn len(&self) -> usize {
        lock(&self.inner).len()
    }

    /// None?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
