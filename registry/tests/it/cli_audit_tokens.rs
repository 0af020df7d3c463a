//! `pra-registry audit` and `token create` through the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::TestEnv;
use crate::common::assert_only_hash_stored;
use crate::common::event_fields;

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
    assert_only_hash_stored(&env.data(), token.as_ref(), hash.as_ref());
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
    let kinds = event_fields(&bob, "kind");
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
