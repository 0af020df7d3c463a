//! Flow control against a stock OpenSSH `sshd`: a local program that stops
//! reading holds up only its own channel, and a large two-way transfer
//! through one forward completes intact.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::net::{echo_server, firehose_server, new_key, public_line, rule_port};
use common::sshd::{StockSshd, TestRule, current_user, rules_json};
use common::tunnel::{config, wait_for};
use pra_client::tunnel::{Phase, Tunnel};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(30);

/// Deterministic bytes (xorshift), so corruption or reordering shows.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
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

/// Write `data` and read as many bytes back at the same time.
async fn two_way(port: u16, data: Vec<u8>) -> Vec<u8> {
    let s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.set_nodelay(true).unwrap();
    let (mut r, mut w) = s.into_split();
    let len = data.len();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut back = Vec::with_capacity(len);
    r.read_to_end(&mut back).await.unwrap();
    writer.await.unwrap();
    back
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_reader_does_not_block_another_forward() {
    let user = current_user();
    let key = new_key();
    let (fire, echo) = (firehose_server().await, echo_server().await);
    let rules = [
        TestRule {
            name: "stalled".into(),
            local_port: rule_port(),
            target: fire,
        },
        TestRule {
            name: "live".into(),
            local_port: rule_port(),
            target: echo,
        },
    ];
    let sshd = StockSshd::start(
        &public_line(&key),
        &rules_json(&user, &rules),
        &[fire, echo],
    );
    let tunnel = Tunnel::start(config(sshd.addr, Some(&sshd.host_key), &user, key));
    let mut rx = tunnel.state();
    wait_for(&mut rx, T, "connected", |s| s.phase == Phase::Connected).await;

    // A program connects to the firehose forward and never reads.
    let mut stalled = TcpStream::connect(("127.0.0.1", rules[0].local_port))
        .await
        .unwrap();
    // Wait until its channel is stuck: delivered bytes stop growing.
    let mut last = 0u64;
    let deadline = Instant::now() + T;
    loop {
        // Counters are published every 2 s: compare across one publish.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let now = tunnel_bytes(&rx, "stalled");
        if now > 0 && now == last {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stalled forward never filled up"
        );
        last = now;
    }
    // Bounded: the window plus the local socket buffers, not the firehose.
    assert!(last < 64 * 1024 * 1024, "stalled forward took {last} bytes");

    // Meanwhile the other forward moves 8 MiB both ways.
    let data = pattern(8 * 1024 * 1024, 7);
    let started = Instant::now();
    let back = tokio::time::timeout(T, two_way(rules[1].local_port, data.clone()))
        .await
        .expect("the live forward is blocked by the stalled one");
    assert!(back == data, "echo corrupted");
    eprintln!(
        "8 MiB echo beside a stalled forward: {:?}",
        started.elapsed()
    );

    // The stalled program reads again: its stream resumes, intact.
    let mut buf = vec![0u8; 4 * 1024 * 1024];
    tokio::time::timeout(T, stalled.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    for (k, b) in buf.iter().enumerate() {
        assert_eq!(
            *b,
            ((k % (64 * 1024)) % 251) as u8,
            "byte {k} of the resumed stream"
        );
    }
    tunnel.cancel_handle().cancel();
    tunnel.wait().await.unwrap();
}

fn tunnel_bytes(
    rx: &tokio::sync::watch::Receiver<pra_client::tunnel::TunnelState>,
    rule: &str,
) -> u64 {
    rx.borrow().rule(rule).map(|r| r.bytes_down).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_way_64_mib_echo_is_intact() {
    let user = current_user();
    let key = new_key();
    let echo = echo_server().await;
    let rules = [TestRule {
        name: "echo".into(),
        local_port: rule_port(),
        target: echo,
    }];
    let sshd = StockSshd::start(&public_line(&key), &rules_json(&user, &rules), &[echo]);
    let tunnel = Tunnel::start(config(sshd.addr, Some(&sshd.host_key), &user, key));
    let mut rx = tunnel.state();
    wait_for(&mut rx, T, "connected", |s| s.phase == Phase::Connected).await;

    let data = pattern(64 * 1024 * 1024, 42);
    let started = Instant::now();
    let back = tokio::time::timeout(
        Duration::from_secs(120),
        two_way(rules[0].local_port, data.clone()),
    )
    .await
    .expect("64 MiB two-way echo hung");
    let took = started.elapsed();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "echo corrupted");
    eprintln!("64 MiB two-way echo through stock sshd: {took:?}");
    tunnel.cancel_handle().cancel();
    tunnel.wait().await.unwrap();
}
