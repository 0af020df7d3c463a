//! Reconnect against a stock OpenSSH `sshd`: a gateway restart and a dead
//! network path (black-holed by a relay, found by keepalives) both end in
//! forwards that carry data again without user action; the listeners stay
//! bound throughout.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::net::{Relay, echo_roundtrip, echo_works_within};
use crate::common::sshd::one_echo_rule;
use crate::common::tunnel::{config, wait_for};
use pra_client::tunnel::{ForwardState, Phase, Timing, Tunnel};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_restart_forwards_work_again_within_5s() {
    let (user, key, _, rules, sshd) = one_echo_rule("echo").await;
    let mut cfg = config(sshd.addr, Some(&sshd.host_key), &user, key);
    // Production backoff, so the 5 s bound is the real one.
    let d = Timing::default();
    cfg.timing.backoff_base = d.backoff_base;
    cfg.timing.backoff_cap = d.backoff_cap;
    let tunnel = Tunnel::start(cfg);
    let mut rx = tunnel.state();
    wait_for(&mut rx, T, "connected", |s| s.phase == Phase::Connected).await;
    let port = rules[0].local_port;
    assert_eq!(echo_roundtrip(port, b"before").await, b"before");

    // Restart: sessions killed, connections refused for a second.
    let killed = Instant::now();
    sshd.kill_sessions(true);
    let s = wait_for(&mut rx, T, "reconnecting", |s| {
        s.phase == Phase::Reconnecting
    })
    .await;
    let err = s.last_error.clone().unwrap();
    assert_eq!(err.label, "WAR(10220)");
    assert_eq!(
        s.rule("echo").unwrap().state,
        ForwardState::Forwarding,
        "listener stays bound"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restarted = Instant::now();
    sshd.up();

    assert!(
        echo_works_within(port, Duration::from_secs(5)).await,
        "no data through the forward within 5 s of the restart"
    );
    let back = restarted.elapsed();
    let s = wait_for(&mut rx, T, "connected again", |s| {
        s.phase == Phase::Connected
    })
    .await;
    assert_eq!(s.connects, 2);
    assert!(s.last_error.is_none());
    eprintln!(
        "gateway restart: data again {back:?} after the gateway came back ({:?} after the sessions were killed)",
        killed.elapsed()
    );
    tunnel.cancel_handle().cancel();
    tunnel.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_path_is_found_by_keepalives_and_the_tunnel_comes_back() {
    let (user, key, _, rules, sshd) = one_echo_rule("echo").await;
    let relay = Relay::start(sshd.addr).await;
    // Keepalive every 1 s, dead after 2 unanswered: found within ~3 s.
    let tunnel = Tunnel::start(config(relay.addr, Some(&sshd.host_key), &user, key));
    let mut rx = tunnel.state();
    wait_for(&mut rx, T, "connected", |s| s.phase == Phase::Connected).await;
    let port = rules[0].local_port;
    assert_eq!(echo_roundtrip(port, b"before").await, b"before");

    let cut = Instant::now();
    relay.blackhole(true);
    let s = wait_for(&mut rx, T, "reconnecting", |s| {
        s.phase == Phase::Reconnecting
    })
    .await;
    let found = cut.elapsed();
    assert!(
        found < Duration::from_secs(8),
        "dead path found only after {found:?}"
    );
    let what = s.last_error.unwrap().what;
    assert!(what.contains("keepalive"), "{what}");

    // A program connecting while the tunnel is down waits for it.
    let waiting = tokio::spawn(async move { echo_roundtrip(port, b"queued").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    relay.blackhole(false);
    assert_eq!(
        tokio::time::timeout(T, waiting).await.unwrap().unwrap(),
        b"queued"
    );
    wait_for(&mut rx, T, "connected again", |s| {
        s.phase == Phase::Connected && s.connects == 2
    })
    .await;
    eprintln!("dead path found after {found:?} (keepalive 1 s x 3)");
    tunnel.cancel_handle().cancel();
    tunnel.wait().await.unwrap();
}
