//! `pra-registry session list` / `session disconnect` with the real binary
//! (SQLite in a temp `--data`; the PostgreSQL fleet test uses them too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::TestEnv;
use pra_registry::model::{NewSession, now};
use pra_registry::store::Store;

#[test]
fn sessions_are_listed_and_disconnects_asked_for_in_one_line() {
    let env = TestEnv::new();
    assert_eq!(env.ok(&["session", "list"]), "no live sessions\n");
    assert_eq!(
        env.json(&["session", "list", "--json"])["sessions"],
        serde_json::json!([])
    );
    let id = {
        let store = Store::sqlite(&env.data()).unwrap();
        store
            .session_open(&NewSession {
                gateway: "gw1.corp:10022".into(),
                user: "alice".into(),
                fingerprint: "SHA256:abc".into(),
                source: "198.51.100.7:50000".into(),
                started_at: now(),
            })
            .unwrap()
    };
    let table = env.ok(&["session", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].starts_with("ID  GATEWAY"), "{table}");
    for word in [
        "gw1.corp:10022",
        "alice",
        "SHA256:abc",
        "198.51.100.7:50000",
        "live",
    ] {
        assert!(lines[1].contains(word), "{word}: {table}");
    }
    let json = env.json(&["session", "list", "--json"]);
    assert_eq!(json["sessions"][0]["id"], id);
    assert_eq!(json["sessions"][0]["bytes_up"], 0);

    for (arg, code) in [
        ("0", "ERR(10301)"),
        ("x", "ERR(10301)"),
        ("999", "ERR(10303)"),
    ] {
        let line = env.run(&["session", "disconnect", arg]).error_line();
        assert!(line.starts_with(code), "{arg}: {line}");
    }
    let before = env.snapshot();
    let out = env.ok(&["session", "disconnect", &id.to_string()]);
    assert_eq!(
        out,
        format!(
            "asked gateway gw1.corp:10022 to disconnect session {id} of alice (from \
             198.51.100.7:50000); it ends within seconds\n"
        )
    );
    let after = env.snapshot();
    assert_eq!(after.revision, before.revision + 1);
    assert_eq!(after.audit, before.audit + 1);
    assert!(env.ok(&["session", "list"]).contains("disconnecting"));
    let audit = env.json(&["audit", "--kind", "session", "--json"]);
    assert_eq!(audit["events"][0]["kind"], "session.disconnect");
    assert!(
        audit["events"][0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("cli:")
    );
}
