//! Loopback peers and ports for tunnel and gateway tests.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An echo server on 127.0.0.1:0 (each connection copies its input back).
/// Spawned on the current tokio runtime.
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

/// A server that writes `chunk` to every connection, again and again, and
/// never reads.
pub async fn endless_server(chunk: Vec<u8>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let chunk = chunk.clone();
            tokio::spawn(async move { while s.write_all(&chunk).await.is_ok() {} });
        }
    });
    addr
}

/// A server that sends an endless stream of bytes (`i mod 251`, per 64 KiB
/// chunk) to every connection and never reads.
pub async fn firehose_server() -> SocketAddr {
    endless_server((0..64 * 1024u32).map(|i| (i % 251) as u8).collect()).await
}

/// Read `len` bytes of a [`firehose_server`] stream from its start (within
/// `within`) and check that every one is intact.
pub async fn read_firehose<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    len: usize,
    within: Duration,
) {
    let mut buf = vec![0u8; len];
    tokio::time::timeout(within, r.read_exact(&mut buf))
        .await
        .expect("the firehose stream resumes in time")
        .expect("read the firehose stream");
    for (k, b) in buf.iter().enumerate() {
        assert_eq!(
            *b,
            ((k % (64 * 1024)) % 251) as u8,
            "byte {k} of the resumed stream"
        );
    }
}

/// Accepts connections and never reads from them (keeps them open).
pub async fn silent_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    addr
}

/// Connect to 127.0.0.1:`port`, send `msg`, read the same number of bytes back.
pub async fn echo_roundtrip(port: u16, msg: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect forward");
    s.write_all(msg).await.expect("write");
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).await.expect("read back");
    back
}

/// Send `data` to 127.0.0.1:`port` (then close the sending side) while
/// reading everything that comes back, at the same time; what came back.
pub async fn two_way(port: u16, data: Vec<u8>) -> Vec<u8> {
    let s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let (mut r, mut w) = s.into_split();
    let len = data.len();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.expect("write");
        w.shutdown().await.expect("shutdown");
    });
    let mut back = Vec::with_capacity(len);
    r.read_to_end(&mut back).await.expect("read back");
    writer.await.expect("writer");
    back
}

/// [`two_way`] with 64 MiB of [`pattern`] bytes (within two minutes): it all
/// comes back intact; prints how long it took `through`.
pub async fn two_way_64_mib(port: u16, seed: u64, through: &str) {
    let data = pattern(64 * 1024 * 1024, seed);
    let started = tokio::time::Instant::now();
    let back = tokio::time::timeout(Duration::from_secs(120), two_way(port, data.clone()))
        .await
        .expect("64 MiB two-way echo hung");
    let took = started.elapsed();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "echo corrupted");
    eprintln!("64 MiB two-way echo through {through}: {took:?}");
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
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// A local port for a rule. Rules name fixed ports, so a test must pick
/// one before the client listens: taken from below the ephemeral range
/// (where the OS never hands out ports by itself), spread per process, and
/// checked free. A port taken by someone else in between makes the test
/// fail loudly, never pass wrongly.
pub fn rule_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    if NEXT.load(Ordering::Relaxed) == 0 {
        let spread = (std::process::id() % 400) as u16 * 40;
        let _ = NEXT.compare_exchange(0, 12000 + spread, Ordering::Relaxed, Ordering::Relaxed);
    }
    loop {
        let p = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(p < 32000, "no free rule port");
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// A loopback port nothing listens on (bound once, then released), for
/// "connection refused".
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Deterministic bytes that are not all alike (xorshift; catch reordering
/// and truncation).
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
