//! Loopback peers for tunnel tests: echo and firehose targets, a TCP relay
//! that can black-hole the path, local port picking, key generation.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// The unix-only tests (stock sshd) use most of these.
#[allow(unused_imports)]
pub(crate) use pra_testkit::keys::{new_key, public_line};
#[allow(unused_imports)]
pub(crate) use pra_testkit::net::{
    echo_roundtrip, echo_server, echo_works_within, firehose_server, pattern, read_firehose,
    rule_port, two_way, two_way_64_mib,
};

/// A TCP relay 127.0.0.1:0 → `to`. [`Relay::blackhole`] stops moving
/// bytes without closing anything (a dead network path).
pub(crate) struct Relay {
    /// Where clients connect.
    pub addr: SocketAddr,
    dead: Arc<AtomicBool>,
}

impl Relay {
    /// Start relaying.
    pub(crate) async fn start(to: SocketAddr) -> Relay {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = l.local_addr().expect("addr");
        let dead = Arc::new(AtomicBool::new(false));
        let d = dead.clone();
        tokio::spawn(async move {
            while let Ok((a, _)) = l.accept().await {
                if d.load(Ordering::SeqCst) {
                    // Dead path: hold the socket, say nothing.
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        drop(a);
                    });
                    continue;
                }
                let Ok(b) = TcpStream::connect(to).await else {
                    continue;
                };
                let d1 = d.clone();
                let d2 = d.clone();
                let (ar, aw) = a.into_split();
                let (br, bw) = b.into_split();
                tokio::spawn(pipe(ar, bw, d1));
                tokio::spawn(pipe(br, aw, d2));
            }
        });
        Relay { addr, dead }
    }

    /// Stop forwarding bytes in both directions, keep the sockets open.
    pub(crate) fn blackhole(&self, on: bool) {
        self.dead.store(on, Ordering::SeqCst);
    }
}

async fn pipe(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    dead: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if dead.load(Ordering::SeqCst) {
            // Swallow everything from now on; keep both sockets open.
            while r.read(&mut buf).await.is_ok_and(|n| n > 0) {}
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return;
        }
        if w.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = w.shutdown().await;
}
