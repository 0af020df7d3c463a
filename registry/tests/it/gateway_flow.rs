//! Flow control: a large two-way transfer through one forward completes
//! intact, and a forward whose reader stalls neither stalls the other
//! forwards of its session nor makes the gateway buffer without bound.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::gateway::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIG: usize = 32 * 1024 * 1024;

/// A gateway where `user` has an approved key, the rule `first` (local
/// port 15000) to `target` and `echo` (15001) to a new echo server:
/// (gateway, key, echo server).
async fn beside(
    user: &str,
    (first, target): (&str, std::net::SocketAddr),
) -> (Gateway, ssh_key::PrivateKey, std::net::SocketAddr) {
    let (gw, key) = Gateway::with_user(user).await;
    let echo = echo_server().await;
    gw.add_rule(user, first, 15000, "127.0.0.1", target.port());
    gw.add_rule(user, "echo", 15001, "127.0.0.1", echo.port());
    (gw, key, echo)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_mib_two_way_echo_completes_intact() {
    let _alone = crate::common::alone().await;
    let (gw, key, echo, _) = Gateway::with_echo_rule("alice").await;

    // russh client
    let c = login(&gw, "alice", &key).await;
    let data = pattern(BIG, 7);
    let t = Instant::now();
    let back = tokio::time::timeout(
        Duration::from_secs(120),
        echo_through(
            forward(&c, "127.0.0.1", u32::from(echo.port()))
                .await
                .unwrap(),
            data.clone(),
        ),
    )
    .await
    .expect("32 MiB echo through the russh client hung");
    let took = t.elapsed();
    assert!(back == data, "echoed bytes differ");
    eprintln!("32 MiB two-way echo (russh client): {took:?}");

    // OpenSSH client, ssh -W: stdin → gateway → echo → gateway → stdout
    let ssh = OpenSsh::new(&gw, "alice", &key);
    let mut cmd = ssh.command();
    cmd.arg("-W")
        .arg(format!("127.0.0.1:{}", echo.port()))
        .arg(ssh.host());
    let t = Instant::now();
    let input = data.clone();
    let out = run_ok(cmd, input, Duration::from_secs(120)).await;
    let took = t.elapsed();
    assert!(
        out.stdout == data,
        "echoed bytes differ ({} bytes back)",
        out.stdout.len()
    );
    eprintln!("32 MiB two-way echo (ssh -W): {took:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_stops_reading_stalls_only_its_own_forward() {
    let _alone = crate::common::alone().await;
    let silent = silent_server().await;
    let (gw, key, echo) = beside("alice", ("silent", silent)).await;
    let c = login(&gw, "alice", &key).await;

    // Forward A: the client pushes as fast as it can into a target that
    // never reads.
    let a = forward(&c, "127.0.0.1", u32::from(silent.port()))
        .await
        .unwrap();
    let pushed = Arc::new(AtomicU64::new(0));
    let pushed2 = pushed.clone();
    let (mut a_read, mut w) = tokio::io::split(a);
    let pusher = tokio::spawn(async move {
        let chunk = vec![0xa5u8; 64 * 1024];
        while w.write_all(&chunk).await.is_ok() {
            pushed2.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
    });
    // let A fill everything up to its window
    let start = Instant::now();
    let mut last = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = pushed.load(Ordering::Relaxed);
        if now == last && now > 0 {
            break;
        }
        last = now;
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "forward A never stalled: {now} bytes pushed"
        );
    }

    // Forward B on the same session still carries data, both ways.
    for round in 0..3u8 {
        let data = pattern(4 * 1024 * 1024, round.into());
        let b = forward(&c, "127.0.0.1", u32::from(echo.port()))
            .await
            .unwrap();
        let back = tokio::time::timeout(Duration::from_secs(30), echo_through(b, data.clone()))
            .await
            .expect("forward B stalled behind forward A");
        assert!(back == data);
    }
    // The gateway did not soak up A's data: the client is held back by A's
    // window (plus what the kernel buffers), not by gateway memory.
    let stalled_at = pushed.load(Ordering::Relaxed);
    eprintln!("forward A stalled after {stalled_at} bytes");
    assert!(
        stalled_at < 24 * 1024 * 1024,
        "the gateway buffered {stalled_at} bytes for a stalled target"
    );
    // A is paused, not torn down: no EOF or close on it, its writer blocked.
    let mut one = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_millis(300), a_read.read(&mut one)).await;
    assert!(
        read.is_err(),
        "forward A was closed instead of paused: {read:?}"
    );
    assert!(!pusher.is_finished(), "forward A's writer failed");
    // and the session is still healthy
    let (_, status, _) = exec(&c, pra_proto::RULES_COMMAND).await;
    assert_eq!(status, Some(0));
    pusher.abort();
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_stalls_only_its_own_forward() {
    let _alone = crate::common::alone().await;
    let pusher = pusher_server().await;
    let (gw, key, echo) = beside("bob", ("pusher", pusher)).await;
    let ssh = OpenSsh::new(&gw, "bob", &key);
    let a_sock = ssh.dir.path().join("a.sock");
    let b_sock = ssh.dir.path().join("b.sock");
    let mut tunnel = Tunnel::open(
        &ssh,
        &[
            (&a_sock, "127.0.0.1", pusher.port()),
            (&b_sock, "127.0.0.1", echo.port()),
        ],
    )
    .await;

    // Forward A: the target pushes without end, the local app never reads.
    let mut a = unix(&a_sock).await;
    let mut first = [0u8; 1];
    a.read_exact(&mut first).await.unwrap(); // it is flowing
    // Forward B keeps working meanwhile.
    for round in 0..3u8 {
        let data = pattern(4 * 1024 * 1024, (20 + round).into());
        let b = unix(&b_sock).await;
        let back = tokio::time::timeout(Duration::from_secs(30), echo_through(b, data.clone()))
            .await
            .expect("forward B stalled behind forward A");
        assert!(back == data);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(tunnel.alive());
    // A resumes when its reader does.
    let mut buf = vec![0u8; 1024 * 1024];
    tokio::time::timeout(Duration::from_secs(10), a.read_exact(&mut buf))
        .await
        .expect("forward A did not resume")
        .unwrap();
    drop(a);
    drop(tunnel);
    gw.stop().await;
}
