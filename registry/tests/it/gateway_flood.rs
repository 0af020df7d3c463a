//! A flood of connections that never log in does not keep an approved user
//! out, and every one of them is closed by the login deadline; a churn
//! flood from many addresses (connections dropped or abandoned after their
//! version line) does not keep logins out either: at the pre-auth cap the
//! connections that got least far go first.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::gateway::*;
use crate::common::random_ed25519;
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
    let _turn = crate::common::alone().await;
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

/// A login from `source` with the full client, or why it failed.
async fn timed_login(
    gw: &Gateway,
    source: IpAddr,
    key: &ssh_key::PrivateKey,
) -> Result<Duration, String> {
    let t = Instant::now();
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    let stream = socket.connect(gw.addr).await.map_err(|e| e.to_string())?;
    let config = std::sync::Arc::new(russh::client::Config::default());
    let mut c = russh::client::connect_stream(config, stream, Pinned::new(gw.fingerprint()))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let ok = c
        .authenticate_publickey(
            "alice",
            russh::keys::PrivateKeyWithHashAlg::new(std::sync::Arc::new(key.clone()), None),
        )
        .await
        .map_err(|e| format!("auth: {e}"))?
        .success();
    if !ok {
        return Err("refused".into());
    }
    let took = t.elapsed();
    let _ = c
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    Ok(took)
}

/// Connections that are dropped or abandoned right after their version
/// line, from many addresses, as fast as the workers can: (opened, closed
/// by the gateway while held).
async fn churn(
    to: SocketAddr,
    addresses: usize,
    workers: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) -> (u64, u64) {
    let mut tasks = Vec::new();
    for w in 0..workers {
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let (mut opened, mut evicted) = (0u64, 0u64);
            let mut i = w;
            while !*stop.borrow() {
                i = i.wrapping_add(workers);
                let k = i % addresses;
                let source = Ipv4Addr::new(127, 1, (k / 250) as u8, 1 + (k % 250) as u8);
                let s = TcpSocket::new_v4().unwrap();
                s.bind(SocketAddr::new(source.into(), 0)).unwrap();
                let Ok(mut s) = s.connect(to).await else {
                    continue;
                };
                opened += 1;
                if i % 2 == 0 {
                    continue; // dropped at once
                }
                // abandoned after the version line, until the gateway or
                // the end of the flood closes it
                let _ = s.write_all(b"SSH-2.0-churn\r\n").await;
                let mut stop2 = stop.clone();
                let mut buf = [0u8; 2048];
                let closed = tokio::time::timeout(Duration::from_secs(1), async {
                    loop {
                        tokio::select! {
                            r = s.read(&mut buf) => match r {
                                Ok(0) | Err(_) => return true,
                                Ok(_) => {}
                            },
                            _ = stop2.changed() => return false,
                        }
                    }
                })
                .await
                .unwrap_or(false);
                if closed {
                    evicted += 1;
                }
            }
            (opened, evicted)
        }));
    }
    let mut total = (0, 0);
    for t in tasks {
        let (o, e) = t.await.unwrap();
        total.0 += o;
        total.1 += e;
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_churn_flood_from_many_addresses_does_not_keep_logins_out() {
    let _turn = crate::common::alone().await;
    // Scaled down for CI: a cap of 256 unauthenticated connections (1,024
    // shipped) against what two loaded cores can churn (the flood runs in
    // this process, on the gateway's two runtime threads), 100 addresses,
    // 20 logins. PRA_FLOOD_FULL=1 (with --release) runs the full size: the
    // shipped cap, 400 addresses, 2,000 flood workers, 100 logins.
    let full = std::env::var_os("PRA_FLOOD_FULL").is_some();
    let (cap, addresses, workers, logins) = if full {
        (1024, 400, 2000, 100u8)
    } else {
        (256, 100, 400, 20)
    };
    let gw = Gateway::start_with(|cfg| cfg.admission.max_unauthenticated = cap).await;
    let key = random_ed25519();
    gw.approved("alice", &key);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let flood = tokio::spawn(churn(gw.addr, addresses, workers, stop_rx));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Logins during the flood, each from an address that never logged in.
    let mut times = Vec::new();
    let mut failures = Vec::new();
    for i in 0..logins {
        let source: IpAddr = Ipv4Addr::new(127, 0, 5, 1 + i).into();
        match tokio::time::timeout(Duration::from_secs(10), timed_login(&gw, source, &key)).await {
            Ok(Ok(took)) => times.push(took),
            Ok(Err(e)) => failures.push(e),
            Err(_) => failures.push("no answer within 10 s".into()),
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let _ = stop_tx.send(true);
    let (opened, evicted) = flood.await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    times.sort();
    eprintln!(
        "churn: {opened} connections in {secs:.1} s ({:.0}/s) from {addresses} addresses, {evicted} evicted; \
         logins: {} ok, failures {failures:?}, times {times:?}",
        opened as f64 / secs,
        times.len()
    );
    assert!(
        evicted > 0,
        "the flood never reached the cap: the test shows nothing"
    );
    // every login at CI size; at full size at least 99% (the target)
    let allowed = usize::from(logins) / 100 * usize::from(full);
    assert!(
        failures.len() <= allowed,
        "logins failed during the flood: {failures:?}"
    );
    let slow = times
        .iter()
        .filter(|t| **t >= Duration::from_secs(2))
        .count();
    assert!(slow <= allowed, "{slow} logins took 2 s or more: {times:?}");
    gw.stop().await;
}
