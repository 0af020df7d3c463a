//! `pra key show|export` and every way loading the key can fail, with the
//! real binary: wrong or empty passphrase, truncated or modified files,
//! loose permissions, and "another PC" made real with Linux namespaces.
use crate::common;
#[cfg(target_os = "linux")]
use crate::common::PASS;
use crate::common::{TestEnv, have, output, read};
use pra_proto::handover::Handover;
use std::process::{Command, Stdio};

/// A registry URL that refuses connections: reaching it means the key
/// was unlocked (the failure is then ERR(10210), not a key error).
fn nowhere() -> String {
    format!("http://127.0.0.1:{}", common::closed_port())
}

#[test]
fn show_and_export_need_no_passphrase() {
    let env = TestEnv::with_key("alice");
    let show = env.run_pass(None, &["key", "show"]);
    let text = show.ok();
    for field in [
        "fingerprint: SHA256:",
        "user: alice\n",
        "public key: ssh-ed25519 ",
        "created: ",
        "bound to: OS user ",
        "computer ",
        "OS machine id",
        "device tag: ",
    ] {
        assert!(text.contains(field), "{field:?} missing in {text}");
    }

    let stdout = env.run_pass(None, &["key", "export"]);
    let h = Handover::parse(stdout.ok()).unwrap();
    assert_eq!(h.user.as_deref(), Some("alice"));
    let device = h.device.unwrap();
    assert!(
        !device.computer.is_empty() && device.tag.len() == 16,
        "{device:?}"
    );
    assert!(
        h.public_key.starts_with("ssh-ed25519 ")
            && h.public_key
                .ends_with(&format!(" alice@{}", device.computer))
    );
    let key = ssh_key::PublicKey::from_openssh(&h.public_key).unwrap();
    assert!(text.contains(&format!("fingerprint: {}\n", pra_proto::fingerprint(&key))));

    let file = env.path("out/alice.pub");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let out = env.run_pass(None, &["key", "export", file.to_str().unwrap()]);
    assert!(
        out.ok()
            .starts_with("wrote the public key of alice (SHA256:"),
        "{out:?}"
    );
    assert_eq!(read(&file), stdout.stdout);
    if have("ssh-keygen") {
        let mut c = Command::new("ssh-keygen");
        c.args(["-l", "-f", file.to_str().unwrap()])
            .stdin(Stdio::null());
        let l = output(c);
        assert!(l.ok().contains(&pra_proto::fingerprint(&key)), "{l:?}");
    }
}

#[test]
fn missing_key_is_reported() {
    let env = TestEnv::new();
    for args in [
        &["key", "show"][..],
        &["key", "export"],
        &["key", "submit", "--registry", "http://127.0.0.1:1"],
    ] {
        env.run(args).err("ERR(10190) no key at ");
    }
}

#[test]
fn wrong_or_empty_passphrase_is_err_10193_and_changes_nothing() {
    let env = TestEnv::with_key("alice");
    let before = read(&env.key_file());
    let url = nowhere();
    env.run_pass(Some("not the passphrase"), &["key", "submit", "--registry", &url]).err(
        "ERR(10193) the key could not be unlocked: wrong passphrase (this PC's identity is unchanged): type the passphrase again",
    );
    env.run_pass(Some(""), &["key", "submit", "--registry", &url])
        .err("ERR(10193) the key could not be unlocked: the passphrase is empty: ");
    // The right one unlocks it; the failure is then the unreachable registry.
    env.run(&["key", "submit", "--registry", &url])
        .err("ERR(10210) ");
    assert_eq!(read(&env.key_file()), before);
    assert!(
        !env.config_file().exists(),
        "a failed submit wrote the config"
    );
}

#[test]
fn truncated_or_modified_files_are_err_10194() {
    let env = TestEnv::with_key("alice");
    let key_path = env.key_file();
    let meta_path = env.home.join("pra_ed25519.meta");
    let key = read(&key_path);
    let meta = read(&meta_path);
    let url = nowhere();

    let write_key = |text: &str| {
        std::fs::write(&key_path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    };

    // Truncated.
    write_key(&key[..key.len() / 2]);
    for args in [&["key", "show"][..], &["key", "submit", "--registry", &url]] {
        env.run(args).err(&format!(
            "ERR(10194) {} is truncated or not an OpenSSH private key: generate a new key",
            key_path.display()
        ));
    }
    assert_eq!(read(&key_path), key[..key.len() / 2]);

    // One character of the encrypted body changed (still valid base64).
    let lines: Vec<&str> = key.lines().collect();
    let mid = lines.len() / 2;
    let mut tampered: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let c = tampered[mid].remove(10);
    tampered[mid].insert(10, if c == 'A' { 'B' } else { 'A' });
    write_key(&(tampered.join("\n") + "\n"));
    env.run(&["key", "submit", "--registry", &url])
        .err("ERR(10194) ");

    // Restored key, but metadata of another key.
    write_key(&key);
    env.run(&["key", "show"]).ok();
    let other = TestEnv::new();
    other.keygen("alice");
    std::fs::copy(other.home.join("pra_ed25519.meta"), &meta_path).unwrap();
    env.run(&["key", "show"]).err(&format!(
        "ERR(10194) {} belongs to another key than {}",
        meta_path.display(),
        key_path.display()
    ));

    // Metadata missing.
    std::fs::remove_file(&meta_path).unwrap();
    env.run(&["key", "export"])
        .err(&format!("ERR(10194) cannot read {}", meta_path.display()));
    std::fs::write(&meta_path, &meta).unwrap();
    env.run(&["key", "show"]).ok();

    // keygen without --force still refuses to replace a damaged key.
    write_key("garbage");
    env.run(&["keygen", "--user", "alice"])
        .err("ERR(10191) a key already exists");
    assert_eq!(read(&key_path), "garbage");
}

#[cfg(unix)]
#[test]
fn key_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::with_key("alice");
    for mode in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(env.key_file(), std::fs::Permissions::from_mode(mode)).unwrap();
        env.run(&["key", "submit", "--registry", &nowhere()])
            .err(&format!(
                "ERR(10192) {} can be read by other users (mode {mode:o}): run `chmod 600 ",
                env.key_file().display()
            ));
    }
    std::fs::set_permissions(env.key_file(), std::fs::Permissions::from_mode(0o600)).unwrap();
    env.run(&["key", "show"]).ok();
}

/// Runs `pra` in new user + UTS + mount namespaces: its own host name and,
/// optionally, its own machine id bind-mounted over the system's. The
/// binary is the release code path; nothing in it can be told to pretend.
#[cfg(target_os = "linux")]
fn on_pc(
    env: &TestEnv,
    hostname: &str,
    machine_id: Option<&str>,
    pass: &str,
    args: &[&str],
) -> common::Out {
    let script = r#"
        set -e
        hostname "$1"
        if [ -n "$2" ]; then
            printf '%s\n' "$2" > "$3/machine-id"
            for f in /etc/machine-id /var/lib/dbus/machine-id; do
                if [ -e "$f" ]; then mount --bind "$3/machine-id" "$f"; fi
            done
        fi
        shift 3
        exec "$@"
    "#;
    let mut c = Command::new("unshare");
    c.args([
        "--user",
        "--map-root-user",
        "--uts",
        "--mount",
        "sh",
        "-c",
        script,
        "sh",
        hostname,
    ]);
    c.arg(machine_id.unwrap_or(""));
    c.arg(env.dir.path());
    c.arg(common::pra_bin())
        .arg("--home")
        .arg(&env.home)
        .args(args);
    common::clean_env(&mut c);
    c.env("PRA_PASSPHRASE", pass).stdin(Stdio::null());
    output(c)
}

#[cfg(target_os = "linux")]
fn require_namespaces() {
    let ok = have("unshare")
        && Command::new("unshare")
            .args(["--user", "--map-root-user", "--uts", "--mount", "true"])
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    assert!(
        ok,
        "these tests need unprivileged user namespaces (`unshare --user --map-root-user --uts --mount true` must work)"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn another_pc_cannot_open_the_key_and_the_error_says_what_changed() {
    require_namespaces();
    let env = TestEnv::new();
    let mid_a = "0123456789abcdef0123456789abcdef";
    let mid_b = "fedcba9876543210fedcba9876543210";
    let made = on_pc(
        &env,
        "pc-one",
        Some(mid_a),
        PASS,
        &["keygen", "--user", "alice"],
    );
    assert!(made.ok().contains(" alice@pc-one (ED25519)"), "{made:?}");
    let url = nowhere();
    let submit = ["key", "submit", "--registry", url.as_str()];

    // Same PC: the key opens (the failure is the unreachable registry).
    on_pc(&env, "pc-one", Some(mid_a), PASS, &submit).err("ERR(10210) ");
    on_pc(&env, "PC-ONE.corp.example", Some(mid_a), PASS, &submit).err("ERR(10210) ");

    on_pc(&env, "pc-two", Some(mid_a), PASS, &submit).err(
        "ERR(10193) the key could not be unlocked: this is not the PC it was made on: computer name (was pc-one, now pc-two) has changed since the key was made: generate a new key on this PC with `pra keygen --user alice --force` and have it approved again",
    );
    let line = on_pc(&env, "pc-one", Some(mid_b), PASS, &submit).stderr;
    assert!(
        line.starts_with("ERR(10193) the key could not be unlocked: this is not the PC it was made on: OS machine id (OS reinstalled or PC replaced) has changed"),
        "{line}"
    );
    assert!(
        !line.contains(mid_a) && !line.contains(mid_b),
        "machine id leaked: {line}"
    );
    on_pc(&env, "pc-one", Some(mid_a), "wrong", &submit)
        .err("ERR(10193) the key could not be unlocked: wrong passphrase");
}

#[cfg(target_os = "linux")]
#[test]
fn copying_key_and_passphrase_to_another_pc_fails() {
    require_namespaces();
    let env = TestEnv::new();
    on_pc(
        &env,
        "laptop-a",
        Some("11111111111111111111111111111111"),
        PASS,
        &["keygen", "--user", "alice"],
    )
    .ok();
    // The whole home (key + metadata) copied to another PC, passphrase known.
    let stolen = TestEnv::new();
    std::fs::create_dir_all(&stolen.home).unwrap();
    for f in ["pra_ed25519", "pra_ed25519.meta"] {
        std::fs::copy(env.home.join(f), stolen.home.join(f)).unwrap();
    }
    let url = nowhere();
    let out = on_pc(
        &stolen,
        "laptop-b",
        Some("22222222222222222222222222222222"),
        PASS,
        &["key", "submit", "--registry", &url],
    );
    let line =
        out.err("ERR(10193) the key could not be unlocked: this is not the PC it was made on: ");
    assert!(
        line.contains("computer name (was laptop-a, now laptop-b)")
            && line.contains("OS machine id"),
        "{line}"
    );
    // Even with the computer name faked, the machine id keeps it shut.
    on_pc(
        &stolen,
        "laptop-a",
        Some("22222222222222222222222222222222"),
        PASS,
        &["key", "submit", "--registry", &url],
    )
    .err("ERR(10193) ");
}
