//! `pra keygen` with the real binary: fingerprint as `ssh-keygen -l` prints
//! it, no overwrite without --force, passphrase rules, and a key that stock
//! OpenSSH cannot open with the passphrase alone.
use crate::common;
use crate::common::{PASS, TestEnv, have, output, read};
use std::process::{Command, Stdio};

fn ssh_keygen(args: &[&str]) -> common::Out {
    assert!(
        have("ssh-keygen"),
        "ssh-keygen missing: run scripts/deps.sh"
    );
    let mut c = Command::new("ssh-keygen");
    c.args(args).stdin(Stdio::null());
    output(c)
}

#[test]
fn prints_the_fingerprint_exactly_as_ssh_keygen_does() {
    let env = TestEnv::new();
    let out = env.keygen("alice");
    let export = env.path("alice.pub");
    env.run(&["key", "export", export.to_str().unwrap()]).ok();
    let l = ssh_keygen(&["-l", "-f", export.to_str().unwrap()]);
    let line = l.ok().trim_end();
    assert!(
        line.starts_with("256 SHA256:") && line.ends_with(" (ED25519)"),
        "{line}"
    );
    assert!(line.contains(" alice@"), "comment user@computer: {line}");
    assert!(
        out.lines().any(|l| l == line),
        "keygen output {out:?} lacks the ssh-keygen line {line:?}"
    );
    let fp = line.split(' ').nth(1).unwrap();
    assert!(
        env.run(&["key", "show"])
            .ok()
            .contains(&format!("fingerprint: {fp}\n"))
    );
}

#[test]
fn the_passphrase_alone_does_not_open_the_key() {
    let env = TestEnv::with_key("alice");
    let key = env.key_file();
    let k = key.to_str().unwrap();
    // It is an encrypted OpenSSH key: ssh-keygen reads its public half …
    let public = ssh_keygen(&["-l", "-f", k]);
    assert!(public.ok().contains("SHA256:"), "{public:?}");
    // … but the user's passphrase does not decrypt it (nor does no passphrase).
    let y = ssh_keygen(&["-y", "-P", PASS, "-f", k]);
    assert!(!y.status.success(), "ssh-keygen opened the key: {y:?}");
    assert!(!y.stdout.contains("ssh-ed25519"), "{y:?}");
    let y = ssh_keygen(&["-y", "-P", "", "-f", k]);
    assert!(!y.status.success(), "{y:?}");
    assert!(read(&key).starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
}

#[cfg(unix)]
#[test]
fn key_file_is_0600_and_the_home_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::with_key("alice");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env.key_file()), 0o600);
    assert_eq!(mode(&env.home), 0o700);
}

#[test]
fn never_overwrites_without_force() {
    let env = TestEnv::with_key("alice");
    let key = read(&env.key_file());
    let meta = read(&env.home.join("pra_ed25519.meta"));
    let fp = meta
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    env.run(&["keygen", "--user", "bob"]).err(&format!(
        "ERR(10191) a key already exists at {} ({fp} for alice): ",
        env.key_file().display()
    ));
    assert_eq!(read(&env.key_file()), key);

    let out = env.run(&["keygen", "--user", "bob", "--force"]);
    assert!(
        out.ok().starts_with(&format!("replaced the old key {fp}")),
        "{out:?}"
    );
    assert_ne!(read(&env.key_file()), key);
    assert!(env.run(&["key", "show"]).ok().contains("user: bob\n"));
}

#[test]
fn bad_user_names_and_empty_passphrases_write_nothing() {
    let env = TestEnv::new();
    env.run_pass(Some(""), &["keygen", "--user", "alice"])
        .err("ERR(10195) the passphrase is empty: ");
    env.run(&["keygen", "--user", "al ice"])
        .err("ERR(10196) `al ice` is not a valid account name: ");
    env.run(&["keygen", "--user", ""]).err("ERR(10196) ");
    assert!(!env.key_file().exists());
    assert!(!env.home.join("pra_ed25519.meta").exists());
}

/// With no `PRA_PASSPHRASE` and no terminal, nothing is asked or written.
#[cfg(target_os = "linux")]
#[test]
fn without_terminal_or_env_the_passphrase_is_not_guessed() {
    let env = TestEnv::new();
    assert!(have("setsid"), "setsid (util-linux) missing");
    // setsid: a new session has no controlling terminal, whatever runs the tests.
    let mut c = Command::new("setsid");
    c.arg("-w")
        .arg(common::pra_bin())
        .arg("--home")
        .arg(&env.home);
    c.args(["keygen", "--user", "alice"])
        .env_remove("PRA_PASSPHRASE");
    common::clean_env(&mut c);
    c.stdin(Stdio::null());
    output(c).err("ERR(10197) cannot ask for the passphrase: ");
    assert!(!env.key_file().exists());
}

/// The real prompt on a pseudo-terminal (`script` from util-linux): asked
/// twice, a mismatch is refused, a match creates the key.
#[cfg(target_os = "linux")]
#[test]
fn prompt_asks_twice_and_refuses_a_mismatch() {
    let env = TestEnv::new();
    assert!(have("script"), "script (util-linux) missing");
    let typed = |input: &str| {
        let cmd = format!(
            "'{}' --home '{}' keygen --user alice",
            common::pra_bin(),
            env.home.display()
        );
        let mut c = Command::new("script");
        c.args(["-qec", &cmd, "/dev/null"])
            .env_remove("PRA_PASSPHRASE");
        common::clean_env(&mut c);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        (o.status, String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let (status, text) = typed("first one\nsecond one\n");
    assert!(!status.success(), "{text}");
    assert!(text.contains("Passphrase for the new key: "), "{text}");
    assert!(text.contains("Type the passphrase again: "), "{text}");
    assert!(
        text.contains("ERR(10195) the two passphrase entries differ"),
        "{text}"
    );
    assert!(!env.key_file().exists());

    let (status, text) = typed("same words\nsame words\n");
    assert!(status.success(), "{text}");
    assert!(text.contains("created the key of alice"), "{text}");
    // The key opens with what was typed (the submit fails later, at the network).
    let out = env.run_pass(
        Some("same words"),
        &[
            "key",
            "submit",
            "--registry",
            &format!("http://127.0.0.1:{}", common::closed_port()),
        ],
    );
    out.err("ERR(10210) ");
}
