//! Receive windows that follow the link: one growth policy for the
//! gateway (client → target) and the client (target → client).
//!
//! A channel's receive window caps its throughput at one window per round
//! trip. [`Growth`] starts at an initial window and doubles it (up to a
//! maximum) each time the consumer has taken a full window's worth of bytes
//! within two round trips: data then arrived about as fast as the window
//! lets it, so the window, not the link or the consumer, is what limits.
//! A consumer that takes nothing completes no such span, so a stalled
//! consumer never grows its window; a slow one (slower than a window per
//! two round trips) does not either.
//!
//! The round trip is measured at the receiver, with no help from the peer:
//! after a grant raises the sender's limit from `L`, the first byte beyond
//! `L` can only arrive one round trip later (the grant travels out, the
//! data back). The smallest such delay seen is the round trip (plus the
//! receiver's own processing); a sender that was not waiting for the grant
//! only makes a sample larger, and the minimum ignores it.
//!
//! Pure: the caller passes the clock in, so the policy is tested without
//! sockets or sleeps.

use std::time::{Duration, Instant};

/// One channel's receive-window growth.
#[derive(Debug, Clone)]
pub struct Growth {
    window: u32,
    max: u32,
    /// Smallest grant → data delay seen (the round trip).
    rtt: Option<Duration>,
    /// A grant being timed: the sender's limit before it, and when.
    probe: Option<(u64, Instant)>,
    /// The span being timed: consumed total at its start, and when.
    span: Option<(u64, Instant)>,
}

impl Growth {
    /// A window of `initial` bytes that may grow to `max`.
    pub fn new(initial: u32, max: u32) -> Growth {
        Growth {
            window: initial,
            max: max.max(initial),
            rtt: None,
            probe: None,
            span: None,
        }
    }

    /// The window the channel should have now.
    pub fn window(&self) -> u32 {
        self.window
    }

    /// The round trip measured so far.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// A grant was sent at `now`; before it the sender could send up to
    /// the cumulative offset `limit_before`.
    pub fn granted(&mut self, limit_before: u64, now: Instant) {
        if self.probe.is_none() {
            self.probe = Some((limit_before, now));
        }
    }

    /// Data up to the cumulative offset `end` has arrived at `now`.
    pub fn arrived(&mut self, end: u64, now: Instant) {
        if let Some((limit, at)) = self.probe
            && end > limit
        {
            let sample = now.saturating_duration_since(at);
            self.rtt = Some(self.rtt.map_or(sample, |r| r.min(sample)));
            self.probe = None;
        }
    }

    /// The consumer has taken everything up to the cumulative offset
    /// `consumed` at `now`; `room` is the largest window the memory budgets
    /// allow now. Returns true when the window grew.
    pub fn consumed(&mut self, consumed: u64, now: Instant, room: u64) -> bool {
        let Some((start, at)) = self.span else {
            self.span = Some((consumed, now));
            return false;
        };
        if consumed.saturating_sub(start) < u64::from(self.window) {
            return false;
        }
        self.span = Some((consumed, now));
        let Some(rtt) = self.rtt else {
            return false;
        };
        if now.saturating_duration_since(at) > rtt.saturating_mul(2) {
            return false;
        }
        let next = u64::from(self.window)
            .saturating_mul(2)
            .min(u64::from(self.max))
            .min(room);
        if next <= u64::from(self.window) {
            return false;
        }
        self.window = u32::try_from(next).unwrap_or(self.max);
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const MIB: u32 = 1024 * 1024;

    /// A receiver with window `w` over a link of round trip `rtt`, a sender
    /// that always has data and a consumer that takes at most `rate` bytes
    /// per millisecond; run for `ms` milliseconds, granting back in eighths
    /// of the window. Returns the window at the end.
    fn simulate(initial: u32, max: u32, rtt_ms: u64, rate: u64, ms: u64, room: u64) -> Growth {
        let t0 = Instant::now();
        let mut g = Growth::new(initial, max);
        let mut limit = u64::from(initial); // sender's limit (at the receiver)
        let mut grants: Vec<(u64, u64)> = Vec::new(); // (arrives at sender, new limit)
        let mut sender_limit = u64::from(initial);
        let mut in_flight: Vec<(u64, u64)> = Vec::new(); // (arrives, end offset)
        let (mut sent, mut arrived, mut consumed) = (0u64, 0u64, 0u64);
        for now_ms in 0..ms {
            let now = t0 + Duration::from_millis(now_ms);
            // grants reach the sender
            for &(at, l) in &grants {
                if at == now_ms {
                    sender_limit = sender_limit.max(l);
                }
            }
            // the sender sends all it may (the link is fast)
            if sent < sender_limit {
                sent = sender_limit;
                in_flight.push((now_ms + rtt_ms / 2, sent));
            }
            // data reaches the receiver
            for &(at, end) in &in_flight {
                if at == now_ms && end > arrived {
                    arrived = end;
                    g.arrived(arrived, now);
                }
            }
            // the consumer takes what it can
            consumed = (consumed + rate).min(arrived);
            g.consumed(consumed, now, room);
            // grant back up to the (maybe grown) window
            let want = consumed + u64::from(g.window());
            if want >= limit + u64::from(g.window()) / 8 {
                g.granted(limit, now);
                limit = want;
                grants.push((now_ms + rtt_ms / 2, limit));
            }
        }
        g
    }

    #[test]
    fn a_fast_consumer_over_a_long_link_grows_to_the_max() {
        // 80 ms, a consumer that would take 100 MB/s: 2 MiB per round
        // trip limits, so the window grows
        let g = simulate(2 * MIB, 16 * MIB, 80, 100_000, 5_000, u64::MAX);
        assert_eq!(g.window(), 16 * MIB);
        let rtt = g.rtt().unwrap();
        assert!(
            rtt >= Duration::from_millis(80) && rtt <= Duration::from_millis(82),
            "{rtt:?}"
        );
    }

    #[test]
    fn a_stalled_consumer_never_grows() {
        let g = simulate(2 * MIB, 16 * MIB, 80, 0, 5_000, u64::MAX);
        assert_eq!(g.window(), 2 * MIB);
    }

    #[test]
    fn a_slow_consumer_does_not_grow() {
        // 5 MB/s: 2 MiB takes 400 ms, far more than two round trips
        let g = simulate(2 * MIB, 16 * MIB, 80, 5_000, 5_000, u64::MAX);
        assert_eq!(g.window(), 2 * MIB);
    }

    #[test]
    fn a_short_link_does_not_grow() {
        // 2 ms round trip, 100 MB/s: one window per round trip is already
        // 1 GB/s, so the consumer limits
        let g = simulate(2 * MIB, 16 * MIB, 2, 100_000, 2_000, u64::MAX);
        assert_eq!(g.window(), 2 * MIB);
    }

    #[test]
    fn growth_stays_within_the_room_the_budget_leaves() {
        let g = simulate(2 * MIB, 16 * MIB, 80, 100_000, 5_000, u64::from(5 * MIB));
        assert_eq!(g.window(), 5 * MIB);
        let g = simulate(2 * MIB, 16 * MIB, 80, 100_000, 5_000, u64::from(MIB));
        assert_eq!(g.window(), 2 * MIB);
    }

    #[test]
    fn the_round_trip_is_the_smallest_grant_to_data_delay() {
        let t = Instant::now();
        let mut g = Growth::new(100, 1000);
        g.granted(100, t);
        // a second grant while the first is timed does not restart it
        g.granted(150, t + Duration::from_millis(5));
        g.arrived(100, t + Duration::from_millis(30)); // not beyond the limit
        assert_eq!(g.rtt(), None);
        g.arrived(120, t + Duration::from_millis(40));
        assert_eq!(g.rtt(), Some(Duration::from_millis(40)));
        // a later, slower sample does not raise it; a faster one lowers it
        g.granted(200, t + Duration::from_millis(50));
        g.arrived(300, t + Duration::from_millis(150));
        assert_eq!(g.rtt(), Some(Duration::from_millis(40)));
        g.granted(300, t + Duration::from_millis(200));
        g.arrived(301, t + Duration::from_millis(230));
        assert_eq!(g.rtt(), Some(Duration::from_millis(30)));
    }

    #[test]
    fn no_growth_before_a_round_trip_was_measured() {
        let t = Instant::now();
        let mut g = Growth::new(100, 1000);
        assert!(!g.consumed(0, t, u64::MAX));
        assert!(!g.consumed(100, t, u64::MAX));
        assert_eq!(g.window(), 100);
    }
}
