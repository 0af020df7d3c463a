//! Everything but a rule's literal target and `exec pra-rules` is refused,
//! promptly (the peer never hangs), and refused forwards are audited.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::gateway::*;
use crate::common::random_ed25519;
use russh::{ChannelMsg, ChannelOpenFailure};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;

/// An echo target that counts the connections it gets.
async fn counting_target() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            n2.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (addr, n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_spellings_of_a_rule_target_are_refused() {
    let gw = Gateway::start().await;
    let (target, connections) = counting_target().await;
    let p = target.port();
    let key = random_ed25519();
    gw.approved("alice", &key);
    gw.add_rule("alice", "db", 15432, "127.0.0.1", p);
    let c = login(&gw, "alice", &key).await;

    let p32 = u32::from(p);
    let spellings: Vec<(String, u32)> = vec![
        ("127.1".into(), p32),
        ("2130706433".into(), p32),
        ("0x7f.1".into(), p32),
        ("0x7f000001".into(), p32),
        ("[::1]".into(), p32),
        ("::1".into(), p32),
        ("::ffff:127.0.0.1".into(), p32),
        ("localhost".into(), p32),
        ("127.0.0.1.".into(), p32),
        ("127.0.0.1".into(), p32 + 65536),
        ("127.0.0.1".into(), p32 + 2 * 65536),
        ("127.0.0.1".into(), p32 + 1),
    ];
    for (host, port) in &spellings {
        match c
            .channel_open_direct_tcpip(host.as_str(), *port, "127.0.0.1", 40000)
            .await
        {
            Err(russh::Error::ChannelOpenFailure(
                ChannelOpenFailure::AdministrativelyProhibited,
            )) => {}
            Err(e) => panic!("{host}:{port}: unexpected error {e:?}"),
            Ok(_) => panic!("{host}:{port} was let through"),
        }
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "a refused spelling reached the target"
    );

    // the literal target still works on the same session
    let back = echo_through(forward(&c, "127.0.0.1", p32).await.unwrap(), b"ok".to_vec()).await;
    assert_eq!(back, b"ok");
    assert_eq!(connections.load(Ordering::SeqCst), 1);

    // each refusal is audited with the requested target
    for (host, port) in &spellings {
        let want = format!("{host}:{port}");
        gw.wait_audit("forward.refused", |e| {
            e.event.detail["target"] == want.as_str()
        })
        .await;
    }
    let one = &gw.audit("forward.refused")[0];
    assert_eq!(one.event.user.as_deref(), Some("alice"));
    assert_eq!(one.event.detail["reason"], "no_rule");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_pty_exec_subsystem_env_agent_and_remote_forwards_are_refused() {
    let (gw, key) = Gateway::with_user("alice").await;
    let c = login(&gw, "alice", &key).await;

    // exec of anything else
    for cmd in ["ls", "pra-rules ", "pra-rules; ls", "sh -c id", ""] {
        let (out, status, failed) = exec(&c, cmd).await;
        assert!(failed, "exec {cmd:?} was not refused");
        assert!(out.is_empty() && status.is_none());
    }

    // requests on a session channel, each answered with a failure
    async fn expect_failure(ch: &mut russh::Channel<russh::client::Msg>, what: &str) {
        let got = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match ch.wait().await {
                    Some(ChannelMsg::Failure) => return true,
                    Some(ChannelMsg::Success) => return false,
                    Some(_) => continue,
                    None => return false,
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer (the peer would hang)"));
        assert!(got, "{what} was not refused");
    }
    let mut ch = c.channel_open_session().await.unwrap();
    ch.request_shell(true).await.unwrap();
    expect_failure(&mut ch, "shell").await;
    ch.request_pty(true, "xterm", 80, 24, 0, 0, &[])
        .await
        .unwrap();
    expect_failure(&mut ch, "pty").await;
    ch.request_subsystem(true, "sftp").await.unwrap();
    expect_failure(&mut ch, "subsystem").await;
    ch.set_env(true, "LD_PRELOAD", "/tmp/x.so").await.unwrap();
    expect_failure(&mut ch, "env").await;
    ch.agent_forward(true).await.unwrap();
    expect_failure(&mut ch, "agent").await;
    ch.request_x11(true, false, "MIT-MAGIC-COOKIE-1", "00", 0)
        .await
        .unwrap();
    expect_failure(&mut ch, "x11").await;
    // the rules still come on this channel; a second exec does not
    ch.exec(true, pra_proto::RULES_COMMAND).await.unwrap();
    let mut got_status = None;
    tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(m) = ch.wait().await {
            match m {
                ChannelMsg::ExitStatus { exit_status } => got_status = Some(exit_status),
                ChannelMsg::Close => break,
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(got_status, Some(0));

    // remote forwarding
    let r = tokio::time::timeout(Duration::from_secs(5), c.tcpip_forward("127.0.0.1", 0))
        .await
        .unwrap();
    assert!(matches!(r, Err(russh::Error::RequestDenied)), "{r:?}");
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        c.streamlocal_forward("/tmp/pra-test.sock"),
    )
    .await
    .unwrap();
    assert!(r.is_err(), "{r:?}");
    // other channel types
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        c.channel_open_direct_streamlocal("/run/docker.sock"),
    )
    .await
    .unwrap();
    assert!(r.is_err());
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        c.channel_open_x11("127.0.0.1", 6000),
    )
    .await
    .unwrap();
    assert!(r.is_err());
    // and the session is still fine
    let (_, status, _) = exec(&c, pra_proto::RULES_COMMAND).await;
    assert_eq!(status, Some(0));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssh_shell_exec_remote_forward_and_other_targets_are_refused() {
    let (gw, key, echo, _) = Gateway::with_echo_rule("carol").await;
    let ssh = OpenSsh::new(&gw, "carol", &key);
    let limit = Duration::from_secs(30);

    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        ("shell", vec!["-T".into()], "shell request failed"),
        (
            "pty + shell",
            vec!["-tt".into()],
            "PTY allocation request failed",
        ),
        (
            "exec",
            vec!["--".into(), "ls".into(), "/".into()],
            "exec request failed",
        ),
        ("subsystem", vec!["-s".into()], "subsystem request failed"),
        (
            "remote forward",
            vec![
                "-N".into(),
                "-o".into(),
                "ExitOnForwardFailure=yes".into(),
                "-R".into(),
                format!("0:127.0.0.1:{}", echo.port()),
            ],
            "remote port forwarding failed",
        ),
        (
            "-W localhost",
            vec!["-W".into(), format!("localhost:{}", echo.port())],
            "stdio forwarding failed",
        ),
        (
            "-W 127.1",
            vec!["-W".into(), format!("127.1:{}", echo.port())],
            "stdio forwarding failed",
        ),
    ];
    for (what, args, expect) in cases {
        let mut cmd = ssh.command();
        let (before, after): (Vec<_>, Vec<_>) = {
            // options before the host, a command after it
            match args.iter().position(|a| a == "--") {
                Some(i) => (args[..i].to_vec(), args[i + 1..].to_vec()),
                None => (args.clone(), vec![]),
            }
        };
        cmd.args(&before).arg(ssh.host());
        if what == "subsystem" {
            cmd.arg("sftp");
        }
        cmd.args(&after);
        let out = run_blocking(cmd, Vec::new(), limit).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: succeeded");
        assert!(err.contains(expect), "{what}: stderr {err:?}");
        assert!(out.stdout.is_empty(), "{what}: stdout {:?}", out.stdout);
    }

    // the -W refusals were the gateway's policy, not a failed connect
    for host in ["localhost", "127.1"] {
        let want = format!("{host}:{}", echo.port());
        let e = gw
            .wait_audit("forward.refused", |e| {
                e.event.detail["target"] == want.as_str()
            })
            .await;
        assert_eq!(e.event.user.as_deref(), Some("carol"));
    }

    // agent forwarding and env are refused but do not break the rules exec
    let mut cmd = ssh.command();
    cmd.args(["-A", "-o", "SetEnv=FOO=bar"])
        .arg(ssh.host())
        .arg(pra_proto::RULES_COMMAND);
    let out = run_ok(cmd, Vec::new(), limit).await;
    assert!(pra_proto::rules::RulesDocument::parse(&out.stdout).is_ok());
    gw.stop().await;
}
