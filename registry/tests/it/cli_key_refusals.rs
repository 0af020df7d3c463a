//! Every bad key the issue lists, imported with the real binary: refused
//! with one line, and nothing stored (no key, no user, no audit event).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::key_import;
use crate::common::{TestEnv, bad_keys, ed25519, private_pem};

#[test]
fn every_bad_key_is_refused_and_nothing_is_stored() {
    let env = TestEnv::new();
    env.ok(&["user", "add", "alice"]);
    let before = env.snapshot();
    let cases = bad_keys(env.dir.path());
    assert!(cases.len() >= 10);
    for (i, (what, text, _api_code)) in cases.into_iter().enumerate() {
        let file = env.file(&format!("bad{i}.pub"), &text);
        // --user names an account that does not exist yet: a refused import
        // must not create it either.
        let r = env.run(&key_import(&file, "newcomer"));
        let line = r.error_line();
        assert!(line.starts_with("ERR(10301) invalid "), "{what}: {line}");
        assert!(r.stdout().is_empty(), "{what}: {}", r.stdout());
        assert_eq!(env.snapshot(), before, "{what}: something was stored");
    }
}

#[test]
fn refusal_reasons_are_specific() {
    let env = TestEnv::new();
    let cases = bad_keys(env.dir.path());
    let want = [
        "not an SSH key type",
        "not valid base64",
        "truncated",
        "does not match its data",
        "holds 2 keys",
        "PRIVATE key",
        "RSA key of 2048 bits; at least 3072",
        "DSA keys are no longer safe",
        "control characters",
        "1025 bytes long; at most 1024",
    ];
    assert_eq!(cases.len(), want.len());
    for (i, ((what, text, _), word)) in cases.into_iter().zip(want).enumerate() {
        let file = env.file(&format!("r{i}.pub"), &text);
        let line = env
            .run(&["key", "import", file.to_str().unwrap(), "--user", "x"])
            .error_line();
        assert!(line.contains(word), "{what}: {line}");
    }
}

#[test]
fn a_private_key_is_never_echoed() {
    let env = TestEnv::new();
    let pem = private_pem(&ed25519(9));
    let body: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    for (name, contents) in [
        ("id_ed25519", pem.clone()),
        // pasted without its armor lines
        ("partial", body.join("\n")),
        // a hand-over file with the private key appended
        ("mixed", format!("{}\n{pem}", common::line(&ed25519(9)))),
    ] {
        let file = env.file(name, &contents);
        let r = env.run(&["key", "import", file.to_str().unwrap(), "--user", "alice"]);
        let line = r.error_line();
        assert!(
            line.starts_with(
                "ERR(10301) invalid public key: this is a PRIVATE key; it was not stored"
            ),
            "{line}"
        );
        let all = format!("{}{}", r.stdout(), r.stderr());
        for secret_line in &body {
            assert!(!all.contains(secret_line), "{name}: echoed {secret_line}");
        }
        let r = env.run_stdin(
            &["key", "import", "-", "--user", "alice"],
            contents.as_bytes(),
        );
        assert!(r.error_line().contains("PRIVATE key"));
    }
    assert_eq!(env.snapshot().keys, 0);
    assert_eq!(env.snapshot().users, 0);
}

#[test]
fn oversized_and_binary_files_are_refused() {
    let env = TestEnv::new();
    let big = env.file("big", vec![b'a'; 70 * 1024]);
    let line = env
        .run(&["key", "import", big.to_str().unwrap(), "--user", "a"])
        .error_line();
    assert!(line.contains("larger than 65536 bytes"), "{line}");
    let bin = env.file("bin", [0xffu8, 0xfe, 0, 1, 2]);
    let line = env
        .run(&["key", "import", bin.to_str().unwrap(), "--user", "a"])
        .error_line();
    assert!(line.contains("not text"), "{line}");
    let missing = env.dir.path().join("missing.pub");
    let line = env
        .run(&["key", "import", missing.to_str().unwrap(), "--user", "a"])
        .error_line();
    assert!(line.starts_with("ERR(10301) cannot read "), "{line}");
}

#[test]
fn strong_rsa_keys_are_accepted() {
    let env = TestEnv::new();
    let (_, rsa3072) = common::ssh_keygen_rsa(env.dir.path(), 3072);
    let file = env.file("rsa.pub", &rsa3072);
    let out = env.ok(&key_import(&file, "rsa-user"));
    assert!(out.contains("(ssh-rsa) for rsa-user: pending"), "{out}");
}
