//! Connection admission of the API listener: at most
//! [`super::ApiConfig::max_connections_per_source`] open connections per
//! source (an IPv4 address, or an IPv6 /64: see [`crate::rate::source_key`]),
//! so that one address holding or churning idle connections cannot use up
//! the listener's slots and starve everybody else. A connection over its
//! source's cap is closed at once, before anything is read. Trusted reverse
//! proxies are not capped per source (all their clients share their
//! address); the listener's global cap still applies to them.
//!
//! Refusals are logged at WARN at most once per [`LOG_EVERY`], with counts.

use crate::rate::source_key;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Refused connections are summed up in the log this often at most.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct Inner {
    open: HashMap<IpAddr, usize>,
    refused_since_log: u64,
    refused_sources: HashMap<IpAddr, u64>,
    last_log: Option<Instant>,
}

/// Open connections per source.
#[derive(Debug, Clone)]
pub struct Admission {
    cap: usize,
    inner: Arc<Mutex<Inner>>,
}

/// Holds one of a source's connection slots; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    key: IpAddr,
    inner: Arc<Mutex<Inner>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = lock(&self.inner);
        if let Some(n) = inner.open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                inner.open.remove(&self.key);
            }
        }
    }
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // Plain counters: still consistent after a panic elsewhere.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Admission {
    /// At most `cap` connections per source (at least 1).
    pub fn new(cap: usize) -> Admission {
        Admission {
            cap: cap.max(1),
            inner: Arc::new(Mutex::new(Inner::default())),
        }
    }

    /// A slot for a new connection from `ip`, or `None` when its source
    /// already holds `cap` connections (the refusal is counted for the log).
    pub fn admit(&self, ip: IpAddr, now: Instant) -> Option<Slot> {
        let key = source_key(ip);
        let mut inner = lock(&self.inner);
        let open = inner.open.entry(key).or_insert(0);
        if *open < self.cap {
            *open += 1;
            return Some(Slot {
                key,
                inner: Arc::clone(&self.inner),
            });
        }
        inner.refused_since_log += 1;
        if inner.refused_sources.len() < 1000 || inner.refused_sources.contains_key(&key) {
            *inner.refused_sources.entry(key).or_insert(0) += 1;
        }
        let due = inner
            .last_log
            .is_none_or(|t| now.saturating_duration_since(t) >= LOG_EVERY);
        if due {
            let top = inner
                .refused_sources
                .iter()
                .max_by_key(|(_, n)| **n)
                .map(|(ip, n)| format!("{ip} ({n})"))
                .unwrap_or_default();
            tracing::warn!(
                refused = inner.refused_since_log,
                sources = inner.refused_sources.len(),
                top = %top,
                cap = self.cap,
                "api: connections over their source's cap closed at once"
            );
            inner.refused_since_log = 0;
            inner.refused_sources.clear();
            inner.last_log = Some(now);
        }
        None
    }

    /// Connections open from `ip`'s source.
    pub fn open(&self, ip: IpAddr) -> usize {
        lock(&self.inner)
            .open
            .get(&source_key(ip))
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cap_is_per_source_and_slots_come_back() {
        let a = Admission::new(2);
        let now = Instant::now();
        let x: IpAddr = "10.0.0.1".parse().unwrap();
        let y: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = a.admit(x, now).unwrap();
        let _s2 = a.admit(x, now).unwrap();
        assert!(a.admit(x, now).is_none());
        assert!(a.admit(x, now).is_none());
        let _t = a.admit(y, now).unwrap();
        drop(s1);
        assert_eq!(a.open(x), 1);
        assert!(a.admit(x, now).is_some());
        // IPv6: one /64 is one source
        let v6a: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:0:1::ffff".parse().unwrap();
        let v6c: IpAddr = "2001:db8:0:2::1".parse().unwrap();
        let _p = a.admit(v6a, now).unwrap();
        let _q = a.admit(v6b, now).unwrap();
        assert!(a.admit(v6a, now).is_none());
        assert!(a.admit(v6c, now).is_some());
    }

    #[test]
    fn the_map_forgets_sources_without_connections() {
        let a = Admission::new(3);
        let now = Instant::now();
        for i in 0..100u8 {
            let ip = IpAddr::from([10, 0, 1, i]);
            drop(a.admit(ip, now).unwrap());
        }
        assert!(lock(&a.inner).open.is_empty());
    }
}
