//! Only approved keys of enabled users log in. Every refusal looks the same
//! to the peer (answer and timing) and is audited with its own reason;
//! probing learns nothing; failed logins slow their source, not the keys
//! that logged in from it before.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::gateway::*;
use crate::common::random_ed25519;
use pra_proto::api::KeyStatus;
use pra_registry::gateway::limits::PenaltyPolicy;
use std::net::IpAddr;
use std::time::{Duration, Instant};

fn no_penalties(cfg: &mut pra_registry::gateway::GatewayConfig) {
    cfg.penalty = PenaltyPolicy {
        free_failures: 1000,
        ..PenaltyPolicy::default()
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_looks_the_same_and_is_audited_with_its_reason() {
    let gw = Gateway::start_with(no_penalties).await;
    let alice = random_ed25519();
    let bob = random_ed25519();
    let pending = random_ed25519();
    let revoked = random_ed25519();
    let unknown = random_ed25519();
    let dora = random_ed25519();
    gw.approved("alice", &alice);
    gw.approved("bob", &bob);
    gw.add_key("alice", &pending, KeyStatus::Pending);
    let revoked_fp = gw.approved("alice", &revoked);
    gw.revoke(&revoked_fp);
    gw.approved("dora", &dora);
    gw.store.set_user_enabled("dora", false, &admin()).unwrap();

    let cases = [
        ("mallory", &alice, "unknown_user"),
        ("alice", &unknown, "unknown_key"),
        ("alice", &pending, "key_pending"),
        ("alice", &revoked, "key_revoked"),
        ("dora", &dora, "user_disabled"),
        ("alice", &bob, "other_users_key"),
    ];
    let mut answers = Vec::new();
    let mut timings = Vec::new();
    for (user, key, _) in &cases {
        let mut c = connect(&gw).await;
        let t = Instant::now();
        let answer = authenticate(&mut c, user, key).await;
        timings.push(t.elapsed());
        answers.push(answer);
    }
    for (answer, (user, _, reason)) in answers.iter().zip(&cases) {
        assert_eq!(answer, &answers[0], "{user}/{reason} answered differently");
        assert!(!answer.success());
    }
    // constant-time refusal: none faster than the rejection time, none far off
    let min = timings.iter().min().unwrap();
    let max = timings.iter().max().unwrap();
    assert!(*min >= Duration::from_millis(100), "{timings:?}");
    assert!(*max - *min < Duration::from_secs(1), "{timings:?}");

    for (user, key, reason) in &cases {
        let fp = common::fingerprint(key);
        let e = gw
            .wait_audit("login.refused", |e| {
                e.event.detail["reason"] == *reason
                    && e.event.fingerprint.as_deref() == Some(fp.as_str())
            })
            .await;
        assert_eq!(e.event.user.as_deref(), Some(*user));
        assert!(e.event.source.as_deref().unwrap().starts_with("127.0.0.1:"));
        assert_eq!(e.event.detail["algorithm"], "ssh-ed25519");
    }
    // the approved ones still work
    login(&gw, "alice", &alice).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_user_name_mid_login_starts_over() {
    let gw = Gateway::start_with(no_penalties).await;
    let alice = random_ed25519();
    let alice_fp = gw.approved("alice", &alice);
    gw.add_user("bob");
    let mut c = connect(&gw).await;
    // alice's key offered for bob: refused
    assert!(!authenticate(&mut c, "bob", &alice).await.success());
    // same connection, alice's own name: accepted, and the session is alice's
    assert!(authenticate(&mut c, "alice", &alice).await.success());
    let (out, status, _) = exec(&c, pra_proto::RULES_COMMAND).await;
    assert_eq!(status, Some(0));
    let doc = pra_proto::rules::RulesDocument::parse(&out).unwrap();
    assert_eq!(doc.user, "alice");
    let start = gw
        .wait_audit("session.start", |e| {
            e.event.fingerprint.as_deref() == Some(alice_fp.as_str())
        })
        .await;
    assert_eq!(start.event.user.as_deref(), Some("alice"));
    gw.wait_audit("login.refused", |e| {
        e.event.detail["reason"] == "other_users_key"
    })
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssh_probes_learn_nothing_and_unapproved_keys_are_denied() {
    let gw = Gateway::start_with(no_penalties).await;
    let approved = random_ed25519();
    let pending = random_ed25519();
    let unknown = random_ed25519();
    gw.approved("erin", &approved);
    gw.add_key("erin", &pending, KeyStatus::Pending);
    let limit = Duration::from_secs(30);

    let mut stderrs = Vec::new();
    for key in [&pending, &unknown] {
        let ssh = OpenSsh::new(&gw, "erin", key);
        let mut cmd = ssh.command_logging("DEBUG1");
        cmd.arg(ssh.host()).arg(pra_proto::RULES_COMMAND);
        let out = run_blocking(cmd, Vec::new(), limit).await;
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(255), "{err}");
        assert!(out.stdout.is_empty());
        // the probe (no signature) is accepted for any key: no oracle
        assert!(err.contains("Server accepts key"), "{err}");
        assert!(err.contains("Permission denied (publickey)"), "{err}");
        stderrs.push(err);
    }
    // and the approved key gets in with the same client settings
    let ssh = OpenSsh::new(&gw, "erin", &approved);
    let mut cmd = ssh.command();
    cmd.arg(ssh.host()).arg(pra_proto::RULES_COMMAND);
    run_ok(cmd, Vec::new(), limit).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_slow_their_source_but_do_not_lock_out_its_neighbours() {
    let base = Duration::from_millis(1500);
    let max = Duration::from_secs(3);
    let gw = Gateway::start_with(|cfg| {
        cfg.penalty = PenaltyPolicy {
            free_failures: 2,
            base,
            max,
            forget_after: Duration::from_secs(600),
        };
    })
    .await;
    let regular = random_ed25519();
    gw.approved("frank", &regular);
    let newcomer = random_ed25519();
    gw.approved("gina", &newcomer);
    let bad = random_ed25519();
    let office: IpAddr = "127.0.0.2".parse().unwrap();

    // frank logged in before (from anywhere): his key is known good
    let c = login(&gw, "frank", &regular).await;
    drop(c);

    // free failures (and the attempt that uses the last one up) are answered
    // at the normal rejection time
    let mut c = connect_from(&gw, office).await;
    for _ in 0..3 {
        let t = Instant::now();
        assert!(!authenticate(&mut c, "frank", &bad).await.success());
        assert!(t.elapsed() < base, "free refusal took {:?}", t.elapsed());
    }
    // the next attempt waits `base` before it is decided, the one after twice
    // that (capped at `max`): a brute force from one address is slowed
    let t = Instant::now();
    assert!(!authenticate(&mut c, "frank", &bad).await.success());
    let third = t.elapsed();
    assert!(third >= base, "third refusal took {third:?}");
    let t = Instant::now();
    assert!(!authenticate(&mut c, "frank", &bad).await.success());
    let fourth = t.elapsed();
    assert!(fourth >= max, "fourth refusal took {fourth:?}");
    drop(c);

    // the address is not locked out: a neighbour whose key logged in before
    // gets in at once, a newcomer after at most `max`
    let t = Instant::now();
    let mut c = connect_from(&gw, office).await;
    assert!(authenticate(&mut c, "frank", &regular).await.success());
    let known = t.elapsed();
    assert!(
        known < base,
        "the known key from the same address waited {known:?}"
    );
    let t = Instant::now();
    let mut c2 = connect_from(&gw, office).await;
    assert!(authenticate(&mut c2, "gina", &newcomer).await.success());
    let took = t.elapsed();
    assert!(
        took >= max && took < max + Duration::from_secs(2),
        "the newcomer from the same address took {took:?}"
    );
    // and once in, gina's key is known too
    let t = Instant::now();
    let mut c3 = connect_from(&gw, office).await;
    assert!(authenticate(&mut c3, "gina", &newcomer).await.success());
    assert!(
        t.elapsed() < base,
        "gina's second login took {:?}",
        t.elapsed()
    );

    // the bad key is still slowed after its neighbours' successes
    let mut c4 = connect_from(&gw, office).await;
    let t = Instant::now();
    assert!(!authenticate(&mut c4, "frank", &bad).await.success());
    assert!(t.elapsed() >= max, "refusal took {:?}", t.elapsed());

    // another source is not punished at all
    let t = Instant::now();
    let mut c5 = connect_from(&gw, "127.0.0.3".parse().unwrap()).await;
    assert!(!authenticate(&mut c5, "frank", &bad).await.success());
    assert!(
        t.elapsed() < base,
        "the innocent source waited {:?}",
        t.elapsed()
    );
    gw.stop().await;
}
