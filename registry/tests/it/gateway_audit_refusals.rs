//! Junk logins do not grow the audit log without bound: per source and
//! window the first refusals are recorded one by one, the rest as one
//! aggregated `login.refused` event with their count and reasons; other
//! sources keep their own budget.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::gateway::*;
use crate::common::random_ed25519;
use pra_registry::gateway::audit::RefusalAuditPolicy;
use pra_registry::gateway::limits::PenaltyPolicy;
use std::net::IpAddr;
use std::time::Duration;

fn from(e: &pra_registry::model::AuditEntry, ip: &str) -> bool {
    e.event
        .source
        .as_deref()
        .is_some_and(|s| s == ip || s.starts_with(&format!("{ip}:")))
}

/// `n` refused logins as alice with new junk keys, on one connection from
/// `source`.
async fn junk_logins(gw: &Gateway, source: IpAddr, n: usize) {
    let mut c = connect_from(gw, source).await;
    for _ in 0..n {
        let refused = !authenticate(&mut c, "alice", &random_ed25519())
            .await
            .success();
        assert!(refused);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_refusals_from_one_source_become_one_event_with_a_count() {
    let window = Duration::from_secs(4);
    let gw = Gateway::start_with(|cfg| {
        cfg.penalty = PenaltyPolicy {
            free_failures: 1000,
            ..PenaltyPolicy::default()
        };
        cfg.auth_rejection_time = Duration::from_millis(10);
        cfg.refusal_audit = RefusalAuditPolicy {
            window,
            individual: 10,
        };
    })
    .await;
    gw.add_user("alice");
    let junk_source: IpAddr = "127.0.0.5".parse().unwrap();

    // 40 refused logins from one address (fresh junk keys), and one from
    // another address
    for _ in 0..8 {
        junk_logins(&gw, junk_source, 5).await;
    }
    junk_logins(&gw, "127.0.0.6".parse().unwrap(), 1).await;

    let summary = gw
        .wait_audit("login.refused", |e| {
            from(e, "127.0.0.5") && e.event.detail["aggregated"] == true
        })
        .await;
    assert_eq!(summary.event.detail["count"], 30, "{summary:?}");
    assert_eq!(summary.event.detail["reasons"]["unknown_key"], 30);
    assert_eq!(summary.event.source.as_deref(), Some("127.0.0.5"));
    let all = gw.audit("login.refused");
    let junk: Vec<_> = all.iter().filter(|e| from(e, "127.0.0.5")).collect();
    assert_eq!(junk.len(), 11, "10 one by one + 1 summary: {junk:#?}");
    let other: Vec<_> = all.iter().filter(|e| from(e, "127.0.0.6")).collect();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].event.detail["reason"], "unknown_key");

    // a new window starts with a fresh budget of individual events
    junk_logins(&gw, junk_source, 3).await;
    let start = std::time::Instant::now();
    loop {
        let n = gw
            .audit("login.refused")
            .iter()
            .filter(|e| from(e, "127.0.0.5"))
            .count();
        if n == 14 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{n} events from the junk source"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gw.stop().await;
}
