//! `pra-registry rule …` through the real binary, with every bad rule input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::TestEnv;

#[test]
fn add_list_remove() {
    let env = TestEnv::new();
    env.ok(&["user", "add", "alice"]);
    env.ok(&["user", "add", "bob"]);
    assert_eq!(
        env.rule_add("alice", "smtp", "10025", "mail.corp:25"),
        "added rule smtp for alice: 127.0.0.1:10025 -> mail.corp:25\n"
    );
    assert_eq!(
        env.rule_add("alice", "ssh6", "2222", "[FE80::1]:22"),
        "added rule ssh6 for alice: 127.0.0.1:2222 -> [fe80::1]:22\n"
    );
    // another user may use the same name and local port
    env.rule_add("bob", "smtp", "10025", "10.0.0.5:25");

    let table = env.ok(&["rule", "list"]);
    assert_eq!(
        table,
        "USER   RULE  LOCAL            TARGET\n\
         alice  ssh6  127.0.0.1:2222   [fe80::1]:22\n\
         alice  smtp  127.0.0.1:10025  mail.corp:25\n\
         bob    smtp  127.0.0.1:10025  10.0.0.5:25\n"
    );
    let json = env.json(&["rule", "list", "--user", "alice", "--json"]);
    let rules = json["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0]["target_host"], "fe80::1");
    assert_eq!(rules[0]["local_port"], 2222);

    assert_eq!(
        env.ok(&["rule", "remove", "--user", "alice", "--name", "smtp"]),
        "removed rule smtp of alice\n"
    );
    assert_eq!(
        env.json(&["rule", "list", "--user", "alice", "--json"])["rules"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let audit = env.json(&["audit", "--json", "--kind", "rule"]);
    assert_eq!(audit["events"][0]["kind"], "rule.remove");
    assert_eq!(audit["events"][0]["detail"]["rule"], "smtp");
}

#[test]
fn every_bad_rule_is_refused_and_nothing_is_stored() {
    let env = TestEnv::new();
    env.ok(&["user", "add", "alice"]);
    env.rule_add("alice", "smtp", "10025", "mail.corp:25");
    let before = env.snapshot();
    let long_host = format!("{}{}.corp", "a".repeat(60), ".b".repeat(100));
    assert!(long_host.len() > 253);
    let long_label = format!("{}.corp", "a".repeat(64));
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        ("local port 0", args("alice", "imap", "0", "mail.corp:143"), "ERR(10301) invalid local port: 0 is outside 1–65535"),
        ("local port 65536", args("alice", "imap", "65536", "mail.corp:143"), "ERR(10301) invalid local port: 65536 is outside 1–65535"),
        ("local port -1", args("alice", "imap", "-1", "mail.corp:143"), "ERR(10301) invalid local port"),
        ("local port text", args("alice", "imap", "http", "mail.corp:143"), "ERR(10301) invalid local port: `http` is not a port number"),
        ("target port 0", args("alice", "imap", "10143", "mail.corp:0"), "ERR(10301) invalid target port: 0 is outside 1–65535"),
        ("target port 65536", args("alice", "imap", "10143", "mail.corp:65536"), "ERR(10301) invalid target port: 65536 is outside 1–65535"),
        ("no port", args("alice", "imap", "10143", "mail.corp"), "ERR(10301) invalid target: expected HOST:PORT"),
        ("empty host", args("alice", "imap", "10143", ":143"), "ERR(10301) invalid target host: it is empty"),
        ("over-long host", args("alice", "imap", "10143", &format!("{long_host}:143")), "ERR(10301) invalid target host: it is"),
        ("over-long label", args("alice", "imap", "10143", &format!("{long_label}:143")), "ERR(10301) invalid target host"),
        ("host with space", args("alice", "imap", "10143", "mail corp:143"), "ERR(10301) invalid target host: it contains spaces or control characters"),
        ("host with tab", args("alice", "imap", "10143", "mail\tcorp:143"), "ERR(10301) invalid target host: it contains spaces or control characters"),
        ("host with escape", args("alice", "imap", "10143", "mail\x1b[0m:143"), "ERR(10301) invalid target host: it contains spaces or control characters"),
        ("bare IPv6", args("alice", "imap", "10143", "fe80::1:143"), "ERR(10301) invalid target: an IPv6 address needs brackets"),
        ("bad IPv6", args("alice", "imap", "10143", "[fe80::zz]:143"), "ERR(10301) invalid target host: `fe80::zz` is not an IPv6 address"),
        ("unknown user", args("nobody", "imap", "10143", "mail.corp:143"), "ERR(10303) no user named nobody"),
        ("duplicate name", args("alice", "smtp", "10026", "mail.corp:587"), "ERR(10302) user alice already has a rule named smtp"),
        ("duplicate local port", args("alice", "smtp2", "10025", "mail.corp:587"), "ERR(10302) user alice already uses local port 10025 (rule smtp)"),
        ("bad rule name", args("alice", "im ap", "10143", "mail.corp:143"), "ERR(10301) invalid rule name"),
    ];
    for (what, a, want) in cases {
        let mut full = vec!["rule".to_string(), "add".to_string()];
        full.extend(a);
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        let line = env.run(&refs).error_line();
        assert!(line.starts_with(want), "{what}: {line}");
        assert!(
            !line.contains('\x1b') && !line.contains('\t'),
            "{what}: raw control in {line:?}"
        );
        assert_eq!(env.snapshot(), before, "{what}: something was stored");
    }
    let line = env
        .run(&["rule", "remove", "--user", "alice", "--name", "nope"])
        .error_line();
    assert!(
        line.starts_with("ERR(10303) user alice has no rule named nope"),
        "{line}"
    );
    assert_eq!(env.snapshot(), before);
}

fn args(user: &str, name: &str, local: &str, target: &str) -> Vec<String> {
    [
        "--user", user, "--name", name, "--local", local, "--target", target,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
