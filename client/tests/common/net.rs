//! Loopback peers for tunnel tests: echo and firehose targets, a TCP relay
//! that can black-hole the path, local port picking, key generation.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An ed25519 key from the OS RNG.
pub fn new_key() -> russh::keys::PrivateKey {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("os rng");
    russh::keys::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&seed))
}

/// `ssh-ed25519 AAAA…` of a key.
pub fn public_line(key: &russh::keys::PrivateKey) -> String {
    key.public_key().to_openssh().expect("encode public key")
}

/// A local port for a rule. Rules name fixed ports, so a test must pick
/// one before the client listens: taken from below the ephemeral range
/// (where the OS never hands out ports by itself), spread per process, and
/// checked free. A port taken by someone else in between makes the test
/// fail loudly, never pass wrongly.
pub fn rule_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    if NEXT.load(Ordering::Relaxed) == 0 {
        let spread = (std::process::id() % 400) as u16 * 25;
        let _ = NEXT.compare_exchange(0, 20000 + spread, Ordering::Relaxed, Ordering::Relaxed);
    }
    loop {
        let p = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(p < 32000, "no free rule port");
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// An echo server on 127.0.0.1:0 (each connection copies its input back).
pub async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// A server that sends an endless stream of bytes (`i mod 251`) to every
/// connection and never reads.
pub async fn firehose_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind firehose");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let chunk: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
                while s.write_all(&chunk).await.is_ok() {}
            });
        }
    });
    addr
}

/// Connect, send `msg`, read the same number of bytes back.
pub async fn echo_roundtrip(port: u16, msg: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect forward");
    s.write_all(msg).await.expect("write");
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).await.expect("read back");
    back
}

/// Like [`echo_roundtrip`], retried until it works or `within` passes.
pub async fn echo_works_within(port: u16, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        let attempt = tokio::time::timeout(Duration::from_secs(2), async {
            let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
            s.write_all(b"ping").await.ok()?;
            let mut b = [0u8; 4];
            s.read_exact(&mut b).await.ok()?;
            (&b == b"ping").then_some(())
        })
        .await;
        if matches!(attempt, Ok(Some(()))) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A TCP relay 127.0.0.1:0 → `to`. [`Relay::blackhole`] stops moving
/// bytes without closing anything (a dead network path).
pub struct Relay {
    /// Where clients connect.
    pub addr: SocketAddr,
    dead: Arc<AtomicBool>,
}

impl Relay {
    /// Start relaying.
    pub async fn start(to: SocketAddr) -> Relay {
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
    pub fn blackhole(&self, on: bool) {
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
