//! One key holds at most `max_sessions_per_key` live sessions: a further
//! login with it is refused (the newest loses), audited as
//! `too_many_sessions`, does not count as a failed login, and works again
//! once a session ended; concurrent logins cannot overshoot the cap.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::gateway::*;
use crate::common::random_ed25519;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_holds_at_most_its_sessions_and_the_newest_is_refused() {
    let gw = Gateway::start().await;
    assert_eq!(
        pra_registry::gateway::DEFAULT_MAX_SESSIONS_PER_KEY,
        4,
        "the documented default"
    );
    let key = random_ed25519();
    let fp = gw.approved("alice", &key);
    let other = random_ed25519();
    gw.approved("alice", &other);

    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(login(&gw, "alice", &key).await);
    }
    for _ in 0..3 {
        assert!(
            try_login(&gw, "alice", &key).await.is_err(),
            "a 5th session of one key was accepted"
        );
    }
    let e = gw
        .wait_audit("login.refused", |e| {
            e.event.detail["reason"] == "too_many_sessions"
        })
        .await;
    assert_eq!(e.event.fingerprint.as_deref(), Some(fp.as_str()));
    // the held sessions still work; another key of the same user is not
    // affected; the refusals were no failed logins (no penalty)
    let (_, status, _) = exec(&held[0], pra_proto::RULES_COMMAND).await;
    assert_eq!(status, Some(0));
    let t = Instant::now();
    let _o = login(&gw, "alice", &other).await;
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());

    // one session ends: the key may log in again
    let gone = held.pop().unwrap();
    gone.disconnect(russh::Disconnect::ByApplication, "bye", "en")
        .await
        .unwrap();
    drop(gone);
    let start = Instant::now();
    loop {
        if let Ok(c) = try_login(&gw, "alice", &key).await {
            held.push(c);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the freed slot was not reused"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_logins_of_one_key_do_not_overshoot_the_cap() {
    let gw = Gateway::start_with(|cfg| cfg.max_sessions_per_key = 2).await;
    let key = random_ed25519();
    gw.approved("bob", &key);
    let mut conns = Vec::new();
    for _ in 0..8 {
        conns.push(connect(&gw).await);
    }
    let tries: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            let key = key.clone();
            tokio::spawn(async move {
                let ok = authenticate(&mut c, "bob", &key).await.success();
                (ok, c)
            })
        })
        .collect();
    let mut accepted = Vec::new();
    for t in tries {
        let (ok, c) = t.await.unwrap();
        if ok {
            accepted.push(c);
        }
    }
    assert_eq!(accepted.len(), 2, "sessions accepted at a cap of 2");
    gw.stop().await;
}

#[test]
fn serve_takes_the_cap_as_an_option() {
    let env = common::TestEnv::new();
    let help = env.ok(&["serve", "--help"]);
    assert!(help.contains("--max-sessions-per-key <N>"), "{help}");
    assert!(help.contains("[default: 4]"), "{help}");
    let zero = env.run(&["serve", "--max-sessions-per-key", "0"]);
    assert!(!zero.success());
    assert!(
        zero.stderr().contains("max-sessions-per-key"),
        "{}",
        zero.stderr()
    );
}
