//! A permitted target carries data through the gateway, driven by a russh
//! client and by the stock OpenSSH client (`ssh -W`, `ssh -N -L`); the rules
//! come over the session (`exec pra-rules`); bytes land in the audit log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::gateway::*;
use pra_proto::rules::RulesDocument;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn russh_client_forwards_to_a_permitted_target() {
    let (gw, key, echo, fp) = Gateway::with_echo_rule("alice").await;

    let c = login(&gw, "alice", &key).await;
    let data = pattern(300_000, 1);
    let back = echo_through(
        forward(&c, "127.0.0.1", u32::from(echo.port()))
            .await
            .unwrap(),
        data.clone(),
    )
    .await;
    assert_eq!(back, data);

    // rules over the session
    let (out, status, failed) = exec(&c, pra_proto::RULES_COMMAND).await;
    assert!(!failed);
    assert_eq!(status, Some(0));
    let doc = RulesDocument::parse(&out).unwrap();
    assert_eq!(doc.user, "alice");
    assert_eq!(doc.rules.len(), 1);
    assert_eq!(doc.rules[0].name, "echo");
    assert_eq!(doc.rules[0].local_port, 15432);
    assert_eq!(doc.rules[0].target_host, "127.0.0.1");
    assert_eq!(doc.rules[0].target_port, echo.port());

    // the client may fetch its rules again and again on one session
    for _ in 0..20 {
        let (out, status, failed) = exec(&c, pra_proto::RULES_COMMAND).await;
        assert!(!failed);
        assert_eq!(status, Some(0));
        assert_eq!(RulesDocument::parse(&out).unwrap().rules.len(), 1);
    }

    // a rule added while the session runs applies to the next channels
    let echo2 = echo_server().await;
    assert!(
        forward(&c, "127.0.0.1", u32::from(echo2.port()))
            .await
            .is_err()
    );
    gw.add_rule("alice", "echo2", 15433, "127.0.0.1", echo2.port());
    let (stream, took) = forward_once(
        &c,
        "127.0.0.1",
        u32::from(echo2.port()),
        true,
        Duration::from_secs(5),
    )
    .await;
    eprintln!("a new rule applied to new channels after {took:?}");
    let back = echo_through(stream.unwrap(), b"hello".to_vec()).await;
    assert_eq!(back, b"hello");

    c.disconnect(russh::Disconnect::ByApplication, "", "en")
        .await
        .unwrap();
    let start = gw
        .wait_audit("session.start", |e| {
            e.event.fingerprint.as_deref() == Some(fp.as_str())
        })
        .await;
    assert_eq!(start.event.user.as_deref(), Some("alice"));
    assert!(
        start
            .event
            .source
            .as_deref()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    let end = gw
        .wait_audit("session.end", |e| {
            e.event.fingerprint.as_deref() == Some(fp.as_str())
        })
        .await;
    let d = &end.event.detail;
    assert_eq!(d["reason"], "closed");
    assert!(d["duration_secs"].as_f64().unwrap() >= 0.0);
    let forwards = d["forwards"].as_array().unwrap();
    let echo_rule = forwards.iter().find(|f| f["rule"] == "echo").unwrap();
    assert_eq!(echo_rule["bytes_up"], 300_000);
    assert_eq!(echo_rule["bytes_down"], 300_000);
    assert_eq!(echo_rule["target"], format!("127.0.0.1:{}", echo.port()));
    // the refusal(s) before the new rule was seen
    assert!(d["refused_forwards"].as_u64().unwrap() >= 1);
    // last seen recorded
    let rec = gw.store_key(&fp);
    assert!(rec.last_seen.is_some());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssh_w_and_l_forward_to_a_permitted_target() {
    let (gw, key, echo, _) = Gateway::with_echo_rule("bob").await;
    let ssh = OpenSsh::new(&gw, "bob", &key);

    // ssh -W: stdin → target → stdout, then a clean exit
    let data = pattern(1_000_000, 2);
    let mut cmd = ssh.command();
    cmd.arg("-W")
        .arg(format!("127.0.0.1:{}", echo.port()))
        .arg(ssh.host());
    let out = run_ok(cmd, data, Duration::from_secs(30)).await;
    assert_eq!(out.stdout, pattern(1_000_000, 2));

    // ssh pra-rules (exec)
    let mut cmd = ssh.command();
    cmd.arg(ssh.host()).arg(pra_proto::RULES_COMMAND);
    let out = run_ok(cmd, Vec::new(), Duration::from_secs(30)).await;
    let doc = RulesDocument::parse(&out.stdout).unwrap();
    assert_eq!(doc.user, "bob");

    // ssh -N -L (local side on a unix socket: no port to race for)
    let sock = ssh.dir.path().join("echo.sock");
    let mut tunnel = Tunnel::open(&ssh, &[(&sock, "127.0.0.1", echo.port())]).await;
    for round in 0..3u8 {
        let s = unix(&sock).await;
        let data = pattern(200_000, (10 + round).into());
        assert_eq!(echo_through(s, data.clone()).await, data);
    }
    assert!(tunnel.alive());
    drop(tunnel);
    gw.stop().await;
}
