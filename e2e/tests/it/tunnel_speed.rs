//! The tunnel's order, through the real gateway (`pra_registry::gateway::
//! run` over SQLite) and the client's tunnel library, all on 127.0.0.1:
//! connections opened one right after the other reach the target in the
//! same order (programs such as iperf3 tell their streams apart by it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pra_client::tunnel::{Phase, Tunnel};
use pra_e2e::*;
use pra_proto::api::KeyStatus;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const T: Duration = Duration::from_secs(30);

/// A registry with user `alice`, her approved key, one rule to `target`,
/// the gateway, and the tunnel connected.
async fn tunnel_to(target: SocketAddr) -> (Registry, Gateway, Tunnel, u16) {
    let reg = Registry::start().await;
    reg.add_user("alice");
    let key = new_key();
    reg.add_key("alice", &public_line(&key), KeyStatus::Approved);
    let port = rule_port();
    reg.add_rule("alice", "target", port, target);
    let gw = reg.gateway(None).await;
    let tunnel = Tunnel::start(gw.tunnel_config("alice", key));
    let mut rx = tunnel.state();
    tokio::time::timeout(T, rx.wait_for(|s| s.phase == Phase::Connected))
        .await
        .expect("tunnel connected within 30 s")
        .unwrap();
    (reg, gw, tunnel, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_reach_the_target_in_the_order_they_were_opened() {
    // The target reads one byte per connection: the index the client sent.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = l.local_addr().unwrap();
    let (tx, mut order) = mpsc::unbounded_channel::<u8>();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut b = [0u8; 1];
            // Accept order is what counts: read this one before the next accept.
            let k = tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut b)).await;
            if matches!(k, Ok(Ok(_))) {
                let _ = tx.send(b[0]);
            }
            tokio::spawn(async move {
                let mut sink = [0u8; 64];
                while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
    });
    let (_reg, gw, tunnel, port) = tunnel_to(target).await;
    for round in 0..20u8 {
        let mut held = Vec::new();
        for i in 0..4u8 {
            let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            s.write_all(&[i]).await.unwrap();
            held.push(s);
        }
        let mut seen = Vec::new();
        for _ in 0..4 {
            let k = tokio::time::timeout(T, order.recv())
                .await
                .expect("the target saw the connection within 30 s")
                .unwrap();
            seen.push(k);
        }
        assert_eq!(
            seen,
            vec![0, 1, 2, 3],
            "round {round}: the target's accept order"
        );
        drop(held);
    }
    tunnel.cancel_handle().cancel();
    tunnel.wait().await.unwrap();
    gw.stop().await;
}

/// A target that reads everything, and at the sender's end of stream
/// answers how many bytes it got (8 bytes, big-endian).
async fn counting_sink() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 256 * 1024];
                let mut total = 0u64;
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) => break,
                        Ok(n) => total += n as u64,
                        Err(_) => return,
                    }
                }
                let _ = s.write_all(&total.to_be_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// Seconds to push `data` through 127.0.0.1:`port` to the counting sink,
/// until the sink has confirmed every byte.
async fn push_through(port: u16, data: &[u8]) -> f64 {
    let started = std::time::Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.set_nodelay(true).unwrap();
    for chunk in data.chunks(256 * 1024) {
        s.write_all(chunk).await.unwrap();
    }
    s.shutdown().await.unwrap();
    let mut count = [0u8; 8];
    tokio::time::timeout(T, s.read_exact(&mut count))
        .await
        .expect("the sink answered within 30 s")
        .unwrap();
    assert_eq!(
        u64::from_be_bytes(count),
        data.len() as u64,
        "bytes that arrived"
    );
    started.elapsed().as_secs_f64()
}

/// Regression guard (the real benchmark is scripts/bench.sh, results in
/// docs/performance.md): 64 MiB through the tunnel, against the same 64 MiB
/// over plain loopback TCP. Here the client, the gateway, the sink and the
/// sender share one process and two threads, so the tunnel reaches about a
/// tenth of plain loopback in a debug build (190 vs 1,950 MB/s) and about a
/// fifth in a release build (605 vs 3,370 MB/s) on the 2-core machine. The
/// guard fails only below a third of that (a lost window update, a copy per
/// byte, a sleep or a tiny buffer in the forwarding path), never on a close
/// timing: best of three each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_mib_transfer_is_not_grossly_slower_than_plain_loopback() {
    let _alone = alone().await;
    let sink = counting_sink().await;
    let (_reg, gw, tunnel, port) = tunnel_to(sink).await;
    let data = pattern(64 << 20, 8);
    let mut direct = f64::MAX;
    let mut tunnelled = f64::MAX;
    for _ in 0..3 {
        direct = direct.min(push_through(sink.port(), &data).await);
        tunnelled = tunnelled.min(push_through(port, &data).await);
    }
    let mb = |secs: f64| 64.0 * 1.048_576 / secs;
    eprintln!(
        "64 MiB: plain loopback {:.3} s ({:.0} MB/s), through the tunnel {:.3} s ({:.0} MB/s), ratio {:.2}",
        direct,
        mb(direct),
        tunnelled,
        mb(tunnelled),
        direct / tunnelled
    );
    // Slowest allowed, as a multiple of plain loopback's time.
    let limit = if cfg!(debug_assertions) { 30.0 } else { 15.0 };
    assert!(
        tunnelled <= limit * direct,
        "64 MiB through the tunnel took {tunnelled:.3} s, more than {limit}x plain loopback ({direct:.3} s)"
    );
    tunnel.cancel_handle().cancel();
    tunnel.wait().await.unwrap();
    gw.stop().await;
}
