//! `serve --audit-keep DAYS`: audit events older than the retention period
//! are deleted in small batches by the running registry; newer ones stay;
//! the deletion leaves one `audit.prune` event.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::BOUND;
use pra_registry::model::{AuditEvent, AuditQuery, now};
use pra_registry::retention::Retention;
use pra_registry::serve::{self, ServeOptions};
use pra_registry::store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn refused(n: u32) -> AuditEvent {
    AuditEvent {
        kind: "login.refused".into(),
        actor: "gateway:gw1".into(),
        user: Some("mallory".into()),
        fingerprint: None,
        source: Some("192.0.2.7:5000".into()),
        detail: serde_json::json!({ "n": n }),
    }
}

#[tokio::test]
async fn old_events_are_deleted_in_batches_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::sqlite(dir.path()).unwrap());
    // 53 events from 400 days ago (written as a year-old registry would
    // have), 3 from 10 days ago, 2 from now.
    {
        let db = rusqlite::Connection::open(dir.path().join("registry.db")).unwrap();
        for (n, age_days) in (0..53).map(|n| (n, 400)).chain((53..56).map(|n| (n, 10))) {
            db.execute(
                "INSERT INTO audit (at, kind, actor, user, source, detail) \
                 VALUES (?1, 'login.refused', 'gateway:gw1', 'mallory', '192.0.2.7:5000', ?2)",
                rusqlite::params![now() - age_days * 86_400, format!("{{\"n\":{n}}}")],
            )
            .unwrap();
        }
    }
    store.record(&refused(56)).unwrap();
    store.record(&refused(57)).unwrap();

    let opts = ServeOptions {
        api: "127.0.0.1:0".into(),
        audit_retention: Some(Retention {
            batch: 7,
            pause: Duration::from_millis(1),
            ..Retention::days(365)
        }),
        ..ServeOptions::default()
    };
    let listeners = serve::bind(&opts).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve::run(listeners, store.clone(), opts, async move {
        let _ = rx.await;
    }));

    let all = || {
        store
            .audit(&AuditQuery {
                limit: 1000,
                ..AuditQuery::default()
            })
            .unwrap()
    };
    let started = Instant::now();
    let pruned = loop {
        let events = all();
        if let Some(p) = events.iter().find(|e| e.event.kind == "audit.prune") {
            break p.clone();
        }
        assert!(started.elapsed() < BOUND, "no pruning within {BOUND:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(pruned.event.detail["deleted"], 53);
    assert_eq!(pruned.event.actor, "registry:retention");
    let left: Vec<i64> = all()
        .iter()
        .filter(|e| e.event.kind == "login.refused")
        .map(|e| e.event.detail["n"].as_i64().unwrap())
        .collect();
    assert_eq!(left, [57, 56, 55, 54, 53]);
    tx.send(()).unwrap();
    tokio::time::timeout(BOUND, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
