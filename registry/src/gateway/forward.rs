//! `direct-tcpip` channels: policy check, connect, then a two-way pipe with
//! per-channel flow control.
//!
//! # Opening
//! The handler answers nothing at once: it spawns [`open`], which checks the
//! request against the user's rules ([`policy::authorize`]), resolves the
//! rule's host, connects to the resolved address, and only then accepts or
//! rejects the channel through russh's `ChannelOpenHandle` (which may be
//! answered from any task), so a slow target never holds up the session.
//!
//! # Flow control
//! The gateway runs russh with `auto_window_adjust = false` (see
//! `vendor/russh/PRA-PATCH.md`): data from the client only debits the
//! channel's window. The handler hands each packet to this channel's queue
//! without ever waiting ([`Inbound::push`]); the pipe writes it to the
//! target and grants the window back (`Handle::window_adjust`) only after
//! the target took it, within the channel's share of the session's and the
//! gateway's window budgets ([`super::memory`]); the window grows with the
//! link (from `window_size` up to `window_max`) while the target keeps up. A target that stops reading therefore exhausts its
//! own channel's window and the client pauses that channel alone; the
//! queue never holds more than one window (a peer that overruns its window
//! gets the channel closed). The other direction writes through russh's
//! channel writer, which waits for the client's window of this channel only.
//!
//! # Order
//! Channels are opened from separate tasks, yet a session's target
//! connections leave in the order the client opened the channels (an
//! [`Order`] hands each request a [`Turn`]): some programs tell their
//! connections apart by the order they arrive in (iperf3's data streams, for
//! one), as they would without a tunnel and as OpenSSH keeps it. A request
//! waits for the previous one to have sent its SYN, at most [`ORDER_WAIT`],
//! never for its connection to complete.

use super::memory::{self, ChannelWindow};
use super::session::SessionState;
use super::{Shared, policy};
use bytes::BytesMut;
use russh::server::{ChannelOpenHandle, Handle, Msg};
use russh::{ChannelId, ChannelOpenFailure, ChannelWriteHalf};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};

/// Longest host name (in characters) quoted in an audit event.
const MAX_HOST_CHARS: usize = 255;
/// Refused or failed forwards audited one by one per session; the rest are
/// only counted (in `session.end`).
const AUDITED_PER_SESSION: u32 = 20;
/// How long the rest of the client's data may take to reach the target
/// after the client closed the channel.
const DRAIN_AFTER_CLOSE: Duration = Duration::from_secs(10);
/// Largest read from the target (target → client), when the client's
/// packets are at least this large.
const READ_BUF: usize = 64 * 1024;
/// Smallest read from the target, whatever packet size the client names.
const MIN_READ: usize = 4 * 1024;
/// Longest a request waits for the previous one's connect to start (a slow
/// name lookup there must not hold this one up for long).
pub const ORDER_WAIT: Duration = Duration::from_millis(100);

/// Hands out [`Turn`]s in the order a session's channels are opened.
#[derive(Debug, Default)]
pub struct Order {
    last: Option<oneshot::Receiver<()>>,
}

impl Order {
    /// The turn of the next channel.
    pub fn next_turn(&mut self) -> Turn {
        let (tx, rx) = oneshot::channel();
        Turn {
            after: self.last.replace(rx),
            started: Some(tx),
        }
    }
}

/// One request's place in its session's [`Order`].
#[derive(Debug)]
pub struct Turn {
    after: Option<oneshot::Receiver<()>>,
    started: Option<oneshot::Sender<()>>,
}

impl Turn {
    /// Wait until the previous request started its connect (or gave up, or
    /// [`ORDER_WAIT`] passed).
    async fn wait(&mut self) {
        if let Some(prev) = self.after.take() {
            let _ = tokio::time::timeout(ORDER_WAIT, prev).await;
        }
    }

    /// This request's connect has started: the next one may go. (Dropping
    /// the turn does the same.)
    fn go(&mut self) {
        if let Some(tx) = self.started.take() {
            let _ = tx.send(());
        }
    }
}

/// The handler's end of one forward channel: the queue towards the target.
pub struct Inbound {
    tx: Option<mpsc::UnboundedSender<Vec<u8>>>,
    received: u64,
    /// Window granted to the peer so far (initial window included).
    granted: Arc<AtomicU64>,
    closed: watch::Sender<bool>,
}

/// What the pipe needs from the handler's side.
pub struct Outlet {
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
    granted: Arc<AtomicU64>,
    closed: watch::Receiver<bool>,
}

/// A channel's queue pair; `initial` is the window the channel opens with
/// (the pipe grants more as the target takes the bytes).
pub fn queue(initial: u32) -> (Inbound, Outlet) {
    let (tx, rx) = mpsc::unbounded_channel();
    let granted = Arc::new(AtomicU64::new(u64::from(initial)));
    let (closed_tx, closed_rx) = watch::channel(false);
    (
        Inbound {
            tx: Some(tx),
            received: 0,
            granted: Arc::clone(&granted),
            closed: closed_tx,
        },
        Outlet {
            rx,
            granted,
            closed: closed_rx,
        },
    )
}

/// Result of handing data to a channel's queue.
#[derive(Debug, PartialEq, Eq)]
pub enum Push {
    /// Queued (or dropped because the pipe is gone).
    Queued,
    /// The peer sent more than its window: close the channel.
    Overrun,
}

impl Inbound {
    /// Queue `data` from the client. Never waits.
    pub fn push(&mut self, data: &[u8]) -> Push {
        self.received += data.len() as u64;
        if self.received > self.granted.load(Ordering::Acquire) {
            return Push::Overrun;
        }
        if let Some(tx) = &self.tx {
            let _ = tx.send(data.to_vec());
        }
        Push::Queued
    }

    /// The client sent EOF: the target gets the rest, then a half-close.
    pub fn eof(&mut self) {
        self.tx = None;
    }

    /// The channel is closed: stop sending to the client.
    pub fn close(&mut self) {
        self.tx = None;
        let _ = self.closed.send(true);
    }

    /// The pipe has finished (or never started).
    pub fn is_finished(&self) -> bool {
        self.closed.is_closed()
    }
}

/// One `direct-tcpip` request, as the handler hands it over.
pub struct Request {
    /// Logged-in session.
    pub session: Arc<SessionState>,
    /// Requested host (from the network).
    pub host: String,
    /// Requested port, the full u32 of the request.
    pub port: u32,
    /// The client's originator address, for logs.
    pub originator: String,
    /// Accept or reject.
    pub reply: ChannelOpenHandle,
    /// Write half of the channel.
    pub write: ChannelWriteHalf<Msg>,
    /// Its queue from the handler.
    pub outlet: Outlet,
    /// Session handle (window adjustments).
    pub handle: Handle,
    /// Its place among the session's channel opens.
    pub turn: Turn,
}

/// Decide, connect, answer and pipe one `direct-tcpip` request.
pub async fn open(shared: Arc<Shared>, req: Request) {
    let Request {
        session,
        host,
        port,
        originator,
        reply,
        write,
        outlet,
        handle,
        mut turn,
    } = req;
    let shown = format!(
        "{}:{port}",
        pra_proto::sanitize::sanitize(&host, MAX_HOST_CHARS)
    );
    let rules = match session.rules(&shared).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(%e, target = %shown, "cannot read the rules; forward refused");
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
            return;
        }
    };
    let rule = match policy::authorize(&rules, &host, port) {
        policy::Decision::Allow(rule) => rule.clone(),
        policy::Decision::Deny => {
            let n = session.refused.fetch_add(1, Ordering::Relaxed);
            tracing::info!(user = %session.user, target = %shown, "forward refused: no rule names it");
            crate::metrics::Metrics::reason(&crate::metrics::get().forwards_refused, "no_rule");
            if n < AUDITED_PER_SESSION {
                shared.audit.record(
                    "forward.refused",
                    Some(&session.user),
                    Some(&session.fingerprint),
                    Some(session.source),
                    serde_json::json!({
                        "target": shown,
                        "reason": "no_rule",
                        "originator": pra_proto::sanitize::sanitize(&originator, 64),
                    }),
                );
            }
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return;
        }
    };
    if session.is_revoked() {
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        return;
    }
    let tcp = match connect(
        &rule.target_host,
        rule.target_port,
        shared.cfg.connect_timeout,
        &mut turn,
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            let n = session.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(user = %session.user, rule = %rule.name, target = %shown, %e, "forward target unreachable");
            if n < AUDITED_PER_SESSION {
                shared.audit.record(
                    "forward.failed",
                    Some(&session.user),
                    Some(&session.fingerprint),
                    Some(session.source),
                    serde_json::json!({
                        "target": shown,
                        "rule": rule.name,
                        "error": e.to_string(),
                    }),
                );
            }
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    let (key, stats) = session.forward_started(&rule);
    let mut window = ChannelWindow::open(
        &session.window_budget,
        &shared.window_budget,
        memory::initial_window(shared.cfg.window_size),
        shared.cfg.window_size,
        shared.cfg.window_max,
        Arc::clone(&outlet.granted),
    );
    reply.accept().await;
    tracing::debug!(user = %session.user, rule = %rule.name, target = %shown, "forward open");
    let id = write.id();
    // Up to the channel's share at once (after the confirmation: both go
    // through russh's priority queue, in order).
    let first = window.consumed(0);
    if first > 0 {
        let _ = handle.window_adjust(id, first);
    }
    let result = pipe(tcp, outlet, &write, &handle, id, &mut window, &stats).await;
    if let Err(e) = result {
        tracing::debug!(%e, rule = %rule.name, "forward ended with an error");
    }
    let _ = write.close().await;
    session.forward_done(key);
}

/// Resolve `host` now and connect to the first address that answers, all
/// within `limit`; the first attempt starts in `turn`.
async fn connect(host: &str, port: u16, limit: Duration, turn: &mut Turn) -> io::Result<TcpStream> {
    let attempt = async {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
        turn.wait().await;
        for addr in addrs {
            let mut connecting = Box::pin(TcpStream::connect(addr));
            // The first poll sends the SYN; then the next channel may go.
            let first = connecting
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()));
            turn.go();
            let result = match first {
                Poll::Ready(r) => r,
                Poll::Pending => connecting.await,
            };
            match result {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    };
    tokio::time::timeout(limit, attempt)
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")))
}

async fn pipe(
    tcp: TcpStream,
    outlet: Outlet,
    write: &ChannelWriteHalf<Msg>,
    handle: &Handle,
    id: ChannelId,
    window: &mut ChannelWindow,
    stats: &super::session::ForwardStats,
) -> io::Result<()> {
    let Outlet {
        mut rx,
        granted: _,
        closed,
    } = outlet;
    let (mut rd, mut wr) = tcp.into_split();

    // client → target; grants window back as the target takes the bytes,
    // within the channel's share of the budgets (see `memory`)
    let up = async {
        let mut closed = closed.clone();
        let drain = async {
            while let Some(chunk) = rx.recv().await {
                let n = chunk.len();
                window.arrived(n as u64, Instant::now());
                wr.write_all(&chunk).await?;
                drop(chunk);
                stats.up.fetch_add(n as u64, Ordering::Relaxed);
                let grant = window.consumed_at(n as u64, Instant::now());
                if grant > 0 {
                    let _ = handle.window_adjust(id, grant);
                }
            }
            let _ = wr.shutdown().await;
            Ok::<(), io::Error>(())
        };
        tokio::pin!(drain);
        tokio::select! {
            r = &mut drain => r,
            // After the client closed the channel, the rest gets a bounded time.
            _ = async {
                let _ = closed.wait_for(|c| *c).await;
                tokio::time::sleep(DRAIN_AFTER_CLOSE).await;
            } => Ok(()),
        }
    };

    // target → client; waits for the client's window of this channel only.
    // One read is one packet (at most the client's largest), handed to the
    // session without another copy; the buffer is allocated at the first
    // read and reused once the session has sent what it held.
    let down = async {
        let mut closed = closed.clone();
        let chunk = usize::try_from(write.max_packet_size())
            .unwrap_or(READ_BUF)
            .clamp(MIN_READ, READ_BUF);
        let mut buf = BytesMut::new();
        let copy = async {
            loop {
                buf.reserve(chunk);
                let n = (&mut rd).take(chunk as u64).read_buf(&mut buf).await?;
                if n == 0 {
                    break;
                }
                write
                    .data_bytes(buf.split().freeze())
                    .await
                    .map_err(|e| io::Error::new(io::ErrorKind::BrokenPipe, e.to_string()))?;
                stats.down.fetch_add(n as u64, Ordering::Relaxed);
            }
            let _ = write.eof().await;
            Ok::<(), io::Error>(())
        };
        tokio::select! {
            r = copy => r,
            _ = closed.wait_for(|c| *c) => Ok(()),
        }
    };

    tokio::try_join!(up, down).map(|_| ())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn the_queue_takes_at_most_what_was_granted() {
        let (mut inbound, outlet) = queue(10);
        assert_eq!(inbound.push(&[0; 6]), Push::Queued);
        assert_eq!(inbound.push(&[0; 4]), Push::Queued);
        assert_eq!(inbound.push(&[0; 1]), Push::Overrun);
        // once more was granted, there is room again
        let mut inbound2 = {
            let (mut i, o) = queue(10);
            assert_eq!(i.push(&[0; 10]), Push::Queued);
            o.granted.fetch_add(10, Ordering::Release);
            assert_eq!(i.push(&[0; 10]), Push::Queued);
            assert!(!i.is_finished());
            drop(o);
            i
        };
        assert!(inbound2.is_finished());
        assert_eq!(inbound2.push(&[0; 1]), Push::Overrun);
        drop(outlet);
        inbound.close();
    }
}
