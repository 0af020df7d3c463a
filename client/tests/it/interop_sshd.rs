//! The tunnel library against a stock OpenSSH `sshd` (inetd mode on a
//! listener the test owns): host-key pinning (fail closed, trust on first
//! use), public-key auth, the rules request, `direct-tcpip` forwards, a busy
//! local port, a target the server does not permit.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::net::{echo_roundtrip, echo_server, new_key, public_line, rule_port};
use crate::common::sshd::{
    StockSshd, TestRule, connected, current_user, nothing_listens, one_echo_rule, rules_json,
    sshd_with,
};
use crate::common::tunnel::{config, wait_for};
use pra_client::tunnel::{ForwardState, Phase, Tunnel};
use pra_proto::codes::Code;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_gateway_two_forwards_carry_data() {
    let (e1, e2) = (echo_server().await, echo_server().await);
    let (user, key, rules, sshd) = sshd_with(&[("one", e1), ("two", e2)], &[e1, e2]);

    let (tunnel, rx, s) = connected(&sshd, &user, key, T).await;
    assert_eq!(s.host_key.as_deref(), Some(sshd.host_key.as_str()));
    assert!(!s.pinned_on_first_use);
    assert_eq!(s.user.as_deref(), Some(user.as_str()));
    assert_eq!(s.rules.len(), 2);
    assert!(
        s.rules.iter().all(|r| r.state == ForwardState::Forwarding),
        "{s:#?}"
    );
    assert!(s.rules.iter().all(|r| r.local.ip().is_loopback()));

    for (i, r) in rules.iter().enumerate() {
        let msg = format!("hello through forward {i}").into_bytes();
        assert_eq!(echo_roundtrip(r.local_port, &msg).await, msg);
    }
    // Several connections at once on one forward.
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let port = rules[0].local_port;
        tasks.push(tokio::spawn(async move {
            let msg = vec![i; 100_000];
            echo_roundtrip(port, &msg).await == msg
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap());
    }

    // The listeners are bound to 127.0.0.1 only.
    for r in &rules {
        assert_eq!(listen_addresses(r.local_port), vec!["0100007F".to_string()]);
    }

    tunnel.cancel_handle().cancel();
    tunnel.wait().await.unwrap();
    let s = rx.borrow().clone();
    assert_eq!(s.phase, Phase::Disconnected);
    assert!(s.rules.iter().all(|r| r.state == ForwardState::Stopped));
    assert!(s.rules[0].bytes_up >= 800_000, "{s:#?}");
    // Listeners are closed after the orderly stop.
    assert!(nothing_listens(rules[0].local_port).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_host_key_fails_closed_before_login() {
    let (user, key, _, rules, sshd) = one_echo_rule("one").await;

    let wrong = pra_proto::fingerprint(new_key().public_key());
    let err = Tunnel::start(config(sshd.addr, Some(&wrong), &user, key))
        .wait()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::HostKeyChanged);
    let line = err.line();
    assert!(line.starts_with("ERR(10204) "), "{line}");
    assert!(line.contains("(ERR(10203))"), "{line}");
    assert!(
        line.contains(&wrong) && line.contains(&sshd.host_key),
        "{line}"
    );
    // The key was never offered to the impostor.
    let log = sshd.log();
    assert!(
        !log.contains("publickey"),
        "sshd saw a login attempt:\n{log}"
    );
    // Nothing listens.
    assert!(nothing_listens(rules[0].local_port).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_use_pins_the_offered_host_key() {
    let (user, key, _, _, sshd) = one_echo_rule("one").await;

    let stored: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut cfg = config(sshd.addr, None, &user, key);
    let s2 = stored.clone();
    cfg.pin_store = Some(Arc::new(
        move |_: &pra_client::config::GatewayAddr, fp: &str| {
            s2.lock().unwrap().push(fp.to_string());
            Ok(())
        },
    ));
    let tunnel = Tunnel::start(cfg);
    let mut rx = tunnel.state();
    let s = wait_for(&mut rx, T, "connected", |s| s.phase == Phase::Connected).await;
    assert!(s.pinned_on_first_use);
    assert_eq!(s.host_key.as_deref(), Some(sshd.host_key.as_str()));
    assert_eq!(*stored.lock().unwrap(), vec![sshd.host_key.clone()]);
    let ev = pra_client::tunnel::status::changes(None, &s);
    assert!(
        ev.iter().any(|e| e
            .text()
            .contains(&format!("pinned {} on first use", sshd.host_key))),
        "{ev:?}"
    );
    tunnel.cancel_handle().cancel();
    tunnel.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_key_is_refused_with_its_code() {
    let user = current_user();
    let allowed = new_key();
    let e1 = echo_server().await;
    let rules = [TestRule::new("one", rule_port(), e1)];
    let sshd = StockSshd::start(&public_line(&allowed), &rules_json(&user, &rules), &[e1]);

    let other = new_key();
    let fp = pra_proto::fingerprint(other.public_key());
    let err = Tunnel::start(config(sshd.addr, Some(&sshd.host_key), &user, other))
        .wait()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::KeyRefused, "{}", err.line());
    assert!(err.line().starts_with("ERR(10207) the forwarding rules could not be fetched (ERR(10203)): the gateway did not accept the key"), "{}", err.line());
    assert!(err.line().contains(&fp));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_port_warns_names_the_holder_and_the_other_forward_works() {
    let user = current_user();
    let key = new_key();
    let (e1, e2) = (echo_server().await, echo_server().await);
    let busy = rule_port();
    let squatter = std::net::TcpListener::bind(("127.0.0.1", busy)).unwrap();
    let rules = [
        TestRule::new("busy", busy, e1),
        TestRule::new("free", rule_port(), e2),
    ];
    let sshd = StockSshd::start(&public_line(&key), &rules_json(&user, &rules), &[e1, e2]);

    let (tunnel, mut rx, s) = connected(&sshd, &user, key, T).await;
    let b = s.rule("busy").unwrap();
    match &b.state {
        ForwardState::PortBusy { holder } => {
            let h = holder.as_deref().unwrap_or_default();
            assert!(
                h.contains(&format!("pid {}", std::process::id())),
                "holder: {h}"
            );
        }
        other => panic!("expected port busy, got {other:?}"),
    }
    let line = pra_client::tunnel::status::rule_line(b);
    assert!(
        line.contains(&format!("WAR(10102) port busy: local port {busy}")),
        "{line}"
    );
    assert_eq!(
        echo_roundtrip(rules[1].local_port, b"still works").await,
        b"still works"
    );

    // Once the other program lets go, the forward starts by itself.
    drop(squatter);
    wait_for(&mut rx, T, "busy forward started", |s| {
        s.rule("busy")
            .is_some_and(|r| r.state == ForwardState::Forwarding)
    })
    .await;
    assert_eq!(echo_roundtrip(busy, b"now free").await, b"now free");
    tunnel.cancel_handle().cancel();
    tunnel.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_the_server_refuses_is_reported_and_others_work() {
    let (e1, e2) = (echo_server().await, echo_server().await);
    // sshd permits only e2.
    let (user, key, rules, sshd) = sshd_with(&[("denied", e1), ("ok", e2)], &[e2]);
    let (tunnel, mut rx, _) = connected(&sshd, &user, key, T).await;

    // The local program sees its connection closed without data.
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", rules[0].local_port))
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(T, tokio::io::AsyncReadExt::read(&mut s, &mut buf))
        .await
        .unwrap();
    assert!(matches!(n, Ok(0) | Err(_)));
    let st = wait_for(&mut rx, T, "target refused", |s| {
        matches!(
            s.rule("denied").map(|r| &r.state),
            Some(ForwardState::TargetRefused { .. })
        )
    })
    .await;
    let line = pra_client::tunnel::status::rule_line(st.rule("denied").unwrap());
    assert!(line.contains("WAR(10103) target refused"), "{line}");
    assert_eq!(echo_roundtrip(rules[1].local_port, b"fine").await, b"fine");
    assert_eq!(st.rule("ok").unwrap().state, ForwardState::Forwarding);
    tunnel.cancel_handle().cancel();
    tunnel.wait().await.unwrap();
}

/// Local addresses (hex, as /proc shows them) listening on `port`.
fn listen_addresses(port: u16) -> Vec<String> {
    let mut out = Vec::new();
    for t in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(t).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 3 && f[3] == "0A" {
                let (ip, p) = f[1].rsplit_once(':').unwrap();
                if u16::from_str_radix(p, 16).unwrap() == port {
                    out.push(ip.to_string());
                }
            }
        }
    }
    out
}
