//! What a new user trips on, with the real binary: output into a closed
//! pipe ends quietly, usage errors are one coded line, `--help` names the
//! default home, log bundles never replace each other and carry real
//! times, and the helpdesk finds key and gateway changes in the logs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::{TestEnv, closed_port, output, pra_bin, read};
use std::io::Read;
use std::process::Command;

/// Run with stdout a pipe whose reader is already gone (`| head -0`).
fn closed_stdout(mut c: Command) -> (std::process::ExitStatus, String) {
    pra_testkit::process::with_stdout_closed(&mut c)
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let env = TestEnv::new();
    let mut c = env.command(None);
    c.arg("doctor");
    let (status, err) = closed_stdout(c);
    assert_eq!(err, "", "nothing on stderr");
    assert!(status.success(), "{status:?}");

    env.keygen("alice");
    let mut c = env.command(None);
    c.args(["key", "export"]);
    let (status, err) = closed_stdout(c);
    assert_eq!((status.code(), err.as_str()), (Some(0), ""));
}

#[test]
fn usage_errors_are_one_coded_line_with_exit_2() {
    let env = TestEnv::new();
    let out = env.run(&["key", "export", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{out:#?}");
    assert_eq!(
        out.stderr,
        "ERR(10110) unexpected argument '--json' found: usage: pra key export [OPTIONS] [FILE]; see `pra key export --help`\n"
    );
    let out = env.run(&["keygen"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        out.stderr.lines().next().unwrap(),
        "ERR(10110) the following required arguments were not provided: --user <NAME>: usage: pra keygen --user <NAME>; see `pra keygen --help`"
    );
    assert_eq!(out.stderr.lines().count(), 1);
    assert!(!env.home.exists(), "a usage error touches nothing");
}

#[test]
fn help_opens_with_the_purpose_and_shows_the_default_home() {
    let fake_home = tempfile::tempdir().unwrap();
    let mut c = Command::new(pra_bin());
    common::clean_env(&mut c);
    c.env("HOME", fake_home.path())
        .env_remove("XDG_DATA_HOME")
        .arg("--help");
    let out = output(c);
    assert!(out.status.success(), "{out:#?}");
    assert_eq!(
        out.stdout.lines().next().unwrap(),
        "PRA: SSH port-forwarding client for remote employees"
    );
    if cfg!(target_os = "linux") {
        let want = format!("[default: {}/.local/share/pra]", fake_home.path().display());
        assert!(out.stdout.contains(&want), "{want} not in {}", out.stdout);
    }
}

fn zip_entries(path: &std::path::Path) -> Vec<(String, zip::DateTime)> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..z.len())
        .map(|i| {
            let e = z.by_index(i).unwrap();
            (e.name().to_string(), e.last_modified().unwrap_or_default())
        })
        .collect()
}

#[test]
fn log_bundles_get_unique_names_real_times_and_the_real_os_error() {
    let env = TestEnv::new();
    let cwd = env.path("out");
    std::fs::create_dir_all(&cwd).unwrap();
    for _ in 0..2 {
        let mut c = env.command(None);
        c.current_dir(&cwd).args(["logs", "export"]);
        let out = output(c);
        assert!(out.stdout.starts_with("wrote pra-logs-"), "{out:#?}");
    }
    let mut zips: Vec<_> = std::fs::read_dir(&cwd)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    zips.sort();
    assert_eq!(zips.len(), 2, "two exports, two files: {zips:?}");
    let entries = zip_entries(&zips[0]);
    assert!(entries.len() >= 6, "{entries:?}");
    for (name, t) in &entries {
        assert!(t.year() >= 2024, "{name} dated {t:?}");
    }

    let out = env.run(&["logs", "export", "/nonexistent/dir/x.zip"]);
    let line = out.err("ERR(10105) cannot write /nonexistent/dir/x.zip: ");
    assert!(line.contains("No such file or directory"), "{line}");
    assert!(
        line.ends_with(
            "the folder /nonexistent/dir does not exist: create it or choose another output file"
        ),
        "{line}"
    );
}

#[test]
fn key_and_gateway_changes_are_in_the_logs_and_a_failed_connect_once() {
    let env = TestEnv::new();
    let fp1 = env.keygen("alice");
    let fp1 = fp1
        .lines()
        .find_map(|l| l.split_whitespace().find(|w| w.starts_with("SHA256:")))
        .unwrap()
        .to_string();
    let forced = env.run(&["keygen", "--user", "alice", "--force"]);
    forced.ok();
    let gw = format!("127.0.0.1:{}", closed_port());
    let pin_a = "SHA256:O0dkuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10";
    let pin_b = "SHA256:AAAAuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10";
    env.run(&["server", "set", &gw, "--host-key", pin_a]).ok();
    env.run(&["server", "set", &gw, "--host-key", pin_b]).ok();
    let reg = format!("http://127.0.0.1:{}", closed_port());
    env.run(&["key", "submit", "--registry", &reg])
        .err("ERR(10210)");
    let failed = env.run(&["connect"]);
    failed.err("ERR(10202)");
    // Never connected: not "disconnected".
    assert!(
        failed
            .stdout
            .ends_with(&format!("could not connect to {gw}\n"))
            && !failed.stdout.contains("disconnected"),
        "{failed:#?}"
    );

    let user_log = read(&env.home.join("log/User.log"));
    let system_log = read(&env.home.join("log/System.log"));
    for want in [
        "keygen: created the key SHA256:".to_string(),
        format!("keygen --force: replaced the key {fp1} of alice with SHA256:"),
        format!("server set: gateway {gw}, host key pinned {pin_a}"),
        format!("server set: pinned host key replaced: {pin_a} → {pin_b}"),
        "key submit failed: ERR(10210)".to_string(),
    ] {
        assert!(
            user_log.contains(&want),
            "{want:?} not in User.log:\n{user_log}"
        );
        assert!(system_log.contains(&want), "{want:?} not in System.log");
    }
    assert_eq!(
        user_log.matches("ERR(10202)").count(),
        1,
        "a failed connect is one line in User.log:\n{user_log}"
    );
}

#[cfg(unix)]
#[test]
fn key_show_on_a_readable_key_file_shows_and_warns_and_fixes_name_the_user() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::with_key("alice");
    std::fs::set_permissions(env.key_file(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.run(&["key", "show"]);
    assert!(out.status.success(), "{out:#?}");
    assert!(out.stdout.starts_with("fingerprint: SHA256:"), "{out:#?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:#?}");
    assert!(
        out.stderr.starts_with(&format!(
            "WAR(10112) {} can be read by other users (mode 644); only the public data is shown: run `chmod 600 ",
            env.key_file().display()
        )),
        "{out:#?}"
    );
    let json: serde_json::Value =
        serde_json::from_str(env.run(&["key", "show", "--json"]).ok()).unwrap();
    assert_eq!(json["user"], "alice");
    assert_eq!(json["warning"]["label"], "WAR(10112)");
    // Unlocking still refuses such a file.
    env.run(&["key", "submit", "--registry", "http://127.0.0.1:9"])
        .err("ERR(10192)");
    std::fs::set_permissions(env.key_file(), std::fs::Permissions::from_mode(0o600)).unwrap();

    // The fix names the real command.
    env.run(&["keygen", "--user", "alice"])
        .err("ERR(10191) a key already exists at ");
    let line = env.run(&["keygen", "--user", "alice"]).stderr;
    assert!(
        line.trim_end().ends_with(
            ": keep using it, or run `pra keygen --user alice --force` to replace it (it must then be approved again)"
        ),
        "{line}"
    );
    let wrong = env.run_pass(
        Some("not the passphrase"),
        &["key", "submit", "--registry", "http://127.0.0.1:9"],
    );
    let line = wrong.err("ERR(10193) the key could not be unlocked: wrong passphrase");
    assert!(
        line.contains("run `pra keygen --user alice --force`"),
        "{line}"
    );
}

#[test]
fn key_show_and_server_show_speak_json() {
    let env = TestEnv::new();
    let fp = env.keygen("alice");
    let json: serde_json::Value =
        serde_json::from_str(env.run(&["key", "show", "--json"]).ok()).unwrap();
    assert!(fp.contains(json["fingerprint"].as_str().unwrap()), "{json}");
    assert_eq!(json["user"], "alice");
    assert!(
        json["public_key"]
            .as_str()
            .unwrap()
            .starts_with("ssh-ed25519 ")
    );
    assert!(json["warning"].is_null());
    env.run(&["server", "set", "gw.example.com"]).ok();
    let out = env.run(&["server", "show", "--json"]);
    let json: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"gateway": "gw.example.com:10022", "host_key": null, "registry": null})
    );
    assert_eq!(out.stdout.lines().count(), 1);
}

/// The app and the log bundle run the doctor without the passphrase: a
/// missing key is still a FAIL with its code there, as in `pra doctor`.
#[test]
fn doctor_without_passphrase_gives_the_same_key_verdict() {
    let env = TestEnv::new();
    env.run(&["server", "set", "127.0.0.1:9"]).ok();
    let want = "FAIL key unlocks on this PC: ERR(10190) no key at ";
    let doctor = env.run_pass(None, &["doctor"]);
    assert!(doctor.stdout.contains(want), "{doctor:#?}");
    let zip_path = env.path("b.zip");
    env.run_pass(None, &["logs", "export", zip_path.to_str().unwrap()])
        .ok();
    let mut z = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let mut text = String::new();
    z.by_name("doctor.txt")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains(want), "{text}");
}

#[test]
fn completions_and_man_page_come_from_the_command_definitions() {
    let env = TestEnv::new();
    for (shell, marker) in [
        ("bash", "_pra()"),
        ("zsh", "#compdef pra"),
        ("fish", "complete -c pra"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = env.run(&["completions", shell]);
        assert!(out.ok().contains(marker), "{shell}: {}", out.stdout);
        assert!(out.stdout.contains("keygen"), "{shell}");
    }
    let man = env.run(&["manpage"]);
    assert!(
        man.ok()
            .contains("pra \\- PRA: SSH port\\-forwarding client for remote employees"),
        "{}",
        man.stdout
    );
    assert!(!env.home.exists(), "generating touches no home");
}
