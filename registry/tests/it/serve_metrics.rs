//! `serve --metrics ADDR`: the real binary serves the Prometheus text
//! format on its own listener; after a login, a refused login, a forward
//! and a refused forward the counters moved by exactly that.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::fleet;

use crate::common::gateway::*;
use crate::common::{TestEnv, random_ed25519};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `name{labels}` → value, from the text exposition (comments skipped).
fn scrape(addr: SocketAddr) -> HashMap<String, f64> {
    let mut resp = ureq::get(&format!("http://{addr}/metrics")).call().unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.body_mut().read_to_string().unwrap();
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            (name.to_string(), value.parse::<f64>().unwrap())
        })
        .collect()
}

fn value(m: &HashMap<String, f64>, name: &str) -> f64 {
    m.get(name).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_with_logins_refusals_and_forwards() {
    let env = TestEnv::new();
    let (key, fp, echo) = env.alice_echo().await;

    let (mut child, seen) = env.serve(
        &["--metrics", "127.0.0.1:0"],
        Stdio::null(),
        &["ssh", "metrics"],
    );
    let (ssh, metrics) = (seen.addr("ssh"), seen.addr("metrics"));

    let before = scrape(metrics);
    assert!(
        before
            .keys()
            .any(|k| k.starts_with("pra_build_info{version=")),
        "{before:?}"
    );
    assert_eq!(value(&before, "pra_sessions"), 0.0);

    // a refused login (unknown key), then alice's login
    let stranger = random_ed25519();
    assert!(
        fleet::try_login(ssh, &fp, "alice", &stranger)
            .await
            .is_err()
    );
    let c = fleet::try_login(ssh, &fp, "alice", &key)
        .await
        .unwrap_or_else(|_| panic!("alice's login refused"));
    let m = scrape(metrics);
    assert_eq!(
        value(&m, "pra_logins_total{outcome=\"accepted\",reason=\"ok\"}"),
        1.0,
        "{m:?}"
    );
    let refused: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("pra_logins_total{outcome=\"refused\""))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(refused, 1.0, "{m:?}");
    assert_eq!(value(&m, "pra_sessions"), 1.0);
    assert!(value(&m, "pra_preauth_connections_total") >= 2.0);
    assert!(value(&m, "pra_store_call_seconds_count") >= 1.0);

    // one forward through (bytes both ways), one refused (no rule)
    let data = pattern(50_000, 7);
    let stream = forward(&c, "127.0.0.1", echo.port() as u32).await.unwrap();
    assert_eq!(echo_through(stream, data.clone()).await, data);
    assert!(forward(&c, "127.0.0.1", 9).await.is_err());
    let m = fleet::eventually(Duration::from_secs(10), "forward counted", || {
        let m = scrape(metrics);
        (value(&m, "pra_forwarded_bytes_total{direction=\"up\"}") >= data.len() as f64).then_some(m)
    })
    .await;
    assert_eq!(value(&m, "pra_forwards_opened_total"), 1.0);
    assert_eq!(
        value(&m, "pra_forwards_refused_total{reason=\"no_rule\"}"),
        1.0
    );
    assert_eq!(
        value(&m, "pra_forwarded_bytes_total{direction=\"up\"}"),
        data.len() as f64
    );
    assert_eq!(
        value(&m, "pra_forwarded_bytes_total{direction=\"down\"}"),
        data.len() as f64
    );

    // the session ends: the gauge comes back down
    drop(c);
    fleet::eventually(Duration::from_secs(10), "session gauge back to 0", || {
        (value(&scrape(metrics), "pra_sessions") == 0.0).then_some(())
    })
    .await;

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
