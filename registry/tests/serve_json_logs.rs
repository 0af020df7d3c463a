//! `serve --log-format json`: every stderr line is one JSON object with
//! `timestamp`, `level`, `target` and `message`; gateway audit events carry
//! their stable fields (`kind`, `actor`, `user`, `fingerprint`, `source`,
//! `detail`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/fleet.rs"]
mod fleet;

use common::{TestEnv, random_ed25519};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_logs_one_json_object_per_line_with_audit_fields() {
    let env = TestEnv::new();
    let key = random_ed25519();
    let key_file = env.file("alice.pub", format!("{}\n", common::line(&key)));
    env.ok(&["user", "add", "alice"]);
    env.ok(&[
        "key",
        "import",
        key_file.to_str().unwrap(),
        "--user",
        "alice",
        "--approve",
    ]);
    let fp = env.ok(&["hostkey"]).trim().to_string();

    let mut child = env
        .command()
        .args([
            "serve",
            "--api",
            "127.0.0.1:0",
            "--ssh",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut ssh = None;
    for _ in 0..2 {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        if let Some(rest) = line.trim().strip_prefix("ssh listening on ") {
            ssh = Some(
                rest.split_once(' ')
                    .unwrap()
                    .0
                    .parse::<SocketAddr>()
                    .unwrap(),
            );
        }
    }
    let ssh = ssh.unwrap();

    assert!(
        fleet::try_login(ssh, &fp, "alice", &random_ed25519())
            .await
            .is_err()
    );
    let c = fleet::try_login(ssh, &fp, "alice", &key)
        .await
        .unwrap_or_else(|_| panic!("alice's login refused"));
    drop(c);

    let mut stderr = child.stderr.take().unwrap();
    // wait for the session to end in the log, then stop the server
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.contains("\"kind\":\"session.end\"") {
        let n = stderr.read(&mut buf).unwrap();
        assert!(n > 0, "serve ended early:\n{text}");
        text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    stderr.read_to_string(&mut text).unwrap();
    let _ = child.wait();

    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert!(lines.len() >= 4, "{text}");
    for l in &lines {
        for field in ["timestamp", "level", "target", "message"] {
            assert!(l[field].is_string(), "{field} missing in {l}");
        }
    }
    let audit = |kind: &str| {
        lines
            .iter()
            .find(|l| l["target"] == "pra_registry::audit" && l["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in\n{text}"))
            .clone()
    };
    let refused = audit("login.refused");
    assert_eq!(refused["user"], "alice");
    assert!(
        refused["source"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    let detail: serde_json::Value =
        serde_json::from_str(refused["detail"].as_str().unwrap()).unwrap();
    assert!(detail["reason"].is_string(), "{detail}");
    let start = audit("session.start");
    assert_eq!(start["user"], "alice");
    assert!(
        start["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("SHA256:")
    );
    assert!(start["actor"].as_str().unwrap().starts_with("gateway:"));
    audit("session.end");
}
