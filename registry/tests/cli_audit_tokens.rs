//! `pra-registry audit` and `token create` through the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::TestEnv;

#[test]
fn token_is_printed_once_and_only_its_hash_is_stored() {
    let env = TestEnv::new();
    let r = env.run(&["token", "create", "--name", "ci"]);
    assert!(r.success(), "{}", r.stderr());
    let token = r.stdout().trim().to_string();
    assert!(token.starts_with("pra_"), "{token}");
    assert_eq!(token.len(), 4 + 43, "32 random bytes, base64url");
    assert!(r.stderr().contains("shown only this once"));
    assert!(!r.stderr().contains(&token));

    let other = env.ok(&["token", "create", "--name", "ci2"]);
    assert_ne!(other.trim(), token);
    let line = env.run(&["token", "create", "--name", "ci"]).error_line();
    assert!(
        line.starts_with("ERR(10302) a token named ci already exists"),
        "{line}"
    );
    let line = env
        .run(&["token", "create", "--name", "bad name"])
        .error_line();
    assert!(line.starts_with("ERR(10301) invalid token name"), "{line}");

    // the secret is nowhere in the data folder, its hash is
    let hash = pra_registry::api::extract::token_hash(&token);
    let mut found_hash = false;
    for entry in std::fs::read_dir(env.data()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
        found_hash |= bytes.windows(hash.len()).any(|w| w == hash.as_bytes());
    }
    assert!(found_hash);
    let audit = env.ok(&["audit"]);
    assert!(
        audit.contains("token.create") && audit.contains("token=ci"),
        "{audit}"
    );
    assert!(!audit.contains(&token));
}

#[test]
fn audit_filters_and_limits() {
    let env = TestEnv::new();
    for u in ["alice", "bob", "carol"] {
        env.ok(&["user", "add", u]);
    }
    env.ok(&["user", "disable", "bob"]);
    let all = env.json(&["audit", "--json"]);
    assert_eq!(all["events"].as_array().unwrap().len(), 4);
    let bob = env.json(&["audit", "--json", "--user", "bob"]);
    let kinds: Vec<&str> = bob["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["user.disable", "user.add"]);
    let two = env.json(&["audit", "--json", "--limit", "2"]);
    assert_eq!(two["events"].as_array().unwrap().len(), 2);
    assert_eq!(two["events"][0]["kind"], "user.disable");
    let table = env.ok(&["audit", "--limit", "1"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("ID  TIME (UTC)"), "{table}");
    assert!(
        lines[1].contains("user.disable") && lines[1].contains("bob"),
        "{table}"
    );
    for bad in ["0", "1001", "x"] {
        let line = env.run(&["audit", "--limit", bad]).error_line();
        assert!(line.starts_with("ERR(10301) "), "{line}");
    }
}
