//! A socket wrapper the gateway can cut from outside.
//!
//! russh's session task owns the socket and offers no way to abort it: a
//! `Handle::disconnect` is queued behind a running key exchange or pending
//! output, and after sending DISCONNECT the task waits for the peer to
//! close. The login deadline, eviction at the connection cap, revocation
//! and shutdown must end a connection no matter what the peer does, so the
//! session runs on a [`Killable`] stream: once its [`KillSwitch`] trips,
//! every read and write fails, the session task ends and drops the socket.
//! Tripping is a [`CancellationToken`] (the registry's one stop idiom), so
//! the session's tasks can wait on it like on any other stop.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Inner {
    tripped: CancellationToken,
    /// How far the connection got (see [`KillSwitch::advance`]).
    progress: AtomicU8,
    /// Bytes the peer sent before it authenticated.
    bytes_read: AtomicU64,
    /// The connection is waiting out a failed-login penalty.
    held: AtomicBool,
    /// The stream's pending read and write, woken when it trips.
    wakers: Mutex<[Option<Waker>; 2]>,
}

/// Cuts a [`Killable`] stream. Cheap to clone.
#[derive(Clone, Default)]
pub struct KillSwitch(Arc<Inner>);

impl std::fmt::Debug for KillSwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("KillSwitch")
            .field(&self.is_tripped())
            .finish()
    }
}

const READ: usize = 0;
const WRITE: usize = 1;

/// Progress: the peer has sent something (its version line).
pub const PROGRESS_TALKING: u8 = 1;
/// Progress: the peer has sent more than a version line (its key exchange
/// messages; [`KEX_BYTES`]).
pub const PROGRESS_KEX: u8 = 2;
/// Progress: key exchange done, the peer is authenticating.
pub const PROGRESS_AUTHENTICATING: u8 = 3;
/// More bytes than a version line (255 at most) can hold.
const KEX_BYTES: u64 = 255;

impl KillSwitch {
    /// A switch that has not tripped.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cut the stream: pending and future reads and writes fail.
    pub fn trip(&self) {
        self.0.tripped.cancel();
        let wakers = {
            let mut slots = self.0.wakers.lock().unwrap_or_else(|p| p.into_inner());
            [slots[READ].take(), slots[WRITE].take()]
        };
        for w in wakers.into_iter().flatten() {
            w.wake();
        }
    }

    /// Wait until it trips.
    pub async fn tripped(&self) {
        self.0.tripped.cancelled().await;
    }

    /// The connection got to `level` (levels only rise; the admission
    /// control in [`super::limits`] defines them). The stream itself
    /// raises it to [`PROGRESS_TALKING`] when the peer first sends bytes.
    pub fn advance(&self, level: u8) {
        if self.0.progress.load(Ordering::Relaxed) < level {
            self.0.progress.fetch_max(level, Ordering::Relaxed);
        }
    }

    /// The connection is (or no longer is) waiting out a failed-login
    /// penalty: at its source's cap, such a connection makes room.
    pub fn hold(&self, held: bool) {
        self.0.held.store(held, Ordering::Relaxed);
    }

    /// Is it waiting out a penalty?
    pub fn is_held(&self) -> bool {
        self.0.held.load(Ordering::Relaxed)
    }

    /// How far the connection got.
    pub fn progress(&self) -> u8 {
        self.0.progress.load(Ordering::Relaxed)
    }

    /// The peer sent `n` bytes now.
    fn heard(&self, n: usize) {
        if self.progress() >= PROGRESS_AUTHENTICATING {
            return;
        }
        let total = self.0.bytes_read.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        self.advance(if total > KEX_BYTES {
            PROGRESS_KEX
        } else {
            PROGRESS_TALKING
        });
    }

    /// Has it tripped?
    pub fn is_tripped(&self) -> bool {
        self.0.tripped.is_cancelled()
    }

    /// Register `waker` for `slot`; true when already tripped.
    fn arm(&self, slot: usize, waker: &Waker) -> bool {
        {
            let mut slots = self.0.wakers.lock().unwrap_or_else(|p| p.into_inner());
            match &mut slots[slot] {
                Some(w) if w.will_wake(waker) => {}
                s => *s = Some(waker.clone()),
            }
        }
        self.is_tripped()
    }
}

fn cut() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection closed by the gateway",
    )
}

/// A stream that fails once its [`KillSwitch`] trips.
pub struct Killable<S> {
    inner: S,
    kill: KillSwitch,
}

impl<S> Killable<S> {
    /// Wrap `inner`; `kill` cuts it.
    pub fn new(inner: S, kill: KillSwitch) -> Self {
        Killable { inner, kill }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Killable<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.kill.arm(READ, cx.waker()) {
            return Poll::Ready(Err(cut()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.kill.heard(buf.filled().len() - before);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Killable<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.kill.arm(WRITE, cx.waker()) {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.kill.arm(WRITE, cx.waker()) {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.kill.is_tripped() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_blocked_read_fails_when_tripped() {
        let (a, mut b) = tokio::io::duplex(64);
        let kill = KillSwitch::new();
        let mut k = Killable::new(a, kill.clone());
        b.write_all(b"hi").await.unwrap();
        let mut buf = [0u8; 2];
        k.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hi");
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 1];
            k.read(&mut buf).await
        });
        tokio::task::yield_now().await;
        kill.trip();
        let err = reader.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
        drop(b);
    }

    #[tokio::test]
    async fn writes_fail_after_trip() {
        let (a, _b) = tokio::io::duplex(64);
        let kill = KillSwitch::new();
        let mut k = Killable::new(a, kill.clone());
        k.write_all(b"ok").await.unwrap();
        kill.trip();
        assert!(kill.is_tripped());
        assert_eq!(
            k.write_all(b"no").await.unwrap_err().kind(),
            io::ErrorKind::ConnectionAborted
        );
    }
}
