//! What a new admin trips on, with the real binary: output piped into a
//! reader that quits (`| head`) ends quietly, keys are found by the start
//! of their fingerprint, and a wrong session id points to `session list`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::{TestEnv, ed25519, fingerprint, line};

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let env = TestEnv::new();
    env.ok(&["user", "add", "alice"]);
    for i in 0..50 {
        env.rule_add(
            "alice",
            &format!("r{i}"),
            &(20000 + i).to_string(),
            "intranet.corp:443",
        );
    }
    let mut c = env.command();
    c.args(["rule", "list", "--json"]);
    let (status, err) = pra_testkit::process::with_stdout_closed(&mut c);
    assert_eq!((status.code(), err.as_str()), (Some(0), ""));
}

#[test]
fn keys_are_found_by_a_unique_fingerprint_prefix() {
    let env = TestEnv::new();
    env.ok(&["user", "add", "alice"]);
    let key = ed25519(7);
    let fp = fingerprint(&key);
    let file = env.file("k.pub", line(&key));
    env.ok(&["key", "import", file.to_str().unwrap(), "--user", "alice"]);
    let prefix = &fp[..11];
    assert_eq!(
        env.ok(&["key", "approve", prefix]),
        format!("approved {fp} of alice\n")
    );
    let other = if prefix.ends_with('A') { "B" } else { "A" };
    let missing = format!("{}{other}", &fp[..10]);
    assert_eq!(
        env.run(&["key", "revoke", &missing]).error_line(),
        format!(
            "ERR(10303) no key's fingerprint starts with {missing}: check the fingerprint with `pra-registry key list`"
        )
    );
    assert!(
        env.run(&["key", "revoke", "SHA256:ab"])
            .error_line()
            .starts_with("ERR(10301) invalid fingerprint"),
    );
    assert_eq!(
        env.ok(&["key", "revoke", prefix]),
        format!("revoked {fp} of alice\n")
    );
}

#[test]
fn a_wrong_session_id_points_to_session_list() {
    let env = TestEnv::new();
    for id in ["999", "x"] {
        let line = env.run(&["session", "disconnect", id]).error_line();
        assert!(
            line.ends_with(
                ": list the live sessions and their ids with `pra-registry session list`"
            ),
            "{id}: {line}"
        );
    }
}

#[test]
fn completions_and_man_page_come_from_the_command_definitions() {
    let env = TestEnv::new();
    let bash = env.ok(&["completions", "bash"]);
    assert!(
        bash.contains("_pra__registry()") && bash.contains("approve"),
        "{bash}"
    );
    let man = env.ok(&["manpage"]);
    assert!(man.contains(".TH pra-registry 1"), "{man}");
    assert!(!env.data().exists(), "generating opens no database");
}
