//! Behind a listed reverse proxy (`serve --trusted-proxy`), the API and the
//! admin sign-in take the client's address from `X-Forwarded-For`: one
//! client's wrong sign-ins or submissions do not lock out another client of
//! the same proxy. From a peer that is not listed the header is ignored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::AuditOf;
use crate::common::submission;
use crate::common::web::{Browser, Web};
use pra_registry::api::ApiConfig;
use pra_registry::api::limit::RateLimit;
use pra_registry::api::proxy::TrustedProxies;
use pra_registry::model::{Actor, AuditQuery};
use std::time::Duration;

fn behind(proxy: &str) -> ApiConfig {
    ApiConfig {
        trusted_proxies: TrustedProxies::new([proxy.parse().unwrap()]),
        ..ApiConfig::default()
    }
}

fn forwarded(web: &Web, client: &str) -> Browser {
    let mut b = Browser::new(web.addr());
    b.extra.push(("X-Forwarded-For".into(), client.to_string()));
    b
}

#[tokio::test]
async fn wrong_sign_ins_of_one_forwarded_client_do_not_lock_out_another() {
    let web = Web::start_api(behind("127.0.0.1")).await;
    // the client claims an address of its own; the proxy appends the real one
    let mut mallory = forwarded(&web, "203.0.113.50, 198.51.100.1");
    for i in 0..5 {
        let r = mallory.sign_in(&format!("pra_guess_{i}")).await;
        assert_eq!(r.status, 401, "attempt {i}");
    }
    assert_eq!(mallory.sign_in("pra_guess").await.status, 429);
    // another client of the same proxy (even one claiming mallory's
    // forged address) signs in
    let mut alice = forwarded(&web, "198.51.100.1, 198.51.100.2");
    let r = alice.sign_in(&web.token).await;
    assert_eq!(r.status, 303, "{}", r.text());
    // the audit log names the forwarded clients
    let events = web.api.store.audit_of("web.login");
    assert_eq!(events[0].event.kind, "web.login");
    assert_eq!(events[0].event.source.as_deref(), Some("198.51.100.2:0"));
    assert_eq!(events[1].event.kind, "web.login.refused");
    assert_eq!(events[1].event.source.as_deref(), Some("198.51.100.1:0"));
    web.api.stop().await;
}

#[tokio::test]
async fn an_unlisted_peers_header_is_ignored() {
    let web = Web::start_api(behind("127.0.0.9")).await;
    for i in 0..5 {
        let mut b = forwarded(&web, &format!("198.51.100.{}", 10 + i));
        assert_eq!(b.sign_in(&format!("pra_guess_{i}")).await.status, 401);
    }
    // a sixth "address" is the same peer: limited, even with the right token
    let mut b = forwarded(&web, "198.51.100.99");
    assert_eq!(b.sign_in(&web.token).await.status, 429);
    let e = &web.api.store.audit(&AuditQuery::default()).unwrap()[0];
    assert!(
        e.event.source.as_deref().unwrap().starts_with("127.0.0.1:"),
        "{e:?}"
    );
    web.api.stop().await;
}

#[tokio::test]
async fn submissions_are_limited_per_forwarded_client() {
    let limit = RateLimit {
        burst: 2,
        refill_every: Duration::from_secs(3600),
        max_sources: 100,
    };
    let web = Web::start_api(ApiConfig {
        submit_limit: limit,
        ..behind("127.0.0.1")
    })
    .await;
    let api = &web.api;
    api.store
        .add_user("alice", &Actor::Cli("t".into()))
        .unwrap();
    let addr = web.addr();
    let submit = |client: &'static str| async move {
        let key = common::random_ed25519();
        let body = serde_json::to_value(submission(&key, "alice"))
            .unwrap()
            .to_string();
        let req = format!(
            "POST /api/v1/keys HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Forwarded-For: {client}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        common::raw(addr, req.as_bytes()).await.status
    };
    assert_eq!(submit("198.51.100.1").await, 202);
    assert_eq!(submit("198.51.100.1").await, 202);
    assert_eq!(submit("198.51.100.1").await, 429);
    assert_eq!(submit("198.51.100.2").await, 202);
    let e = &api.store.audit(&AuditQuery::default()).unwrap()[0];
    assert_eq!(e.event.actor, "submitter:198.51.100.2:0");
    web.api.stop().await;
}
