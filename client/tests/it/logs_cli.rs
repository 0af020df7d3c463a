//! `pra logs export` with the real binary after a real `pra connect`
//! session: the zip holds both logs, the config, a fresh doctor report and
//! version info, and no secret (passphrase, private key, key file).
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::cli::{Running, rt, smtp_env};
use crate::common::net::echo_roundtrip;
use crate::common::{PASS, TestEnv};
use std::io::Read;
use std::time::Duration;

fn entries(zip_path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let f = std::fs::File::open(zip_path).unwrap();
    let mut z = zip::ZipArchive::new(f).unwrap();
    (0..z.len())
        .map(|i| {
            let mut e = z.by_index(i).unwrap();
            let mut b = Vec::new();
            e.read_to_end(&mut b).unwrap();
            (e.name().to_string(), b)
        })
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn bundle_has_both_logs_doctor_config_version_and_no_secret() {
    let rt = rt();
    let (_, port, env, sshd) = smtp_env(&rt);

    // A real session first, so the logs have content.
    let mut run = Running::start(&env, &[]);
    run.wait_line(Duration::from_secs(30), |l| l.starts_with("smtp"));
    assert_eq!(rt.block_on(echo_roundtrip(port, b"x")), b"x");
    let (status, _, _) = run.terminate();
    assert!(status.success());

    let zip_path = env.path("bundle.zip");
    let out = env.run(&["logs", "export", zip_path.to_str().unwrap()]);
    let text = out.ok();
    assert!(
        text.starts_with(&format!("wrote {}", zip_path.display())),
        "{text}"
    );
    let files = entries(&zip_path);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "System.log",
        "User.log",
        "config.toml",
        "doctor.txt",
        "doctor.json",
        "version.txt",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let get = |n: &str| {
        String::from_utf8_lossy(&files.iter().find(|(name, _)| name == n).unwrap().1).into_owned()
    };
    assert!(
        get("User.log").contains("connected to"),
        "{}",
        get("User.log")
    );
    assert!(get("System.log").contains("cipher="));
    assert!(get("config.toml").contains(&sshd.host_key));
    // PRA_PASSPHRASE was set: the doctor ran every check, all fine.
    let doctor = get("doctor.txt");
    assert!(doctor.contains("OK   key approved"), "{doctor}");
    assert!(doctor.contains("doctor: all 9 checks passed"), "{doctor}");
    assert!(
        get("version.txt").starts_with("pra "),
        "{}",
        get("version.txt")
    );
    assert!(get("version.txt").contains("key: SHA256:"));

    // No secret anywhere: passphrase, key file, private key material.
    let home = pra_client::home::Home::at(&env.home);
    let key =
        pra_client::keystore::load(&home, &pra_client::passphrase::Passphrase::new(PASS)).unwrap();
    let seed = key.key_data().ed25519().unwrap().private.to_bytes();
    let pem = key.to_openssh(ssh_key::LineEnding::LF).unwrap();
    let pem_body: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let key_file = std::fs::read_to_string(env.key_file()).unwrap();
    let file_body: Vec<&str> = key_file
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let raw = std::fs::read(&zip_path).unwrap();
    for (name, bytes) in files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .chain([("zip file", raw.as_slice())])
    {
        assert!(!contains(bytes, PASS.as_bytes()), "passphrase in {name}");
        assert!(!contains(bytes, &seed), "private key bytes in {name}");
        for l in pem_body.iter().chain(&file_body) {
            assert!(!contains(bytes, l.as_bytes()), "key material in {name}");
        }
    }
}

#[test]
fn without_passphrase_the_key_checks_are_skipped() {
    let env = TestEnv::new();
    // A key exists (without one the check fails with ERR(10190), as in
    // `pra doctor`): only unlocking it needs the passphrase.
    env.keygen("alice");
    let zip_path = env.path("out.zip");
    let out = env.run_pass(None, &["logs", "export", zip_path.to_str().unwrap()]);
    out.ok();
    let files = entries(&zip_path);
    let doctor = String::from_utf8_lossy(&files.iter().find(|(n, _)| n == "doctor.txt").unwrap().1)
        .into_owned();
    assert!(
        doctor.contains("FAIL gateway address set: ERR(10101)"),
        "{doctor}"
    );
    assert!(
        doctor.contains("SKIP key unlocks on this PC: not asked by the export; set PRA_PASSPHRASE"),
        "{doctor}"
    );
    let config =
        String::from_utf8_lossy(&files.iter().find(|(n, _)| n == "config.toml").unwrap().1)
            .into_owned();
    assert_eq!(config, "# no config.toml yet\n");
}

#[test]
fn unwritable_destination_is_10105() {
    let env = TestEnv::new();
    let bad = env.path("no/such/folder/out.zip");
    env.run_pass(None, &["logs", "export", bad.to_str().unwrap()])
        .err("ERR(10105) cannot write ");
}
