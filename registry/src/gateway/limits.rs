//! Pre-authentication protection that russh does not give: a global and a
//! per-source cap on connections that have not logged in yet, and growing
//! per-source penalties after failed logins that do not lock out the
//! neighbours behind the same (NAT) address.
//!
//! - A source is an IPv4 address or an IPv6 /64 (IPv4-mapped IPv6 counts as
//!   IPv4), so one attacker cannot dodge the per-source cap by rotating
//!   addresses inside its own prefix.
//! - Over the per-source cap, a new connection is closed at once, unless
//!   one of the source's connections is waiting out a failed-login
//!   penalty: that one is closed instead.
//! - At the global cap, one waiting connection is evicted to make room:
//!   the one that got least far, oldest first. A connection from a source
//!   that logged in recently goes last; among the others, one that has sent
//!   nothing (for 50 ms) goes before one that sent only its version line,
//!   which goes before one that sent its key-exchange messages, which goes
//!   before one that finished the key exchange and is authenticating. A
//!   churn flood (connections dropped or abandoned early, from many
//!   addresses) therefore evicts its own connections, while a real client,
//!   which gets through banner and key exchange in milliseconds, keeps its
//!   slot. Evictions and per-source refusals are counted and reported at
//!   WARN at most every 10 seconds by the gateway.
//! - Failed logins (refused keys, login deadline missed) count per source;
//!   past a few free ones, each login attempt from that source with a key
//!   that has not logged in before waits `base * 2^n`, capped at
//!   [`PenaltyPolicy::max`], before it is decided (accepted and refused
//!   alike, so giving up early teaches nothing). The wait happens after the
//!   client proved it holds the key (russh checked the signature), so a key
//!   that logged in successfully through this gateway recently is exempt:
//!   the bad client's neighbours behind the same address are not slowed,
//!   and a newcomer among them waits at most `max`, which stays well below
//!   the client's per-step timeout ([`pra_proto::SSH_STEP_TIMEOUT`]).
//!   Failures are forgotten after a quiet period.

use super::killable::{KillSwitch, PROGRESS_TALKING};
pub(crate) use crate::rate::source_key;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Penalty schedule for failed logins from one source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PenaltyPolicy {
    /// Failures that cost nothing (typos, a second key tried first).
    pub free_failures: u32,
    /// Delay after the first failure beyond the free ones; doubles per failure.
    pub base: Duration,
    /// Largest delay; below the client's per-step timeout
    /// ([`pra_proto::SSH_STEP_TIMEOUT`]) so a penalized address is slowed,
    /// never locked out.
    pub max: Duration,
    /// A source's failures are forgotten after this long without a new one.
    pub forget_after: Duration,
}

impl Default for PenaltyPolicy {
    fn default() -> Self {
        PenaltyPolicy {
            free_failures: 3,
            base: Duration::from_secs(1),
            max: Duration::from_secs(10),
            forget_after: Duration::from_secs(15 * 60),
        }
    }
}

impl PenaltyPolicy {
    /// Delay for a source with `failures` recent failures (pure).
    pub fn delay(&self, failures: u32) -> Duration {
        let Some(over) = failures.checked_sub(self.free_failures) else {
            return Duration::ZERO;
        };
        if over == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(over - 1).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// Caps on connections that have not authenticated yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmissionPolicy {
    /// All sources together.
    pub max_unauthenticated: usize,
    /// One source.
    pub max_unauthenticated_per_source: usize,
}

/// Why a connection was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its source already has the most unauthenticated connections allowed.
    SourceBusy,
}

/// A connection that has sent nothing yet counts as silent (first to go at
/// the global cap) only after this long.
const SILENCE_GRACE: Duration = Duration::from_millis(50);

/// Most sources with recorded failures kept in memory.
const MAX_TRACKED_SOURCES: usize = 65_536;
/// Most keys (and, separately, sources) remembered as having logged in.
const MAX_KNOWN_KEYS: usize = 65_536;
/// A key that logged in is exempt from source penalties this long (and its
/// source goes last at the global cap).
const KNOWN_KEY_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

struct Waiting {
    source: IpAddr,
    admitted: Instant,
    kill: KillSwitch,
    /// Its source logged in recently.
    known: bool,
}

struct Failures {
    count: u32,
    last: Instant,
}

#[derive(Default)]
struct State {
    waiting: HashMap<u64, Waiting>,
    per_source: HashMap<IpAddr, usize>,
    failures: HashMap<IpAddr, Failures>,
    /// Fingerprints of keys that logged in, and when they last did.
    known_keys: HashMap<String, Instant>,
    /// Sources a login succeeded from, and when it last did.
    known_sources: HashMap<IpAddr, Instant>,
    next_id: u64,
    evicted: u64,
    refused_busy: u64,
}

impl State {
    fn release(&mut self, id: u64) -> bool {
        let Some(w) = self.waiting.remove(&id) else {
            return false;
        };
        if let Some(n) = self.per_source.get_mut(&w.source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_source.remove(&w.source);
            }
        }
        true
    }
}

/// Shared admission and penalty state of one gateway.
pub struct Limits {
    admission: AdmissionPolicy,
    penalty: PenaltyPolicy,
    state: Mutex<State>,
}

impl Limits {
    /// New, empty limits.
    pub fn new(admission: AdmissionPolicy, penalty: PenaltyPolicy) -> Arc<Limits> {
        Arc::new(Limits {
            admission,
            penalty,
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admit a new unauthenticated connection from `ip`, whose socket `kill`
    /// closes. At the global cap the oldest waiting connection is killed.
    /// The ticket frees the slot when dropped or on [`Ticket::authenticated`].
    pub fn admit(self: &Arc<Self>, ip: IpAddr, kill: KillSwitch) -> Result<Ticket, Refusal> {
        let source = source_key(ip);
        let mut st = self.lock();
        if st.per_source.get(&source).copied().unwrap_or(0)
            >= self.admission.max_unauthenticated_per_source
        {
            // A connection of this source that is waiting out a penalty
            // makes room (a bad client behind a shared address cannot hold
            // its neighbours' slots); otherwise the newcomer is refused.
            let held = st
                .waiting
                .iter()
                .filter(|(_, w)| w.source == source && w.kill.is_held())
                .min_by_key(|(id, w)| (w.admitted, **id))
                .map(|(id, _)| *id);
            match held {
                Some(id) => {
                    if let Some(w) = st.waiting.get(&id) {
                        w.kill.trip();
                    }
                    st.release(id);
                    st.evicted += 1;
                    crate::metrics::Metrics::reason(
                        &crate::metrics::get().preauth_dropped,
                        "evicted",
                    );
                }
                None => {
                    st.refused_busy += 1;
                    return Err(Refusal::SourceBusy);
                }
            }
        }
        let now = Instant::now();
        let known = st
            .known_sources
            .get(&source)
            .is_some_and(|t| now.saturating_duration_since(*t) < KNOWN_KEY_FOR);
        while st.waiting.len() >= self.admission.max_unauthenticated.max(1) {
            let oldest = st
                .waiting
                .iter()
                .min_by_key(|(id, w)| {
                    // A brand-new connection has not had the time to talk.
                    let young = now.saturating_duration_since(w.admitted) < SILENCE_GRACE;
                    let progress = match w.kill.progress() {
                        0 if young => PROGRESS_TALKING,
                        p => p,
                    };
                    (w.known, progress, w.admitted, **id)
                })
                .map(|(id, _)| *id);
            let Some(oldest) = oldest else { break };
            if let Some(w) = st.waiting.get(&oldest) {
                w.kill.trip();
            }
            st.release(oldest);
            st.evicted += 1;
            crate::metrics::Metrics::reason(&crate::metrics::get().preauth_dropped, "evicted");
        }
        let id = st.next_id;
        st.next_id += 1;
        st.waiting.insert(
            id,
            Waiting {
                source,
                admitted: now,
                kill,
                known,
            },
        );
        *st.per_source.entry(source).or_insert(0) += 1;
        Ok(Ticket {
            limits: Arc::clone(self),
            id,
            source,
        })
    }

    /// Connections admitted and not yet authenticated or gone.
    pub fn unauthenticated(&self) -> usize {
        self.lock().waiting.len()
    }

    /// Connections evicted at the global cap so far.
    pub fn evicted(&self) -> u64 {
        self.lock().evicted
    }

    /// Connections closed at once because their source was at its cap.
    pub fn refused_busy(&self) -> u64 {
        self.lock().refused_busy
    }

    /// Note a failed login from `ip`: a refused key (`fingerprint`, which
    /// loses its exemption) or a missed login deadline (`None`).
    pub fn record_failure(&self, ip: IpAddr, fingerprint: Option<&str>) {
        let source = source_key(ip);
        let now = Instant::now();
        let forget = self.penalty.forget_after;
        let mut st = self.lock();
        if let Some(fp) = fingerprint {
            st.known_keys.remove(fp);
        }
        if st.failures.len() >= MAX_TRACKED_SOURCES && !st.failures.contains_key(&source) {
            st.failures
                .retain(|_, f| now.saturating_duration_since(f.last) < forget);
            if st.failures.len() >= MAX_TRACKED_SOURCES {
                let oldest = st
                    .failures
                    .iter()
                    .min_by_key(|(_, f)| f.last)
                    .map(|(k, _)| *k);
                if let Some(k) = oldest {
                    st.failures.remove(&k);
                }
            }
        }
        let f = st.failures.entry(source).or_insert(Failures {
            count: 0,
            last: now,
        });
        if now.saturating_duration_since(f.last) >= forget {
            f.count = 0;
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
    }

    /// `fingerprint` logged in from `ip`: from now on the key is exempt
    /// from source penalties (its holder proved the key, and the key was
    /// approved), and connections from the source go last at the global
    /// cap. The source's failures stay: a neighbour's success does not clear
    /// the record of a bad client behind the same address.
    pub fn record_success(&self, ip: IpAddr, fingerprint: &str) {
        let now = Instant::now();
        let mut st = self.lock();
        remember(&mut st.known_keys, fingerprint.to_owned(), now);
        remember(&mut st.known_sources, source_key(ip), now);
    }

    /// How long a login attempt from `ip` with the proven key `fingerprint`
    /// waits before it is decided: zero for a key that logged in recently,
    /// else the source's penalty.
    pub fn penalty(&self, ip: IpAddr, fingerprint: &str) -> Duration {
        let source = source_key(ip);
        let st = self.lock();
        if st
            .known_keys
            .get(fingerprint)
            .is_some_and(|t| t.elapsed() < KNOWN_KEY_FOR)
        {
            return Duration::ZERO;
        }
        match st.failures.get(&source) {
            Some(f) if f.last.elapsed() < self.penalty.forget_after => self.penalty.delay(f.count),
            _ => Duration::ZERO,
        }
    }

    /// Recent failures counted for `ip`'s source.
    pub fn failures(&self, ip: IpAddr) -> u32 {
        let st = self.lock();
        match st.failures.get(&source_key(ip)) {
            Some(f) if f.last.elapsed() < self.penalty.forget_after => f.count,
            _ => 0,
        }
    }
}

/// Note `key` as seen at `now` in a bounded map of recent entries.
fn remember<K: std::hash::Hash + Eq + Clone>(map: &mut HashMap<K, Instant>, key: K, now: Instant) {
    if map.len() >= MAX_KNOWN_KEYS && !map.contains_key(&key) {
        map.retain(|_, t| now.saturating_duration_since(*t) < KNOWN_KEY_FOR);
        if map.len() >= MAX_KNOWN_KEYS {
            let oldest = map.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
    }
    map.insert(key, now);
}

/// An admitted, not yet authenticated connection's slot.
pub struct Ticket {
    limits: Arc<Limits>,
    id: u64,
    source: IpAddr,
}

impl Ticket {
    /// The connection logged in: free its slot.
    pub fn authenticated(self) {}

    /// The source this ticket counts against.
    pub fn source(&self) -> IpAddr {
        self.source
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.limits.lock().release(self.id);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn penalty_schedule() {
        let p = PenaltyPolicy {
            free_failures: 3,
            base: Duration::from_millis(500),
            max: Duration::from_secs(10),
            forget_after: Duration::from_secs(60),
        };
        let table = [
            (0, 0),
            (1, 0),
            (3, 0),
            (4, 500),
            (5, 1000),
            (6, 2000),
            (8, 8000),
            (9, 10_000),
            (40, 10_000),
            (u32::MAX, 10_000),
        ];
        for (failures, ms) in table {
            assert_eq!(p.delay(failures), Duration::from_millis(ms), "{failures}");
        }
    }

    #[test]
    fn sources_are_addresses_or_v6_prefixes() {
        let table = [
            ("192.0.2.7", "192.0.2.7"),
            ("::ffff:192.0.2.7", "192.0.2.7"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"),
            ("2001:db8:1:2:ffff::1", "2001:db8:1:2::"),
            ("2001:db8:1:3::1", "2001:db8:1:3::"),
            ("::1", "::"),
        ];
        for (input, want) in table {
            assert_eq!(source_key(ip(input)), ip(want), "{input}");
        }
    }

    fn limits(global: usize, per: usize) -> Arc<Limits> {
        Limits::new(
            AdmissionPolicy {
                max_unauthenticated: global,
                max_unauthenticated_per_source: per,
            },
            PenaltyPolicy::default(),
        )
    }

    #[test]
    fn per_source_cap_refuses_and_frees() {
        let l = limits(100, 2);
        let a = ip("192.0.2.1");
        let t1 = l.admit(a, KillSwitch::new()).unwrap();
        let _t2 = l.admit(a, KillSwitch::new()).unwrap();
        assert_eq!(
            l.admit(a, KillSwitch::new()).err(),
            Some(Refusal::SourceBusy)
        );
        // another source is not affected
        let _t3 = l.admit(ip("192.0.2.2"), KillSwitch::new()).unwrap();
        assert_eq!(l.unauthenticated(), 3);
        t1.authenticated();
        assert_eq!(l.unauthenticated(), 2);
        let _t4 = l.admit(a, KillSwitch::new()).unwrap();
    }

    #[test]
    fn at_the_source_cap_a_penalized_connection_makes_room() {
        let l = limits(100, 2);
        let a = ip("192.0.2.1");
        let bad = KillSwitch::new();
        let other = KillSwitch::new();
        let _t1 = l.admit(a, bad.clone()).unwrap();
        let _t2 = l.admit(a, other.clone()).unwrap();
        assert_eq!(
            l.admit(a, KillSwitch::new()).err(),
            Some(Refusal::SourceBusy)
        );
        bad.hold(true);
        let _t3 = l.admit(a, KillSwitch::new()).unwrap();
        assert!(bad.is_tripped() && !other.is_tripped());
        assert_eq!(l.unauthenticated(), 2);
        assert_eq!(l.refused_busy(), 1);
    }

    #[test]
    fn global_cap_evicts_the_oldest() {
        let l = limits(3, 10);
        let kills: Vec<KillSwitch> = (0..3).map(|_| KillSwitch::new()).collect();
        let tickets: Vec<Ticket> = kills
            .iter()
            .enumerate()
            .map(|(i, k)| {
                l.admit(IpAddr::V4(Ipv4Addr::new(198, 51, 100, i as u8)), k.clone())
                    .unwrap()
            })
            .collect();
        let newest = KillSwitch::new();
        let _t = l.admit(ip("203.0.113.9"), newest.clone()).unwrap();
        assert!(kills[0].is_tripped());
        assert!(!kills[1].is_tripped() && !kills[2].is_tripped() && !newest.is_tripped());
        assert_eq!(l.unauthenticated(), 3);
        assert_eq!(l.evicted(), 1);
        drop(tickets); // the evicted ticket's drop is a no-op
        assert_eq!(l.unauthenticated(), 1);
    }

    #[test]
    fn at_the_cap_the_least_progressed_and_unknown_go_first() {
        let l = limits(4, 10);
        let known_ip = ip("198.51.100.7");
        l.record_success(known_ip, "SHA256:k");
        let silent_old = KillSwitch::new();
        let talking = KillSwitch::new();
        let authenticating = KillSwitch::new();
        let known_silent = KillSwitch::new();
        let _t: Vec<Ticket> = [
            (ip("192.0.2.1"), &silent_old),
            (ip("192.0.2.2"), &talking),
            (ip("192.0.2.3"), &authenticating),
            (known_ip, &known_silent),
        ]
        .into_iter()
        .map(|(a, k)| l.admit(a, k.clone()).unwrap())
        .collect();
        talking.advance(crate::gateway::killable::PROGRESS_TALKING);
        authenticating.advance(crate::gateway::killable::PROGRESS_AUTHENTICATING);
        std::thread::sleep(SILENCE_GRACE);
        // four newcomers (young, so counted as talking): the silent old one
        // goes, then the talking one, then the oldest newcomers; the
        // authenticating and the known source's connections stay
        let newcomers: Vec<KillSwitch> = (0..4).map(|_| KillSwitch::new()).collect();
        let mut held = Vec::new();
        for (i, k) in newcomers.iter().enumerate() {
            held.push(
                l.admit(IpAddr::V4(Ipv4Addr::new(203, 0, 113, i as u8)), k.clone())
                    .unwrap(),
            );
        }
        assert!(silent_old.is_tripped());
        assert!(talking.is_tripped());
        assert!(!authenticating.is_tripped());
        assert!(!known_silent.is_tripped());
        assert!(newcomers[0].is_tripped() && newcomers[1].is_tripped());
        assert!(!newcomers[2].is_tripped() && !newcomers[3].is_tripped());
        assert_eq!(l.evicted(), 4);
    }

    #[test]
    fn failures_grow_the_penalty_but_not_for_keys_that_logged_in() {
        let l = Limits::new(
            AdmissionPolicy {
                max_unauthenticated: 10,
                max_unauthenticated_per_source: 10,
            },
            PenaltyPolicy {
                free_failures: 1,
                base: Duration::from_secs(1),
                max: Duration::from_secs(8),
                forget_after: Duration::from_secs(600),
            },
        );
        let a = ip("192.0.2.1");
        let (junk, good, newcomer) = ("SHA256:junk", "SHA256:good", "SHA256:new");
        assert_eq!(l.penalty(a, junk), Duration::ZERO);
        l.record_failure(a, Some(junk));
        assert_eq!(l.penalty(a, junk), Duration::ZERO);
        l.record_failure(a, None);
        assert_eq!(l.penalty(a, junk), Duration::from_secs(1));
        l.record_failure(a, Some(junk));
        assert_eq!(l.penalty(a, junk), Duration::from_secs(2));
        // IPv4-mapped spelling is the same source; others are unaffected
        assert_eq!(
            l.penalty(ip("::ffff:192.0.2.1"), junk),
            Duration::from_secs(2)
        );
        assert_eq!(l.penalty(ip("192.0.2.2"), junk), Duration::ZERO);
        // a neighbour whose key logged in is not slowed; its success does
        // not clear the source's record, so a newcomer still waits (capped)
        l.record_success(ip("192.0.2.9"), good);
        assert_eq!(l.penalty(a, good), Duration::ZERO);
        assert_eq!(l.penalty(a, newcomer), Duration::from_secs(2));
        assert_eq!(l.failures(a), 3);
        for _ in 0..40 {
            l.record_failure(a, Some(junk));
        }
        assert_eq!(l.penalty(a, newcomer), Duration::from_secs(8));
        assert_eq!(l.penalty(a, good), Duration::ZERO);
        // a known key that gets refused (revoked) loses its exemption
        l.record_failure(a, Some(good));
        assert_eq!(l.penalty(a, good), Duration::from_secs(8));
    }

    #[test]
    fn the_longest_penalty_stays_below_the_client_timeout() {
        let p = PenaltyPolicy::default();
        assert_eq!(p.delay(u32::MAX), p.max);
        // room for the handshake, the store lookup and the rejection time
        assert!(p.max * 3 / 2 <= pra_proto::SSH_STEP_TIMEOUT, "{p:?}");
    }
}
