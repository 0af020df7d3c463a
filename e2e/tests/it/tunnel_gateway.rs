//! The client's tunnel library against the real gateway (`pra_registry::
//! gateway::run` over SQLite) with echo targets: two forwards, a busy local
//! port, a gateway restart, a stalled reader beside a live forward, a 64 MiB
//! two-way echo.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pra_client::tunnel::{ForwardState, Phase, Tunnel, TunnelState};
use pra_e2e::*;
use pra_proto::api::KeyStatus;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::watch;

const T: Duration = Duration::from_secs(30);

async fn wait_for(
    rx: &mut watch::Receiver<TunnelState>,
    what: &str,
    pred: impl Fn(&TunnelState) -> bool,
) -> TunnelState {
    match tokio::time::timeout(T, async {
        loop {
            {
                let s = rx.borrow_and_update();
                if pred(&s) {
                    return s.clone();
                }
            }
            if rx.changed().await.is_err() {
                return rx.borrow().clone();
            }
        }
    })
    .await
    {
        Ok(s) if pred(&s) => s,
        _ => panic!("not {what} within {T:?}: {:#?}", rx.borrow().clone()),
    }
}

/// [`setup`] with one rule `echo` on a free rule port to a new echo
/// server: (that port, registry, gateway, key).
async fn echo_setup() -> (u16, Registry, Gateway, russh::keys::PrivateKey) {
    let port = rule_port();
    let (reg, gw, key) = setup(&[("echo", port, echo_server().await)]).await;
    (port, reg, gw, key)
}

/// Cancel the tunnel (it ends cleanly), then stop the gateway.
async fn stop(tunnel: Tunnel, gw: Gateway) {
    tunnel.cancel_handle().cancel();
    tunnel.wait().await.unwrap();
    gw.stop().await;
}

/// Registry with user `alice`, an approved key and the given rules.
async fn setup(rules: &[(&str, u16, SocketAddr)]) -> (Registry, Gateway, russh::keys::PrivateKey) {
    let reg = Registry::start().await;
    reg.add_user("alice");
    let key = new_key();
    reg.add_key("alice", &public_line(&key), KeyStatus::Approved);
    for (name, port, target) in rules {
        reg.add_rule("alice", name, *port, *target);
    }
    let gw = reg.gateway(None).await;
    (reg, gw, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_flows_through_two_forwards() {
    let (e1, e2) = (echo_server().await, echo_server().await);
    let (p1, p2) = (rule_port(), rule_port());
    let (_reg, gw, key) = setup(&[("one", p1, e1), ("two", p2, e2)]).await;
    let tunnel = Tunnel::start(gw.tunnel_config("alice", key));
    let mut rx = tunnel.state();
    let s = wait_for(&mut rx, "connected", |s| s.phase == Phase::Connected).await;
    assert_eq!(s.user.as_deref(), Some("alice"));
    assert_eq!(s.rules.len(), 2);
    assert!(s.rules.iter().all(|r| r.state == ForwardState::Forwarding));
    assert_eq!(echo_roundtrip(p1, b"first forward").await, b"first forward");
    assert_eq!(
        echo_roundtrip(p2, b"second forward").await,
        b"second forward"
    );
    stop(tunnel, gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_local_port_warns_and_the_other_forward_works() {
    let (e1, e2) = (echo_server().await, echo_server().await);
    let (busy, free) = (rule_port(), rule_port());
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", busy)).unwrap();
    let (_reg, gw, key) = setup(&[("busy", busy, e1), ("free", free, e2)]).await;
    let tunnel = Tunnel::start(gw.tunnel_config("alice", key));
    let mut rx = tunnel.state();
    let s = wait_for(&mut rx, "connected", |s| s.phase == Phase::Connected).await;
    let b = s.rule("busy").unwrap();
    assert!(
        matches!(&b.state, ForwardState::PortBusy { holder: Some(h) } if h.contains(&std::process::id().to_string())),
        "{b:?}"
    );
    let line = pra_client::tunnel::status::rule_line(b);
    assert!(
        line.contains(&format!("WAR(10102) port busy: local port {busy}")),
        "{line}"
    );
    assert_eq!(echo_roundtrip(free, b"other works").await, b"other works");
    stop(tunnel, gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_restart_data_flows_again_within_5s() {
    let (port, reg, gw, key) = echo_setup().await;
    let addr = gw.addr;
    let tunnel = Tunnel::start(gw.tunnel_config("alice", key));
    let mut rx = tunnel.state();
    wait_for(&mut rx, "connected", |s| s.phase == Phase::Connected).await;
    assert_eq!(echo_roundtrip(port, b"before").await, b"before");

    // A rule added meanwhile is picked up at the reconnect.
    let e2 = echo_server().await;
    let late = rule_port();
    reg.add_rule("alice", "late", late, e2);

    let stopped = Instant::now();
    gw.stop().await;
    wait_for(&mut rx, "reconnecting", |s| s.phase == Phase::Reconnecting).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let gw = reg.gateway(Some(addr)).await;
    let restarted = Instant::now();
    assert!(
        echo_works_within(port, Duration::from_secs(5)).await,
        "forward not carrying data within 5 s of the gateway restart"
    );
    let took = restarted.elapsed();
    let s = wait_for(&mut rx, "connected again", |s| s.phase == Phase::Connected).await;
    assert_eq!(s.connects, 2);
    assert_eq!(
        s.rule("late").map(|r| &r.state),
        Some(&ForwardState::Forwarding),
        "rules refreshed on reconnect: {s:#?}"
    );
    assert_eq!(echo_roundtrip(late, b"new rule").await, b"new rule");
    eprintln!(
        "gateway restart: data again {took:?} after the new gateway listened ({:?} after the stop began)",
        stopped.elapsed()
    );
    stop(tunnel, gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_forward_does_not_block_another() {
    let (fire, echo) = (firehose_server().await, echo_server().await);
    let (p_fire, p_echo) = (rule_port(), rule_port());
    let (_reg, gw, key) = setup(&[("stalled", p_fire, fire), ("live", p_echo, echo)]).await;
    let tunnel = Tunnel::start(gw.tunnel_config("alice", key));
    let mut rx = tunnel.state();
    wait_for(&mut rx, "connected", |s| s.phase == Phase::Connected).await;

    let mut stalled = TcpStream::connect(("127.0.0.1", p_fire)).await.unwrap();
    // Until the stalled forward stops growing (its window ran dry).
    let mut last = 0;
    let deadline = Instant::now() + T;
    loop {
        // Counters are published every 2 s: compare across one publish.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let now = rx
            .borrow()
            .rule("stalled")
            .map(|r| r.bytes_down)
            .unwrap_or(0);
        if now > 0 && now == last {
            break;
        }
        assert!(Instant::now() < deadline, "stalled forward never filled");
        last = now;
    }
    assert!(
        last < 64 * 1024 * 1024,
        "stalled forward buffered {last} bytes"
    );

    let data = pattern(8 * 1024 * 1024, 3);
    let started = Instant::now();
    let back = tokio::time::timeout(T, two_way(p_echo, data.clone()))
        .await
        .expect("live forward blocked by the stalled one");
    assert!(back == data);
    eprintln!(
        "8 MiB echo beside a stalled forward (real gateway): {:?}",
        started.elapsed()
    );

    read_firehose(&mut stalled, 2 * 1024 * 1024, T).await;
    stop(tunnel, gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_way_64_mib_echo_is_intact() {
    let (port, _reg, gw, key) = echo_setup().await;
    let tunnel = Tunnel::start(gw.tunnel_config("alice", key));
    let mut rx = tunnel.state();
    wait_for(&mut rx, "connected", |s| s.phase == Phase::Connected).await;
    two_way_64_mib(port, 99, "the real gateway").await;
    stop(tunnel, gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_during_the_session_stops_with_10206() {
    let e1 = echo_server().await;
    let port = rule_port();
    let reg = Registry::start().await;
    reg.add_user("alice");
    let key = new_key();
    let fp = reg.add_key("alice", &public_line(&key), KeyStatus::Approved);
    reg.add_rule("alice", "echo", port, e1);
    let gw = reg.gateway(None).await;
    let key = Arc::new(key);
    let mut cfg = gw.tunnel_config("alice", (*key).clone());
    cfg.explain_refusal = Some(pra_client::tunnel::setup::refusal_explainer(
        reg.url(),
        key.clone(),
        "alice".into(),
    ));
    let tunnel = Tunnel::start(cfg);
    let mut rx = tunnel.state();
    wait_for(&mut rx, "connected", |s| s.phase == Phase::Connected).await;
    assert_eq!(echo_roundtrip(port, b"ok").await, b"ok");

    reg.store
        .set_key_status(
            &fp,
            KeyStatus::Revoked,
            &pra_registry::model::Actor::Cli("e2e".into()),
        )
        .unwrap();
    let err = tokio::time::timeout(T, tunnel.wait())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        err.code(),
        pra_proto::codes::Code::KeyRevoked,
        "{}",
        err.line()
    );
    // Straight from the gateway's reason: no reconnect attempt first.
    assert!(
        err.line().starts_with(&format!(
            "ERR(10206) the administrator revoked the key {fp}; the gateway ended the session: "
        )),
        "{}",
        err.line()
    );
    let s = rx.borrow().clone();
    assert_eq!(s.phase, Phase::Disconnected);
    assert_eq!(s.last_error.unwrap().label, "ERR(10206)");
    // The listeners are closed.
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
    gw.stop().await;
}
