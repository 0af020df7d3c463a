//! Per-source rate limiting: the key a source is counted under (used by
//! the gateway's limits too), and a token bucket per source in a bounded map
//! for the API's public endpoints and the admin page's sign-in. The
//! decisions are pure (time is a parameter), the map is behind a mutex.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many requests one source may make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed at once (bucket size).
    pub burst: u32,
    /// One more request is allowed after each interval.
    pub refill_every: Duration,
    /// At most this many sources are tracked; when the map is full and no
    /// idle source can be forgotten, new sources are refused (fail closed).
    pub max_sources: usize,
}

impl RateLimit {
    /// 10 requests per minute per source.
    pub const SUBMIT: RateLimit = RateLimit {
        burst: 10,
        refill_every: Duration::from_secs(6),
        max_sources: 10_000,
    };
    /// 30 status queries per minute per source.
    pub const STATUS: RateLimit = RateLimit {
        burst: 30,
        refill_every: Duration::from_secs(2),
        max_sources: 10_000,
    };
}

/// One source's bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    tokens: u32,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn full(limit: &RateLimit, now: Instant) -> Bucket {
        Bucket {
            tokens: limit.burst,
            last: now,
        }
    }

    fn refill(&mut self, limit: &RateLimit, now: Instant) {
        if limit.refill_every.is_zero() {
            self.tokens = limit.burst;
            self.last = now;
            return;
        }
        let elapsed = now.saturating_duration_since(self.last);
        let n = (elapsed.as_nanos() / limit.refill_every.as_nanos()).min(u128::from(limit.burst));
        if n > 0 {
            self.tokens = (self.tokens + n as u32).min(limit.burst);
            self.last = if self.tokens == limit.burst {
                now
            } else {
                self.last + limit.refill_every * n as u32
            };
        }
    }

    /// Take one token if there is one.
    pub fn take(&mut self, limit: &RateLimit, now: Instant) -> bool {
        self.refill(limit, now);
        if self.tokens > 0 {
            self.tokens -= 1;
            true
        } else {
            false
        }
    }

    /// True when the bucket has refilled completely (the source can be forgotten).
    pub fn is_idle(&self, limit: &RateLimit, now: Instant) -> bool {
        let mut b = *self;
        b.refill(limit, now);
        b.tokens >= limit.burst
    }
}

/// The key per-source limits are counted under (pure): an IPv4 address, or
/// the /64 prefix of an IPv6 address (one host usually owns a whole /64);
/// IPv4-mapped IPv6 is IPv4.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Buckets of all sources.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    /// An empty limiter.
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// May `ip` make one more request at `now`?
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let Ok(mut map) = self.buckets.lock() else {
            return false;
        };
        let key = source_key(ip);
        if let Some(b) = map.get_mut(&key) {
            return b.take(&self.limit, now);
        }
        if map.len() >= self.limit.max_sources {
            let limit = self.limit;
            map.retain(|_, b| !b.is_idle(&limit, now));
            if map.len() >= self.limit.max_sources {
                return false;
            }
        }
        let mut b = Bucket::full(&self.limit, now);
        let ok = b.take(&self.limit, now);
        map.insert(key, b);
        ok
    }

    /// Number of tracked sources.
    pub fn tracked(&self) -> usize {
        self.buckets.lock().map(|m| m.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const L: RateLimit = RateLimit {
        burst: 3,
        refill_every: Duration::from_secs(10),
        max_sources: 2,
    };

    #[test]
    fn bucket_allows_burst_then_refills() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut b = Bucket::full(&L, t0);
        // (offset, allowed?)
        for (at, want) in [
            (0, true),
            (0, true),
            (0, true),
            (0, false),
            (9, false),
            (10, true),
            (10, false),
            (35, true),
            (35, true),
            (35, false),
            (1000, true),
            (1000, true),
            (1000, true),
            (1000, false),
        ] {
            assert_eq!(b.take(&L, t0 + s(at)), want, "at {at}");
        }
    }

    #[test]
    fn limiter_is_per_source_and_bounded() {
        let t0 = Instant::now();
        let r = RateLimiter::new(L);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        for _ in 0..3 {
            assert!(r.allow(a, t0));
        }
        assert!(!r.allow(a, t0));
        assert!(r.allow(b, t0));
        // map full (2 sources), none idle: a new source is refused
        assert!(!r.allow(c, t0));
        assert_eq!(r.tracked(), 2);
        // later both are idle again and can be forgotten
        assert!(r.allow(c, t0 + Duration::from_secs(100)));
        assert!(r.tracked() <= 2);
    }

    #[test]
    fn ipv6_sources_count_per_64() {
        let t0 = Instant::now();
        let r = RateLimiter::new(L);
        for i in 0..3u16 {
            let ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, i + 1));
            assert!(r.allow(ip, t0));
        }
        let other_host = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 9, 9, 9, 9));
        assert!(!r.allow(other_host, t0));
        let mapped: IpAddr = "::ffff:10.0.0.9".parse().unwrap();
        assert_eq!(source_key(mapped), "10.0.0.9".parse::<IpAddr>().unwrap());
    }
}
