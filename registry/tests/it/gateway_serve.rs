//! The gateway inside the real `pra-registry serve` process: its host key
//! (made once in --data, fingerprint as `ssh-keygen -l` prints it, shown by
//! `pra-registry hostkey` and at start), a stock `ssh -N -L` through it, and
//! an admin change from a second CLI process ending the live session.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::TestEnv;
use crate::common::gateway::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ssh_keygen_fingerprint(path: &std::path::Path) -> String {
    let out = crate::common::ssh_keygen(&["-l", "-f"], path);
    // "256 SHA256:… comment (ED25519)"
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

#[test]
fn hostkey_prints_the_fingerprint_ssh_keygen_shows() {
    let env = TestEnv::new();
    let first = env.ok(&["hostkey"]);
    let fp = first.trim();
    assert!(fp.starts_with("SHA256:") && !fp.ends_with('='), "{first:?}");
    assert_eq!(first.lines().count(), 1);
    let key_file = env.data().join("ssh_host_ed25519_key");
    assert_eq!(ssh_keygen_fingerprint(&key_file), fp);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // stable, and --public gives a known_hosts-ready line with the same key
    let again = env.ok(&["hostkey", "--public"]);
    let mut lines = again.lines();
    assert_eq!(lines.next(), Some(fp));
    let public = lines.next().unwrap();
    assert!(public.starts_with("ssh-ed25519 "));
    let pub_file = env.file("gw.pub", format!("{public}\n"));
    assert_eq!(ssh_keygen_fingerprint(&pub_file), fp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_gateway_and_cli_changes_reach_live_sessions() {
    let env = TestEnv::new();
    let (key, fp, echo) = env.alice_echo().await;

    let (mut child, seen) = env.serve(&[], Stdio::null(), &["ssh"]);
    // "ssh listening on 127.0.0.1:PORT host key SHA256:…"
    assert_eq!(seen.host_key(), fp);
    let addr = seen.addr("ssh");

    // a stock OpenSSH client pinned to that key forwards through the gateway
    let public = env
        .ok(&["hostkey", "--public"])
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    let ssh = OpenSsh::for_gateway(addr.port(), &public, "alice", &key);
    let sock = ssh.dir.path().join("echo.sock");
    let mut tunnel = Tunnel::open(&ssh, &[(&sock, "127.0.0.1", echo.port())]).await;
    let data = pattern(100_000, 3);
    assert_eq!(echo_through(unix(&sock).await, data.clone()).await, data);

    // an admin disables the account from another process: ssh is thrown out
    let t = Instant::now();
    env.ok(&["user", "disable", "alice"]);
    loop {
        if !tunnel.alive() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "ssh still connected after {:?}",
            t.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "user disable (CLI) ended the OpenSSH session in {:?}",
        t.elapsed()
    );
    let audit = env.ok(&["audit"]);
    assert!(
        audit.contains("session.revoked") || audit.contains("user_disabled"),
        "{audit}"
    );

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "serve did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
