//! `pra-registry key …` through the real binary: import (hand-over file,
//! plain line, stdin), approve, revoke, list.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::event_fields;
use crate::common::key_import;
use crate::common::{TestEnv, device, ed25519, fingerprint, line};
use pra_proto::handover::Handover;

fn handover(seed: u8, user: &str) -> String {
    Handover {
        public_key: line(&ed25519(seed)),
        user: Some(user.into()),
        device: Some(device()),
    }
    .render()
}

#[test]
fn import_handover_file_then_approve_and_revoke() {
    let env = TestEnv::new();
    env.ok(&["user", "add", "alice"]);
    let fp = fingerprint(&ed25519(1));
    let file = env.file("alice.pra", handover(1, "alice"));
    let out = env.ok(&["key", "import", file.to_str().unwrap()]);
    assert_eq!(
        out,
        format!(
            "imported {fp} (ssh-ed25519) for alice: pending\napprove it with: pra-registry key approve {fp}\n"
        )
    );
    // idempotent
    let again = env.ok(&["key", "import", file.to_str().unwrap()]);
    assert!(
        again.starts_with(&format!("{fp} is already registered for alice: pending")),
        "{again}"
    );

    let list = env.ok(&["key", "list"]);
    assert!(list.starts_with("FINGERPRINT"), "{list}");
    assert!(
        list.contains(&fp) && list.contains("PC-01 (alice)") && list.contains("never"),
        "{list}"
    );
    let json = env.json(&["key", "list", "--status", "pending", "--json"]);
    assert_eq!(json["keys"][0]["fingerprint"], fp.as_str());
    assert_eq!(json["keys"][0]["device"]["computer"], "PC-01");
    assert_eq!(json["keys"][0]["public_key"], line(&ed25519(1)).as_str());
    assert_eq!(
        env.json(&["key", "list", "--status", "approved", "--json"])["keys"],
        serde_json::json!([])
    );

    assert_eq!(
        env.ok(&["key", "approve", &fp]),
        format!("approved {fp} of alice\n")
    );
    let k = &env.json(&["key", "list", "--status", "approved", "--json"])["keys"][0];
    assert!(k["approved_by"].as_str().unwrap().starts_with("cli:"));
    assert_eq!(
        env.ok(&["key", "revoke", &fp]),
        format!("revoked {fp} of alice\n")
    );
    assert_eq!(
        env.json(&["key", "list", "--json"])["keys"][0]["status"],
        "revoked"
    );
    // a revoked key stays revoked
    let r = env.run(&["key", "approve", &fp]);
    assert!(
        r.error_line().starts_with("ERR(10302) key SHA256:"),
        "{}",
        r.stderr()
    );
    let r = env.run(&["key", "import", file.to_str().unwrap(), "--approve"]);
    assert!(r.error_line().starts_with("ERR(10302) "), "{}", r.stderr());

    let kinds = event_fields(&env.json(&["audit", "--json", "--kind", "key"]), "kind");
    assert_eq!(kinds, ["key.revoke", "key.approve", "key.import"]);
}

#[test]
fn plain_line_needs_user_and_import_creates_the_account() {
    let env = TestEnv::new();
    let k = ed25519(5);
    let file = env.file("id.pub", format!("{}\n", line(&k)));
    let r = env.run(&["key", "import", file.to_str().unwrap()]);
    assert_eq!(
        r.error_line(),
        "ERR(10301) the file does not name a user: say whose key it is with --user NAME"
    );
    assert_eq!(env.snapshot().keys, 0);
    let mut import = key_import(&file, "dave");
    import.push("--approve");
    let out = env.ok(&import);
    assert_eq!(
        out,
        format!(
            "created user dave\nimported {} (ssh-ed25519) for dave: approved\n",
            fingerprint(&k)
        )
    );
    let users = env.json(&["user", "list", "--json"]);
    assert_eq!(users["users"][0]["name"], "dave");
    assert_eq!(users["users"][0]["enabled"], true);
}

#[test]
fn approve_flag_approves_an_already_pending_key() {
    let env = TestEnv::new();
    env.ok(&["user", "add", "alice"]);
    let file = env.file("a.pra", handover(1, "alice"));
    env.ok(&["key", "import", file.to_str().unwrap()]);
    let out = env.ok(&["key", "import", file.to_str().unwrap(), "--approve"]);
    assert!(out.contains(": approved"), "{out}");
}

#[test]
fn import_from_stdin() {
    let env = TestEnv::new();
    env.ok(&["user", "add", "erin"]);
    let r = env.run_stdin(&["key", "import", "-"], handover(7, "erin").as_bytes());
    assert!(r.success(), "{}", r.stderr());
    assert!(r.stdout().contains(&fingerprint(&ed25519(7))));
}

#[test]
fn conflicting_owner_and_mismatched_user_are_refused() {
    let env = TestEnv::new();
    env.ok(&["user", "add", "alice"]);
    env.ok(&["user", "add", "bob"]);
    let fp = fingerprint(&ed25519(1));
    env.ok(&[
        "key",
        "import",
        env.file("a.pra", handover(1, "alice")).to_str().unwrap(),
    ]);
    let before = env.snapshot();

    let r = env.run(&[
        "key",
        "import",
        env.file("b.pra", handover(1, "bob")).to_str().unwrap(),
    ]);
    assert_eq!(
        r.error_line(),
        format!(
            "ERR(10302) key {fp} is already registered to user alice: a key belongs to one user; the employee generates a new key for this account"
        )
    );
    let r = env.run(&[
        "key",
        "import",
        env.file("c.pra", handover(2, "alice")).to_str().unwrap(),
        "--user",
        "bob",
    ]);
    assert_eq!(
        r.error_line(),
        "ERR(10301) the file is for user alice but --user says bob: check whose key this is; drop --user to use the file's user"
    );
    for bad_fp in ["SHA256:sho", "MD5:aa", ""] {
        let r = env.run(&["key", "approve", bad_fp]);
        assert!(
            r.error_line().starts_with("ERR(10301) invalid fingerprint"),
            "{bad_fp}"
        );
    }
    let unknown = format!("SHA256:{}", "A".repeat(43));
    let r = env.run(&["key", "revoke", &unknown]);
    assert!(r.error_line().starts_with("ERR(10303) no key SHA256:AAAA"));
    assert_eq!(env.snapshot(), before);
    let r = env.run(&["key", "list", "--status", "bogus"]);
    assert!(
        r.error_line()
            .starts_with("ERR(10301) invalid value 'bogus'"),
        "{}",
        r.stderr()
    );
}

#[test]
fn windows_line_ends_and_byte_order_mark_are_fine() {
    let env = TestEnv::new();
    env.ok(&["user", "add", "alice"]);
    let crlf = format!("\u{feff}{}", handover(8, "alice").replace('\n', "\r\n"));
    let file = env.file("win.pra", crlf);
    let out = env.ok(&["key", "import", file.to_str().unwrap()]);
    assert!(out.contains(&fingerprint(&ed25519(8))), "{out}");
    let k = &env.json(&["key", "list", "--json"])["keys"][0];
    assert_eq!(k["device"]["computer"], "PC-01");
    assert_eq!(k["public_key"], line(&ed25519(8)).as_str());
}
