//! `pra doctor` with the real binary: every check against a working stock
//! sshd gateway, and the failing cases with their codes and the skipped
//! dependent checks.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::TestEnv;
use crate::common::cli::{
    env_with_closed_gateway, env_with_gateway, keygen_and_export, pin_other_host_key, rt, smtp_env,
};
use crate::common::net::{echo_server, rule_port};
use crate::common::sshd::TestRule;

#[test]
fn all_checks_pass_one_line_each() {
    let rt = rt();
    let (e1, e2) = rt.block_on(async { (echo_server().await, echo_server().await) });
    let (p1, p2) = (rule_port(), rule_port());
    let rules = [TestRule::new("smtp", p1, e1), TestRule::new("imap", p2, e2)];
    let (env, sshd) = env_with_gateway(&rules, &[e1, e2]);
    let out = env.run(&["doctor"]);
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    let expect_prefixes = [
        format!("OK   gateway address set: {}", sshd.addr),
        "OK   name 127.0.0.1 resolves: 127.0.0.1".to_string(),
        format!(
            "OK   TCP reach of {}: connected to {}",
            sshd.addr, sshd.addr
        ),
        format!("OK   gateway host key: {} matches the pin", sshd.host_key),
        "OK   key unlocks on this PC: SHA256:".to_string(),
        "OK   key approved: the gateway accepted user".to_string(),
        "OK   rules fetched: 2 rule(s): smtp, imap".to_string(),
        format!("OK   local port {p1} free (rule smtp): free"),
        format!("OK   local port {p2} free (rule imap): free"),
        format!("OK   target {e1} reachable through the tunnel (rule smtp)"),
        format!("OK   target {e2} reachable through the tunnel (rule imap)"),
        "doctor: all 11 checks passed".to_string(),
    ];
    assert_eq!(lines.len(), expect_prefixes.len(), "{text}");
    for (l, p) in lines.iter().zip(&expect_prefixes) {
        assert!(
            l.starts_with(p.as_str()),
            "line {l:?} should start with {p:?}\n{text}"
        );
    }
}

#[test]
fn busy_port_and_refused_target_fail_with_their_codes() {
    let rt = rt();
    let (e1, e2) = rt.block_on(async { (echo_server().await, echo_server().await) });
    let (p1, p2) = (rule_port(), rule_port());
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", p1)).unwrap();
    let rules = [TestRule::new("smtp", p1, e1), TestRule::new("imap", p2, e2)];
    // sshd permits only e1: the imap target is refused.
    let (env, _sshd) = env_with_gateway(&rules, &[e1]);
    let out = env.run(&["doctor", "--json"]);
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["ok"], false);
    let checks = v["checks"].as_array().unwrap();
    let find = |prefix: &str| {
        checks
            .iter()
            .find(|c| c["name"].as_str().unwrap().starts_with(prefix))
            .unwrap_or_else(|| panic!("no check {prefix}: {v:#}"))
    };
    let busy = find(&format!("local port {p1}"));
    assert_eq!(busy["status"], "fail");
    assert_eq!(busy["code"], "WAR(10102)");
    assert!(
        busy["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("pid {}", std::process::id()))
    );
    assert_eq!(find(&format!("local port {p2}"))["status"], "ok");
    let refused = find(&format!("target {e2}"));
    assert_eq!(refused["status"], "fail");
    assert_eq!(refused["code"], "WAR(10103)");
    assert_eq!(find(&format!("target {e1}"))["status"], "ok");
}

#[test]
fn unreachable_gateway_skips_what_depends_on_it() {
    let (env, port) = env_with_closed_gateway();
    let out = env.run(&["doctor"]);
    assert!(!out.status.success());
    let text = &out.stdout;
    assert!(
        text.contains(&format!("FAIL TCP reach of 127.0.0.1:{port}: ERR(10202) ")),
        "{text}"
    );
    assert!(
        text.contains("SKIP gateway host key: needs TCP reach"),
        "{text}"
    );
    assert!(
        text.contains("OK   key unlocks on this PC: SHA256:"),
        "{text}"
    );
    assert!(text.contains("SKIP key approved"), "{text}");
    assert!(
        text.contains("SKIP rules fetched: needs the login"),
        "{text}"
    );
    assert!(text.contains("checks failed"), "{text}");
}

#[test]
fn no_address_and_no_passphrase() {
    let env = TestEnv::new();
    keygen_and_export(&env);
    let out = env.run_pass(Some("wrong"), &["doctor"]);
    assert!(!out.status.success());
    let text = &out.stdout;
    assert!(
        text.starts_with("FAIL gateway address set: ERR(10101) "),
        "{text}"
    );
    assert!(
        text.contains("FAIL key unlocks on this PC: ERR(10193) "),
        "{text}"
    );
}

#[test]
fn changed_host_key_fails_and_the_key_is_not_offered() {
    let rt = rt();
    let (_, _, env, sshd) = smtp_env(&rt);
    pin_other_host_key(&env, &sshd);
    let out = env.run(&["doctor"]);
    let text = &out.stdout;
    assert!(
        text.contains("FAIL gateway host key: ERR(10204) "),
        "{text}"
    );
    assert!(
        text.contains("SKIP key approved: the SSH connection failed"),
        "{text}"
    );
    assert!(!sshd.log().contains("publickey"), "{}", sshd.log());
}
