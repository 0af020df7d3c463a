//! Memory bounds: receive-window budgets per session and per gateway, and
//! handing freed heap back to the system after sessions end.
//!
//! # Window budgets
//! What a client may send on a forward before the target took it (the
//! channel's window, which the gateway grants back only once the target
//! took the bytes, see [`super::forward`]) is memory the gateway may have
//! to hold. Every forward channel opens with a small window
//! ([`initial_window`]); after that it is granted up to its *share*:
//! the session budget divided by the session's open forwards, and the
//! gateway budget divided by all open forwards, at most the configured
//! per-channel window. A grant never takes the session's or the gateway's
//! outstanding windows over their budget, except that every channel may
//! always have [`MIN_WINDOW`] outstanding (so it never stalls for good).
//! A stalled target therefore costs at most its share, and the windows of
//! all channels of a session together stay within the session budget plus
//! `channels × MIN_WINDOW`. A single forward gets the full per-channel
//! window, so its throughput is unchanged.
//!
//! # Trimming
//! glibc keeps freed memory in its arenas; [`Trimmer`] calls `malloc_trim`
//! (at most once a second, off the async threads) after sessions ended, so
//! the resident size returns near its idle level.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Smallest window a channel may always have outstanding: two packets.
pub const MIN_WINDOW: u32 = 64 * 1024;

/// The window a forward channel opens with (before its first grant).
pub fn initial_window(window_size: u32) -> u32 {
    window_size.min(MIN_WINDOW)
}

/// One budget: outstanding window bytes over a set of channels.
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    outstanding: AtomicU64,
    channels: AtomicUsize,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            outstanding: AtomicU64::new(0),
            channels: AtomicUsize::new(0),
        })
    }

    /// Window bytes granted and not yet consumed, over all its channels.
    pub fn outstanding(&self) -> u64 {
        self.outstanding.load(Ordering::Relaxed)
    }

    /// Open channels.
    pub fn channels(&self) -> usize {
        self.channels.load(Ordering::Relaxed)
    }

    fn share(&self) -> u64 {
        self.limit / (self.channels().max(1) as u64)
    }

    fn headroom(&self) -> u64 {
        self.limit.saturating_sub(self.outstanding())
    }

    fn add(&self, n: u64) {
        self.outstanding.fetch_add(n, Ordering::Relaxed);
    }

    fn sub(&self, n: u64) {
        let _ = self
            .outstanding
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| {
                Some(o.saturating_sub(n))
            });
    }
}

/// One forward channel's window account against its session's and the
/// gateway's budgets. Created when the channel is accepted (with its
/// initial window outstanding); dropping it gives its window back.
#[derive(Debug)]
pub struct ChannelWindow {
    budgets: [Arc<Budget>; 2],
    /// Most this channel may have outstanding.
    max: u64,
    /// Granted and not consumed.
    own: u64,
    /// Everything granted so far (the initial window included); the
    /// handler refuses data beyond it.
    granted: Arc<AtomicU64>,
}

impl ChannelWindow {
    /// Account a channel opened with `initial` bytes of window, at most
    /// `max` outstanding; `granted` is shared with the channel's queue.
    pub fn open(
        session: &Arc<Budget>,
        gateway: &Arc<Budget>,
        initial: u32,
        max: u32,
        granted: Arc<AtomicU64>,
    ) -> ChannelWindow {
        let budgets = [Arc::clone(session), Arc::clone(gateway)];
        for b in &budgets {
            b.channels.fetch_add(1, Ordering::Relaxed);
            b.add(u64::from(initial));
        }
        ChannelWindow {
            budgets,
            max: u64::from(max.max(MIN_WINDOW)),
            own: u64::from(initial),
            granted,
        }
    }

    /// The target took `n` bytes; returns the window to grant now (0: none
    /// yet), already accounted.
    pub fn consumed(&mut self, n: u64) -> u32 {
        let n = n.min(self.own);
        self.own -= n;
        for b in &self.budgets {
            b.sub(n);
        }
        let share = self
            .budgets
            .iter()
            .map(|b| b.share())
            .min()
            .unwrap_or(0)
            .min(self.max);
        let headroom = self.budgets.iter().map(|b| b.headroom()).min().unwrap_or(0);
        let target = share
            .min(self.own + headroom)
            .max(u64::from(MIN_WINDOW).min(self.max));
        let want = target.saturating_sub(self.own);
        // Grant in steps of an eighth of the target (fewer messages), or
        // at once when the channel ran dry.
        if want == 0 || (want < target / 8 && self.own > 0) {
            return 0;
        }
        let want = u32::try_from(want).unwrap_or(u32::MAX);
        self.own += u64::from(want);
        for b in &self.budgets {
            b.add(u64::from(want));
        }
        self.granted.fetch_add(u64::from(want), Ordering::Release);
        want
    }
}

impl Drop for ChannelWindow {
    fn drop(&mut self) {
        for b in &self.budgets {
            b.sub(self.own);
            b.channels.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Gives freed heap back to the system after sessions end (glibc only).
#[derive(Default)]
pub struct Trimmer {
    wanted: tokio::sync::Notify,
}

impl Trimmer {
    /// A session ended: trim soon.
    pub fn request(&self) {
        self.wanted.notify_one();
    }

    /// Trim after requests, at most once per `every`, until `stop` is cancelled.
    pub async fn run(&self, every: Duration, stop: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                () = self.wanted.notified() => {}
                () = stop.cancelled() => return,
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = stop.cancelled() => return,
            }
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    }
}

/// Return free heap memory to the system.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas and releases free
    // pages; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn open(s: &Arc<Budget>, g: &Arc<Budget>) -> ChannelWindow {
        ChannelWindow::open(
            s,
            g,
            initial_window(2 << 20),
            2 << 20,
            Arc::new(AtomicU64::new(u64::from(initial_window(2 << 20)))),
        )
    }

    #[test]
    fn one_channel_gets_the_full_window() {
        let (s, g) = (Budget::new(32 * MIB), Budget::new(1024 * MIB));
        let mut c = open(&s, &g);
        // the first consumption (even of nothing) grants up to 2 MiB
        let first = c.consumed(0);
        assert_eq!(u64::from(first) + u64::from(MIN_WINDOW), 2 * MIB);
        assert_eq!(s.outstanding(), 2 * MIB);
        assert_eq!(c.granted.load(Ordering::Relaxed), 2 * MIB);
        // consuming a little does not grant (steps of 1/8), a lot does
        assert_eq!(c.consumed(1000), 0);
        assert!(c.consumed(512 * 1024) > 0);
        assert_eq!(s.outstanding(), 2 * MIB);
        drop(c);
        assert_eq!((s.outstanding(), s.channels()), (0, 0));
        assert_eq!((g.outstanding(), g.channels()), (0, 0));
    }

    #[test]
    fn stalled_channels_stay_within_the_session_budget() {
        let (s, g) = (Budget::new(32 * MIB), Budget::new(1024 * MIB));
        // channels opened one by one, each granted what it can get and
        // then stalled (its target never reads)
        let mut chans = Vec::new();
        for _ in 0..128 {
            let mut c = open(&s, &g);
            c.consumed(0);
            chans.push(c);
        }
        let bound = 32 * MIB + 128 * u64::from(MIN_WINDOW);
        assert!(s.outstanding() <= bound, "{} > {bound}", s.outstanding());
        // a stalled channel that finally drains gets no more than its share
        let c = &mut chans[0];
        let own = c.own;
        c.consumed(own);
        assert!(
            c.own <= (32 * MIB / 128).max(u64::from(MIN_WINDOW)),
            "{}",
            c.own
        );
        drop(chans);
        assert_eq!(s.outstanding(), 0);
    }

    #[test]
    fn the_gateway_budget_binds_across_sessions() {
        let g = Budget::new(8 * MIB);
        let sessions: Vec<Arc<Budget>> = (0..4).map(|_| Budget::new(32 * MIB)).collect();
        let mut chans = Vec::new();
        for s in &sessions {
            for _ in 0..4 {
                let mut c = open(s, &g);
                c.consumed(0);
                chans.push(c);
            }
        }
        assert!(g.outstanding() <= 8 * MIB + 16 * u64::from(MIN_WINDOW));
    }
}
