//! `pra connect` with the real binary, a key made by `pra keygen`, and a
//! stock sshd as the gateway: JSON events, status lines, a busy port,
//! SIGTERM, the logs, and the one-line errors.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::cli::{
    Running, env_with_closed_gateway, env_with_gateway, keygen_and_export, pin_other_host_key, rt,
    smtp_env,
};
use crate::common::net::{echo_roundtrip, echo_server, rule_port};
use crate::common::sshd::TestRule;
use crate::common::{PASS, TestEnv, read};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

#[test]
fn json_events_busy_port_data_and_sigterm_exit_0() {
    let rt = rt();
    let (e1, e2) = rt.block_on(async { (echo_server().await, echo_server().await) });
    let busy = rule_port();
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", busy)).unwrap();
    let free = rule_port();
    let rules = [
        TestRule::new("mail", busy, e1),
        TestRule::new("web", free, e2),
    ];
    let (env, _sshd) = env_with_gateway(&rules, &[e1, e2]);

    let mut run = Running::start(&env, &["--json"]);
    let phase = run.wait_line(T, |l| {
        l.contains("\"event\":\"phase\"") && l.contains("\"connected\"")
    });
    let v: serde_json::Value = serde_json::from_str(&phase).unwrap();
    assert_eq!(v["connects"], 1);
    let web = run.wait_line(T, |l| l.contains("\"name\":\"web\""));
    let v: serde_json::Value = serde_json::from_str(&web).unwrap();
    assert_eq!(v["state"], "forwarding");
    assert_eq!(v["local"], format!("127.0.0.1:{free}"));
    let mail = match run
        .lines
        .seen
        .iter()
        .find(|l| l.contains("\"name\":\"mail\""))
    {
        Some(l) => l.clone(),
        None => run.wait_line(T, |l| l.contains("\"name\":\"mail\"")),
    };
    let v: serde_json::Value = serde_json::from_str(&mail).unwrap();
    assert_eq!(v["state"], "port_busy");
    assert!(
        v["holder"]
            .as_str()
            .unwrap()
            .contains(&format!("pid {}", std::process::id())),
        "{mail}"
    );
    // Every stdout line is one JSON object.
    for l in &run.lines.seen {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{l}: {e}"));
    }

    let back = rt.block_on(echo_roundtrip(free, b"through pra connect"));
    assert_eq!(back, b"through pra connect");

    let (status, stderr, seen) = run.terminate();
    assert!(status.success(), "exit {status:?}, stderr {stderr}");
    assert!(stderr.trim().is_empty(), "{stderr}");
    assert!(
        seen.iter()
            .any(|l| l.contains("\"phase\":\"disconnected\"")),
        "{seen:#?}"
    );

    // The logs: what the user saw, and the technical side; never a secret.
    let user_log = read(&env.home.join("log/User.log"));
    assert!(user_log.contains("connected to"), "{user_log}");
    assert!(
        user_log.contains(&format!("WAR(10102) port busy: local port {busy}")),
        "{user_log}"
    );
    assert!(user_log.contains("disconnected"), "{user_log}");
    let system_log = read(&env.home.join("log/System.log"));
    assert!(
        system_log.contains("cipher="),
        "algorithms logged: {system_log}"
    );
    assert!(system_log.contains("forward totals"), "{system_log}");
    for log in [&user_log, &system_log] {
        assert!(!log.contains(PASS), "passphrase in a log");
    }
}

#[test]
fn text_lines_one_per_rule() {
    let rt = rt();
    let (e1, port, env, sshd) = smtp_env(&rt);
    let mut run = Running::start(&env, &[]);
    let connected = run.wait_line(T, |l| l.starts_with("connected to"));
    assert_eq!(
        connected,
        format!(
            "connected to {} as {}",
            sshd.addr,
            common::sshd::current_user()
        )
    );
    let rule = run.wait_line(T, |l| l.starts_with("smtp"));
    assert!(rule.contains(&format!("127.0.0.1:{port}")), "{rule}");
    assert!(rule.contains(&format!("-> {e1}")), "{rule}");
    assert!(rule.ends_with("forwarding"), "{rule}");
    let (status, _, _) = run.terminate();
    assert!(status.success());
}

#[test]
fn no_server_set_is_10101() {
    let env = TestEnv::new();
    keygen_and_export(&env);
    env.run(&["connect"]).err("ERR(10101) ");
}

#[test]
fn unreachable_gateway_names_10202_and_10203() {
    let (env, port) = env_with_closed_gateway();
    let line = env
        .run(&["connect"])
        .err("ERR(10202) the forwarding rules could not be fetched (ERR(10203)): ")
        .to_string();
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    let user_log = read(&env.home.join("log/User.log"));
    assert!(
        user_log.contains(&line),
        "error line in User.log: {user_log}"
    );
}

#[test]
fn wrong_passphrase_is_10193() {
    let env = TestEnv::new();
    keygen_and_export(&env);
    env.run(&["server", "set", "127.0.0.1:10022"]).ok();
    env.run_pass(Some("not the passphrase"), &["connect"])
        .err("ERR(10193) ");
}

#[test]
fn changed_host_key_is_10204_and_nothing_listens() {
    let rt = rt();
    let (_, port, env, sshd) = smtp_env(&rt);
    let other = pin_other_host_key(&env, &sshd);
    let line = env.run(&["connect"]).err("ERR(10204) ").to_string();
    assert!(
        line.contains(other) && line.contains(&sshd.host_key),
        "{line}"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}
