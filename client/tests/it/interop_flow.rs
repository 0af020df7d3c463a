//! Flow control against a stock OpenSSH `sshd`: a local program that stops
//! reading holds up only its own channel, and a large two-way transfer
//! through one forward completes intact.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::net::{
    echo_server, firehose_server, pattern, read_firehose, two_way, two_way_64_mib,
};
use crate::common::sshd::{connected, one_echo_rule, sshd_with};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_reader_does_not_block_another_forward() {
    let (fire, echo) = (firehose_server().await, echo_server().await);
    let (user, key, rules, sshd) = sshd_with(&[("stalled", fire), ("live", echo)], &[fire, echo]);
    let (tunnel, rx, _) = connected(&sshd, &user, key, T).await;

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
    read_firehose(&mut stalled, 4 * 1024 * 1024, T).await;
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
    let (user, key, _, rules, sshd) = one_echo_rule("echo").await;
    let (tunnel, _, _) = connected(&sshd, &user, key, T).await;

    two_way_64_mib(rules[0].local_port, 42, "stock sshd").await;
    tunnel.cancel_handle().cancel();
    tunnel.wait().await.unwrap();
}
