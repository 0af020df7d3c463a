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
//! # Growth
//! The per-channel window starts at the configured `window_size` and grows
//! with the link ([`pra_proto::window::Growth`]): doubled, up to
//! `window_max`, each time the target took a full window within two round
//! trips (a long link, a fast target). It grows only into room the budgets
//! leave (at most the channel's share and the budgets' headroom), otherwise
//! it stays; a stalled target never grows its window.
//!
//! # Trimming
//! glibc keeps freed memory in its arenas; [`Trimmer`] calls `malloc_trim`
//! (at most once a second, off the async threads) after sessions ended, so
//! the resident size returns near its idle level.

use pra_proto::window::Growth;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
    /// The window's growth with the link: its window is the most this
    /// channel may have outstanding.
    growth: Growth,
    /// Bytes that arrived from the client (cumulative).
    arrived: u64,
    /// Bytes the target took (cumulative).
    taken: u64,
    /// Granted and not consumed.
    own: u64,
    /// Everything granted so far (the initial window included); the
    /// handler refuses data beyond it.
    granted: Arc<AtomicU64>,
}

impl ChannelWindow {
    /// Account a channel opened with `initial` bytes of window, at most
    /// `max` outstanding, growing to at most `grow_to`; `granted` is shared
    /// with the channel's queue.
    pub fn open(
        session: &Arc<Budget>,
        gateway: &Arc<Budget>,
        initial: u32,
        max: u32,
        grow_to: u32,
        granted: Arc<AtomicU64>,
    ) -> ChannelWindow {
        let budgets = [Arc::clone(session), Arc::clone(gateway)];
        for b in &budgets {
            b.channels.fetch_add(1, Ordering::Relaxed);
            b.add(u64::from(initial));
        }
        ChannelWindow {
            budgets,
            growth: Growth::new(max.max(MIN_WINDOW), grow_to.max(max).max(MIN_WINDOW)),
            arrived: 0,
            taken: 0,
            own: u64::from(initial),
            granted,
        }
    }

    /// The channel's current window (what it grows).
    pub fn window(&self) -> u32 {
        self.growth.window()
    }

    /// `n` bytes from the client reached the pipe at `now`.
    pub fn arrived(&mut self, n: u64, now: Instant) {
        self.arrived += n;
        self.growth.arrived(self.arrived, now);
    }

    /// The target took `n` bytes; returns the window to grant now (0: none
    /// yet), already accounted.
    pub fn consumed(&mut self, n: u64) -> u32 {
        self.consumed_at(n, Instant::now())
    }

    /// [`ChannelWindow::consumed`] at `now`.
    pub fn consumed_at(&mut self, n: u64, now: Instant) -> u32 {
        let n = n.min(self.own);
        self.own -= n;
        self.taken += n;
        for b in &self.budgets {
            b.sub(n);
        }
        let share = self.budgets.iter().map(|b| b.share()).min().unwrap_or(0);
        let headroom = self.budgets.iter().map(|b| b.headroom()).min().unwrap_or(0);
        // Grow only into room the budgets leave.
        self.growth
            .consumed(self.taken, now, share.min(self.own + headroom));
        let max = u64::from(self.growth.window());
        let target = share
            .min(max)
            .min(self.own + headroom)
            .max(u64::from(MIN_WINDOW).min(max));
        let want = target.saturating_sub(self.own);
        // Grant in steps of an eighth of the target (fewer messages), or
        // at once when the channel ran dry.
        if want == 0 || (want < target / 8 && self.own > 0) {
            return 0;
        }
        let want = u32::try_from(want).unwrap_or(u32::MAX);
        let before = self.granted.load(Ordering::Acquire);
        self.growth.granted(before, now);
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
            16 << 20,
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
    fn a_fast_target_over_a_long_link_grows_its_window_a_stalled_one_does_not() {
        let (s, g) = (Budget::new(32 * MIB), Budget::new(1024 * MIB));
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let (mut fast, mut stalled) = (open(&s, &g), open(&s, &g));
        for c in [&mut fast, &mut stalled] {
            assert!(c.consumed_at(0, t0) > 0);
            // the client sends the whole window; it arrives a round trip
            // (80 ms) after the grant
            c.arrived(2 * MIB, ms(80));
        }
        // the fast target takes it at once: the window doubles
        let grant = fast.consumed_at(2 * MIB, ms(81));
        assert_eq!(fast.window(), 4 << 20);
        assert_eq!(u64::from(grant), 4 * MIB);
        // the stalled one takes nothing, however long
        assert_eq!(stalled.consumed_at(0, ms(5000)), 0);
        assert_eq!(stalled.window(), 2 << 20);
        // the fast one goes on to the most it may grow to
        let mut t = 81;
        for _ in 0..10 {
            let w = u64::from(fast.window());
            fast.arrived(w, ms(t + 80));
            t += 81;
            fast.consumed_at(w, ms(t));
        }
        assert_eq!(fast.window(), 16 << 20);
        assert!(s.outstanding() <= 32 * MIB + 2 * u64::from(MIN_WINDOW));
    }

    #[test]
    fn growth_stays_within_the_budgets() {
        // two channels share a 4 MiB session budget: no room to grow
        let (s, g) = (Budget::new(4 * MIB), Budget::new(1024 * MIB));
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let (mut a, _b) = (open(&s, &g), open(&s, &g));
        a.consumed_at(0, t0);
        a.arrived(2 * MIB, ms(80));
        a.consumed_at(2 * MIB, ms(81));
        assert_eq!(a.window(), 2 << 20);
        assert!(s.outstanding() <= 4 * MIB + 2 * u64::from(MIN_WINDOW));
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
