//! Live admin changes: a revoked key or a disabled user loses its live
//! session within 5 seconds, whether the change comes through the store or
//! from a separate `pra-registry` CLI process on the same database; rule
//! changes apply to the next channel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::gateway::*;
use crate::common::{TestEnv, random_ed25519};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

const LIMIT: Duration = Duration::from_secs(5);

/// Wait until the gateway has closed `c`; returns how long it took.
async fn closed_within(c: &Client, since: Instant) -> Duration {
    loop {
        if c.is_closed() {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(15),
            "the session is still open"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_key_in_the_store_ends_its_live_session_and_forwards() {
    let gw = Gateway::start().await;
    let echo = echo_server().await;
    let key = random_ed25519();
    let other = random_ed25519();
    let fp = gw.approved("alice", &key);
    gw.approved("alice", &other);
    gw.add_rule("alice", "echo", 15432, "127.0.0.1", echo.port());
    let c = login(&gw, "alice", &key).await;
    let bystander = login(&gw, "alice", &other).await;
    let mut f = forward(&c, "127.0.0.1", u32::from(echo.port()))
        .await
        .unwrap();

    let t = Instant::now();
    gw.revoke(&fp);
    let took = closed_within(&c, t).await;
    eprintln!("revocation (store) closed the session in {took:?}");
    assert!(took < LIMIT, "took {took:?}");
    // the open forward ended with it
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(LIMIT, f.read(&mut buf)).await.unwrap();
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    // the other key of the same user is untouched
    assert!(!bystander.is_closed());
    let (_, status, _) = exec(&bystander, pra_proto::RULES_COMMAND).await;
    assert_eq!(status, Some(0));

    let e = gw
        .wait_audit("session.revoked", |e| {
            e.event.fingerprint.as_deref() == Some(fp.as_str())
        })
        .await;
    assert_eq!(e.event.detail["reason"], "key_revoked");
    let end = gw
        .wait_audit("session.end", |e| {
            e.event.fingerprint.as_deref() == Some(fp.as_str())
        })
        .await;
    assert_eq!(end.event.detail["reason"], "revoked: key_revoked");
    // and it cannot come back
    assert!(try_login(&gw, "alice", &key).await.is_err());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_user_ends_all_their_sessions() {
    let gw = Gateway::start().await;
    let k1 = random_ed25519();
    let k2 = random_ed25519();
    let k3 = random_ed25519();
    gw.approved("bob", &k1);
    gw.approved("bob", &k2);
    gw.approved("carol", &k3);
    let b1 = login(&gw, "bob", &k1).await;
    let b2 = login(&gw, "bob", &k2).await;
    let c3 = login(&gw, "carol", &k3).await;

    let t = Instant::now();
    gw.store.set_user_enabled("bob", false, &admin()).unwrap();
    let took1 = closed_within(&b1, t).await;
    let took2 = closed_within(&b2, t).await;
    eprintln!("disable user closed sessions in {took1:?} / {took2:?}");
    assert!(took1 < LIMIT && took2 < LIMIT);
    assert!(!c3.is_closed());
    gw.wait_audit("session.revoked", |e| {
        e.event.detail["reason"] == "user_disabled"
    })
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_binary_revokes_a_live_session_on_the_same_database() {
    let env = TestEnv::new();
    env.ok(&["user", "add", "dave"]);
    let gw = Gateway::start_in(&env.data(), |_| {}).await;
    let key = random_ed25519();
    let fp = gw.approved("dave", &key);
    let c = login(&gw, "dave", &key).await;

    let t = Instant::now();
    let out = tokio::task::spawn_blocking({
        let fp = fp.clone();
        move || env.run(&["key", "revoke", &fp])
    })
    .await
    .unwrap();
    assert!(out.success(), "{}", out.stderr());
    let took = closed_within(&c, t).await;
    eprintln!("revocation (CLI process) closed the session in {took:?} (CLI run included)");
    assert!(took < LIMIT, "took {took:?}");
    let e = gw
        .wait_audit("session.revoked", |e| {
            e.event.fingerprint.as_deref() == Some(fp.as_str())
        })
        .await;
    assert_eq!(e.event.detail["reason"], "key_revoked");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_changes_apply_to_the_next_channel() {
    let (gw, key, echo, _) = Gateway::with_echo_rule("erin").await;
    let c = login(&gw, "erin", &key).await;
    let mut open = forward(&c, "127.0.0.1", u32::from(echo.port()))
        .await
        .unwrap();

    gw.store.remove_rule("erin", "echo", &admin()).unwrap();
    // new channels to that target are refused (as soon as the gateway has
    // seen the change; the same bound as for revocations)
    let (_, took) = forward_once(&c, "127.0.0.1", u32::from(echo.port()), false, LIMIT).await;
    eprintln!("a removed rule refused new channels after {took:?}");
    // the session itself stays (the key is still approved)
    let (out, status, _) = exec(&c, pra_proto::RULES_COMMAND).await;
    assert_eq!(status, Some(0));
    assert!(
        pra_proto::rules::RulesDocument::parse(&out)
            .unwrap()
            .rules
            .is_empty()
    );
    // the channel opened before the change keeps working
    use tokio::io::AsyncWriteExt;
    open.write_all(b"still").await.unwrap();
    let mut buf = [0u8; 5];
    tokio::time::timeout(LIMIT, open.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"still");
    gw.stop().await;
}
