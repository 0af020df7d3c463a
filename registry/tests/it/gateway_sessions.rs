//! The live-sessions list on one gateway (SQLite): a session is listed under
//! the gateway's id while it runs, with its byte counts when it ends; an
//! admin's disconnect request ends it within 5 s; a restarted gateway marks
//! what its earlier run left open as ended.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::gateway::*;
use crate::common::random_ed25519;
use pra_registry::model::{Actor, NewSession};
use pra_registry::store::Store;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(5);

async fn listed(gw: &Gateway, n: usize) -> Vec<pra_registry::model::SessionRecord> {
    let started = Instant::now();
    loop {
        let live = gw.store.list_live_sessions().unwrap();
        if live.len() == n {
            return live;
        }
        assert!(
            started.elapsed() < LIMIT,
            "{n} live sessions expected: {live:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_listed_counted_and_disconnected_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // What a crashed earlier run of this gateway left open.
    {
        let store = Store::sqlite(&data).unwrap();
        store
            .session_open(&NewSession {
                gateway: "gw-test".into(),
                user: "ghost".into(),
                fingerprint: "SHA256:ghost".into(),
                source: "127.0.0.1:1".into(),
                started_at: pra_registry::model::now(),
            })
            .unwrap();
        assert_eq!(store.list_live_sessions().unwrap().len(), 1);
    }
    let gw = Gateway::start_in(&data, |cfg| {
        cfg.gateway_id = Some("gw-test".into());
    })
    .await;
    // (the gateway task does it as it starts)
    let started = Instant::now();
    let ghost = loop {
        let s = gw.store.get_session(1).unwrap().unwrap();
        if s.ended_at.is_some() {
            break s;
        }
        assert!(
            started.elapsed() < LIMIT,
            "the leftover session is still open"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(ghost.end_reason.as_deref(), Some("gateway_restart"));
    assert!(gw.store.list_live_sessions().unwrap().is_empty());

    let echo = echo_server().await;
    let key = random_ed25519();
    let other = random_ed25519();
    let fp = gw.approved("alice", &key);
    gw.approved("bob", &other);
    gw.add_rule("alice", "echo", 15432, "127.0.0.1", echo.port());
    let c = login(&gw, "alice", &key).await;
    let bystander = login(&gw, "bob", &other).await;
    let live = listed(&gw, 2).await;
    let mine = live.iter().find(|s| s.user == "alice").unwrap().clone();
    assert_eq!(mine.gateway, "gw-test");
    assert_eq!(mine.fingerprint, fp);
    assert!(mine.source.starts_with("127.0.0.1:"));
    let data_sent = pattern(100_000, 3);
    let f = forward(&c, "127.0.0.1", u32::from(echo.port()))
        .await
        .unwrap();
    assert_eq!(echo_through(f, data_sent.clone()).await, data_sent);

    let t = Instant::now();
    gw.store
        .request_disconnect(mine.id, &Actor::Token("helpdesk".into()))
        .unwrap();
    while !c.is_closed() {
        assert!(t.elapsed() < LIMIT, "the session is still open");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!(
        "disconnect request ended the session after {:?}",
        t.elapsed()
    );
    assert!(!bystander.is_closed());
    let e = gw.wait_revoked("alice").await;
    assert_eq!(e.event.detail["reason"], "disconnect_requested");
    assert_eq!(e.event.detail["session"], mine.id);
    assert_eq!(gw.audit("session.disconnect").len(), 1);
    // The row is closed with the final counts and the reason.
    let started = Instant::now();
    let ended = loop {
        let s = gw.store.get_session(mine.id).unwrap().unwrap();
        if s.ended_at.is_some() {
            break s;
        }
        assert!(started.elapsed() < LIMIT, "the session row is still open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        ended.end_reason.as_deref(),
        Some("revoked: disconnect_requested")
    );
    assert_eq!(ended.bytes_up, 100_000);
    assert_eq!(ended.bytes_down, 100_000);
    let live = listed(&gw, 1).await;
    assert_eq!(live[0].user, "bob");
    // "last seen" was written at login
    let started = Instant::now();
    while gw.store_key(&fp).last_seen.is_none() {
        assert!(started.elapsed() < LIMIT, "last seen not written");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gw.stop().await;
    // A clean stop closes the rest.
    let store = Store::sqlite(&data).unwrap();
    assert!(store.list_live_sessions().unwrap().is_empty());
}
