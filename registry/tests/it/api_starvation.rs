//! HTTP starvation: one address churning 1,500 idle connections (at most
//! 300 held at once, CI-sized) cannot starve the others. Connections over
//! the per-source cap are closed at once, so health probes and a
//! legitimate key submission from another address (127.0.0.2) answer in
//! under a second while the flood runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::{Api, Resp, parse_response, read_all, submission};
use pra_registry::model::Actor;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const FLOOD: usize = 1500;
const HELD: usize = 300;

async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(format!("{source}:0").parse().unwrap()).unwrap();
    s.connect(to).await.unwrap()
}

/// One request from `source`; the answer and how long it took.
async fn timed(source: &str, to: SocketAddr, req: String) -> (Resp, Duration) {
    let started = Instant::now();
    let mut s = connect_from(source, to).await;
    s.write_all(req.as_bytes()).await.unwrap();
    let got = read_all(&mut s).await;
    (
        parse_response(&got).expect("an HTTP answer"),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_churning_idle_connections_does_not_starve_others() {
    let _alone = crate::common::alone().await;
    let api = Api::start().await;
    api.store
        .add_user("alice", &Actor::Cli("t".into()))
        .unwrap();
    let addr = api.addr;

    // The flood: 1,500 connections from 127.0.0.1 that never send a byte,
    // up to 300 held open at once, the oldest dropped to make room.
    let made = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let flood = {
        let (made, done) = (made.clone(), done.clone());
        tokio::spawn(async move {
            let mut held = VecDeque::new();
            for _ in 0..FLOOD {
                held.push_back(TcpStream::connect(addr).await.unwrap());
                made.fetch_add(1, Ordering::Relaxed);
                if held.len() > HELD {
                    held.pop_front();
                }
                tokio::task::yield_now().await;
            }
            done.store(true, Ordering::Relaxed);
            held
        })
    };
    while made.load(Ordering::Relaxed) < HELD {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Meanwhile another address is served at once.
    let mut slowest = Duration::ZERO;
    let mut probes = 0;
    while !done.load(Ordering::Relaxed) || probes < 8 {
        let (r, took) = timed(
            "127.0.0.2",
            addr,
            format!("GET /api/v1/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(r.status, 200);
        slowest = slowest.max(took);
        probes += 1;
    }
    let key = common::random_ed25519();
    let body = serde_json::to_string(&submission(&key, "alice")).unwrap();
    let (r, took) = timed(
        "127.0.0.2",
        addr,
        format!(
            "POST /api/v1/keys HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(took < Duration::from_secs(1), "submission took {took:?}");
    assert!(
        slowest < Duration::from_secs(1),
        "slowest of {probes} probes: {slowest:?}"
    );

    // The cap did the work: of the 300 flood connections still held, all
    // but at most 32 were closed by the server without an answer.
    let held = flood.await.unwrap();
    assert_eq!(made.load(Ordering::Relaxed), FLOOD);
    let mut closed = 0;
    for mut s in held {
        let mut buf = [0u8; 16];
        match tokio::time::timeout(Duration::from_millis(20), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed += 1,
            Ok(Ok(_)) => panic!("a flood connection got an answer"),
            Err(_) => {}
        }
    }
    assert!(closed >= HELD - 32, "only {closed} of {HELD} were closed");
    eprintln!("{probes} health probes during the flood, slowest {slowest:?}; submission {took:?}");
    api.stop().await;
}
