//! A socket wrapper the gateway can cut from outside.
//!
//! russh's session task owns the socket and offers no way to abort it: a
//! `Handle::disconnect` is queued behind a running key exchange or pending
//! output, and after sending DISCONNECT the task waits for the peer to
//! close. The login deadline, eviction at the connection cap, revocation
//! and shutdown must end a connection no matter what the peer does, so the
//! session runs on a [`Killable`] stream: once its [`KillSwitch`] trips,
//! every read and write fails, the session task ends and drops the socket.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[derive(Default)]
struct Inner {
    tripped: AtomicBool,
    wakers: Mutex<[Option<Waker>; 2]>,
    notify: tokio::sync::Notify,
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

impl KillSwitch {
    /// A switch that has not tripped.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cut the stream: pending and future reads and writes fail.
    pub fn trip(&self) {
        self.0.tripped.store(true, Ordering::SeqCst);
        let wakers = {
            let mut slots = self.0.wakers.lock().unwrap_or_else(|p| p.into_inner());
            [slots[READ].take(), slots[WRITE].take()]
        };
        for w in wakers.into_iter().flatten() {
            w.wake();
        }
        self.0.notify.notify_waiters();
    }

    /// Wait until it trips.
    pub async fn tripped(&self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_tripped() {
                return;
            }
            notified.await;
        }
    }

    /// Has it tripped?
    pub fn is_tripped(&self) -> bool {
        self.0.tripped.load(Ordering::SeqCst)
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
        Pin::new(&mut self.inner).poll_read(cx, buf)
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
