//! Keepalives: an idle session whose client answers stays up (here for many
//! times the dead-peer timeout), and a client that vanished without a word
//! is detected and cleaned up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::gateway::*;
use crate::common::random_ed25519;
use russh::client;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const INTERVAL: Duration = Duration::from_millis(200);
const MAX: usize = 2;

fn fast_keepalives(cfg: &mut pra_registry::gateway::GatewayConfig) {
    cfg.keepalive_interval = INTERVAL;
    cfg.keepalive_max = MAX;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_that_answers_keepalives_stays_up() {
    let gw = Gateway::start_with(fast_keepalives).await;
    let key = random_ed25519();
    gw.approved("alice", &key);
    let c = login(&gw, "alice", &key).await;
    // 20 keepalive intervals, 5 times the dead-peer timeout, without a byte
    // from the application.
    tokio::time::sleep(INTERVAL * 20).await;
    assert!(!c.is_closed(), "an idle but answering client was dropped");
    let (_, status, _) = exec(&c, pra_proto::RULES_COMMAND).await;
    assert_eq!(status, Some(0));
    gw.stop().await;
}

/// A TCP relay that can freeze: afterwards it passes nothing in either
/// direction but keeps both sockets open (a peer that vanished).
async fn freezable_relay(to: std::net::SocketAddr) -> (std::net::SocketAddr, watch::Sender<bool>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (frozen_tx, frozen) = watch::channel(false);
    tokio::spawn(async move {
        let (a, _) = l.accept().await.unwrap();
        let b = TcpStream::connect(to).await.unwrap();
        let (ar, aw) = a.into_split();
        let (br, bw) = b.into_split();
        async fn pump(
            mut r: tokio::net::tcp::OwnedReadHalf,
            mut w: tokio::net::tcp::OwnedWriteHalf,
            mut frozen: watch::Receiver<bool>,
        ) {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = tokio::select! {
                    r = r.read(&mut buf) => match r { Ok(0) | Err(_) => return, Ok(n) => Some(n) },
                    _ = frozen.changed() => None,
                };
                let is_frozen = *frozen.borrow();
                if is_frozen {
                    // hold both sockets open, pass nothing
                    let _keep = (&r, &w);
                    std::future::pending::<()>().await;
                }
                let Some(n) = n else { continue };
                if w.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
        tokio::join!(pump(ar, bw, frozen.clone()), pump(br, aw, frozen.clone()));
    });
    (addr, frozen_tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_client_is_detected_and_its_session_ended() {
    let gw = Gateway::start_with(fast_keepalives).await;
    let echo = echo_server().await;
    let key = random_ed25519();
    let fp = gw.approved("bob", &key);
    gw.add_rule("bob", "echo", 15432, "127.0.0.1", echo.port());
    let (relay, freeze) = freezable_relay(gw.addr).await;

    let stream = TcpStream::connect(relay).await.unwrap();
    let mut c = client::connect_stream(
        Arc::new(client::Config::default()),
        stream,
        Pinned::new(gw.fingerprint()),
    )
    .await
    .unwrap();
    assert!(authenticate(&mut c, "bob", &key).await.success());
    let f = forward(&c, "127.0.0.1", u32::from(echo.port()))
        .await
        .unwrap();
    assert_eq!(echo_through(f, b"hi".to_vec()).await, b"hi");

    // The network swallows everything from now on.
    freeze.send(true).unwrap();
    let t = Instant::now();
    let end = gw
        .wait_audit("session.end", |e| {
            e.event.fingerprint.as_deref() == Some(fp.as_str())
        })
        .await;
    let took = t.elapsed();
    eprintln!(
        "vanished client detected after {took:?}: {}",
        end.event.detail["reason"]
    );
    let reason = end.event.detail["reason"].as_str().unwrap().to_string();
    assert!(
        reason == "keepalive_timeout" || reason == "inactivity_timeout",
        "{reason}"
    );
    // about (max + 1) keepalive intervals; generous bound
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let bytes = &end.event.detail["forwards"][0];
    assert_eq!(bytes["bytes_up"], 2);
    drop(c);
    gw.stop().await;
}
