//! `pra-registry user …` through the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::TestEnv;
use crate::common::event_fields;

#[test]
fn add_list_disable_enable() {
    let env = TestEnv::new();
    assert_eq!(env.ok(&["user", "add", "alice"]), "added user alice\n");
    assert_eq!(
        env.ok(&["user", "add", "bob.smith@corp"]),
        "added user bob.smith@corp\n"
    );
    let table = env.ok(&["user", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("USER "), "{table}");
    assert!(
        lines[1].starts_with("alice ") && lines[1].contains("enabled"),
        "{table}"
    );
    // columns line up: STATUS starts at the same offset in every line
    let col = lines[0].find("STATUS").unwrap();
    assert_eq!(&lines[1][col..col + 7], "enabled");
    assert_eq!(&lines[2][col..col + 7], "enabled");

    assert!(
        env.ok(&["user", "disable", "alice"])
            .starts_with("disabled user alice")
    );
    let json = env.json(&["user", "list", "--json"]);
    let users = json["users"].as_array().unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["name"], "alice");
    assert_eq!(users[0]["enabled"], false);
    assert_eq!(users[1]["enabled"], true);
    env.ok(&["user", "enable", "alice"]);
    assert_eq!(
        env.json(&["user", "list", "--json"])["users"][0]["enabled"],
        true
    );

    // every change is audited with the CLI actor
    let audit = env.json(&["audit", "--json"]);
    let kinds = event_fields(&audit, "kind");
    assert_eq!(
        kinds,
        ["user.enable", "user.disable", "user.add", "user.add"]
    );
    assert!(
        audit["events"][0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("cli:")
    );
}

#[test]
fn refusals_print_one_line_and_change_nothing() {
    let env = TestEnv::new();
    env.ok(&["user", "add", "alice"]);
    let before = env.snapshot();
    for (args, line) in [
        (
            vec!["user", "add", "alice"],
            "ERR(10302) user alice already exists: look at the existing record with `pra-registry user list`, `key list` or `rule list`",
        ),
        (
            vec!["user", "add", "al ice"],
            "ERR(10301) invalid user name: `al ice` is not allowed; use letters, digits, . _ @ -, starting with a letter or digit: correct the value named in the message and run the command again",
        ),
        (vec!["user", "add", "-x"], ""),
        (
            vec!["user", "disable", "nobody"],
            "ERR(10303) no user named nobody: check the name or fingerprint with `pra-registry user list`, `key list` or `rule list`",
        ),
        (
            vec!["user", "enable", "nobody"],
            "ERR(10303) no user named nobody",
        ),
    ] {
        let r = env.run(&args);
        let got = r.error_line();
        assert!(got.starts_with("ERR(1030"), "{args:?}: {got}");
        assert!(got.starts_with(line), "{args:?}: {got}");
    }
    let long = "x".repeat(65);
    assert!(
        env.run(&["user", "add", &long])
            .error_line()
            .contains("longer than 64")
    );
    assert!(
        env.run(&["user", "add", "a\u{1b}[31m"])
            .error_line()
            .contains("\\u{1b}")
    );
    assert_eq!(env.snapshot(), before);
}

#[test]
fn empty_registry_lists_say_so() {
    let env = TestEnv::new();
    assert!(env.ok(&["user", "list"]).starts_with("no users"));
    assert_eq!(env.ok(&["key", "list"]), "no keys\n");
    assert_eq!(env.ok(&["rule", "list"]), "no rules\n");
    assert_eq!(env.ok(&["audit"]), "no events\n");
    assert_eq!(
        env.json(&["user", "list", "--json"])["users"],
        serde_json::json!([])
    );
}

#[test]
fn data_folder_from_environment() {
    let env = TestEnv::new();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pra-registry"))
        .env("PRA_REGISTRY_DATA", env.data())
        .env_remove("PRA_DATABASE_URL")
        .args(["user", "add", "carol"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(env.ok(&["user", "list"]).contains("carol"));
    assert!(env.data().join("registry.db").is_file());
}
