//! A flood of connections that never log in does not keep an approved user
//! out, and every one of them is closed by the login deadline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::gateway::*;
use common::random_ed25519;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

async fn tcp_from(source: IpAddr, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(source, 0)).unwrap();
    s.connect(to).await.unwrap()
}

/// Read until the gateway closes the connection; false if it is still open
/// after `within`.
async fn closed_by_gateway(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_idle_connections_do_not_lock_out_an_approved_user() {
    let deadline = Duration::from_secs(4);
    let gw = Gateway::start_with(|cfg| cfg.login_deadline = deadline).await;
    let key = random_ed25519();
    gw.approved("alice", &key);

    // 500 connections that never log in: 250 from one source, 225 from 25
    // other sources (they send a version line, then nothing), and 25 that
    // complete the SSH key exchange and then never authenticate.
    let started = Instant::now();
    let one_source: IpAddr = Ipv4Addr::new(127, 0, 0, 2).into();
    let mut same = Vec::new();
    for _ in 0..250 {
        same.push(tcp_from(one_source, gw.addr).await);
    }
    let mut spread = Vec::new();
    for i in 0..225u8 {
        let mut s = tcp_from(Ipv4Addr::new(127, 0, 1, 1 + i % 25).into(), gw.addr).await;
        let _ = s.write_all(b"SSH-2.0-flood\r\n").await;
        spread.push(s);
    }
    let mut handshaked = Vec::new();
    for i in 0..25u8 {
        handshaked.push(connect_from(&gw, Ipv4Addr::new(127, 0, 2, 1 + i).into()).await);
    }
    eprintln!("flood of 500 opened in {:?}", started.elapsed());

    // The approved user gets in, promptly, during the flood.
    let t = Instant::now();
    let c = login(&gw, "alice", &key).await;
    let (_, status, _) = exec(&c, pra_proto::RULES_COMMAND).await;
    assert_eq!(status, Some(0));
    let took = t.elapsed();
    eprintln!("approved login + rules during the flood: {took:?}");
    assert!(took < Duration::from_secs(5), "login took {took:?}");

    // One source gets only its share: the rest were closed at once.
    let mut refused = 0;
    for s in same.iter_mut() {
        if closed_by_gateway(s, Duration::from_millis(50)).await {
            refused += 1;
        }
    }
    eprintln!("{refused} of 250 same-source connections closed at once");
    assert!(refused >= 240, "only {refused} of 250 were refused");

    // Past the login deadline, every flood connection is gone.
    let bound = deadline + Duration::from_secs(10);
    for s in same.iter_mut().chain(spread.iter_mut()) {
        let left = bound.saturating_sub(started.elapsed());
        assert!(
            closed_by_gateway(s, left).await,
            "a flood connection outlived the login deadline"
        );
    }
    for h in &handshaked {
        while !h.is_closed() {
            assert!(
                started.elapsed() < bound,
                "a handshaked flood connection outlived the deadline"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    eprintln!("all flood connections closed after {:?}", started.elapsed());

    // The user's session outlived the flood and the sweep.
    assert!(!c.is_closed());
    let (_, status, _) = exec(&c, pra_proto::RULES_COMMAND).await;
    assert_eq!(status, Some(0));
    gw.stop().await;
}
