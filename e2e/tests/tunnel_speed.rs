//! The tunnel's order, through the real gateway (`pra_registry::gateway::
//! run` over SQLite) and the client's tunnel library, all on 127.0.0.1:
//! connections opened one right after the other reach the target in the
//! same order (programs such as iperf3 tell their streams apart by it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pra_client::config::GatewayAddr;
use pra_client::tunnel::{Phase, Timing, Tunnel, TunnelConfig};
use pra_e2e::*;
use pra_proto::api::KeyStatus;
use std::net::SocketAddr;
use std::sync::Arc;
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
    let tunnel = Tunnel::start(TunnelConfig {
        gateway: GatewayAddr {
            host: gw.addr.ip().to_string(),
            port: gw.addr.port(),
        },
        host_key: Some(gw.host_key.clone()),
        pin_store: None,
        user: "alice".into(),
        key: Arc::new(key),
        explain_refusal: None,
        timing: Timing::default(),
    });
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
