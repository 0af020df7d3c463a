//! The receive window of one forward channel (gateway → local program),
//! growing with the link ([`pra_proto::window::Growth`]): it starts at
//! [`session::WINDOW_SIZE`] and doubles, up to [`WINDOW_MAX`], each time
//! the local program took a full window within two round trips. A program
//! that stops reading never grows its window. All channels' growth together
//! is capped at [`GROWTH_BUDGET`] per process, so many fast channels cannot
//! make the client hold more than that beyond their initial windows.

use super::session;
use pra_proto::window::Growth;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Largest receive window of one channel.
pub(crate) const WINDOW_MAX: u32 = 32 * 1024 * 1024;
/// Window is granted back in steps of at least this (OpenSSH: 3 packets).
const GRANT_STEP: u64 = 3 * session::MAX_PACKET as u64;
/// Growth beyond the initial windows, over all channels of the process.
pub(crate) const GROWTH_BUDGET: u64 = 256 * 1024 * 1024;

/// Growth taken from [`GROWTH_BUDGET`] by the open channels.
static GROWN: AtomicU64 = AtomicU64::new(0);

/// One channel's receive window.
#[derive(Debug)]
pub(crate) struct DownWindow {
    growth: Growth,
    /// Bytes that arrived from the gateway (cumulative).
    arrived: u64,
    /// Bytes the local program took (cumulative).
    taken: u64,
    /// What the gateway may send up to (cumulative; the initial window
    /// included).
    limit: u64,
    /// This channel's share of [`GROWN`].
    grown: u64,
}

impl DownWindow {
    /// A channel opened with [`session::WINDOW_SIZE`].
    pub(crate) fn new() -> DownWindow {
        DownWindow {
            growth: Growth::new(session::WINDOW_SIZE, WINDOW_MAX),
            arrived: 0,
            taken: 0,
            limit: u64::from(session::WINDOW_SIZE),
            grown: 0,
        }
    }

    /// The current window: the most a gateway that keeps to it has queued
    /// here.
    pub(crate) fn window(&self) -> u32 {
        self.growth.window()
    }

    /// `n` bytes arrived from the gateway at `now`.
    pub(crate) fn arrived(&mut self, n: usize, now: Instant) {
        self.arrived += n as u64;
        self.growth.arrived(self.arrived, now);
    }

    /// The local program took `n` bytes at `now`; returns the window to
    /// grant back now (0: not yet).
    pub(crate) fn written(&mut self, n: usize, now: Instant) -> u32 {
        self.taken += n as u64;
        let before = u64::from(self.growth.window());
        let free = GROWTH_BUDGET.saturating_sub(GROWN.load(Ordering::Relaxed));
        if self.growth.consumed(self.taken, now, before + free) {
            let more = u64::from(self.growth.window()) - before;
            GROWN.fetch_add(more, Ordering::Relaxed);
            self.grown += more;
        }
        let want = (self.taken + u64::from(self.growth.window())).saturating_sub(self.limit);
        if want < GRANT_STEP {
            return 0;
        }
        self.growth.granted(self.limit, now);
        self.limit += want;
        u32::try_from(want).unwrap_or(u32::MAX)
    }
}

impl Drop for DownWindow {
    fn drop(&mut self) {
        GROWN.fetch_sub(self.grown, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::time::Duration;

    const W: usize = session::WINDOW_SIZE as usize;

    #[test]
    fn grants_back_what_was_written_in_steps() {
        let t = Instant::now();
        let mut w = DownWindow::new();
        w.arrived(1000, t);
        assert_eq!(w.written(1000, t), 0);
        w.arrived(GRANT_STEP as usize, t);
        assert_eq!(
            u64::from(w.written(GRANT_STEP as usize, t)),
            GRANT_STEP + 1000
        );
    }

    #[test]
    fn a_fast_reader_over_a_long_link_grows_a_stalled_one_does_not() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let (mut fast, mut stalled) = (DownWindow::new(), DownWindow::new());
        for w in [&mut fast, &mut stalled] {
            w.arrived(W, t0);
            assert_eq!(w.written(0, t0), 0);
        }
        // the fast reader takes it at once: grants go out, the data beyond
        // the first window comes back a round trip (80 ms) later
        assert!(fast.written(W / 2, ms(1)) > 0);
        assert!(fast.written(W / 2, ms(2)) > 0);
        assert_eq!(
            fast.window(),
            session::WINDOW_SIZE,
            "no round trip known yet"
        );
        fast.arrived(W, ms(81));
        assert!(fast.written(W, ms(82)) > 0);
        assert_eq!(fast.window(), 2 * session::WINDOW_SIZE);
        // growth is granted at once: the gateway may now send two windows
        // beyond what was taken
        assert_eq!(fast.limit, fast.taken + 2 * W as u64);
        assert_eq!(stalled.written(0, ms(5000)), 0);
        assert_eq!(stalled.window(), session::WINDOW_SIZE);
        let grown = GROWN.load(Ordering::Relaxed);
        assert!(grown >= W as u64, "{grown}");
        drop(fast);
        assert!(GROWN.load(Ordering::Relaxed) < grown);
    }
}
