//! `serve --log-format json`: every stderr line is one JSON object with
//! `timestamp`, `level`, `target` and `message`; gateway audit events carry
//! their stable fields (`kind`, `actor`, `user`, `fingerprint`, `source`,
//! `detail`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::fleet;

use crate::common::{TestEnv, random_ed25519};
use std::io::Read;
use std::process::{Command, Stdio};

/// Does the string field `field` of `line` start with `prefix`?
fn starts(line: &serde_json::Value, field: &str, prefix: &str) -> bool {
    line[field].as_str().unwrap().starts_with(prefix)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_logs_one_json_object_per_line_with_audit_fields() {
    let env = TestEnv::new();
    let key = env.approved_alice();
    let fp = env.ok(&["hostkey"]).trim().to_string();

    let (mut child, seen) = env.serve(&["--log-format", "json"], Stdio::piped(), &["ssh"]);
    let ssh = seen.addr("ssh");

    assert!(
        fleet::try_login(ssh, &fp, "alice", &random_ed25519())
            .await
            .is_err()
    );
    let c = fleet::try_login(ssh, &fp, "alice", &key)
        .await
        .unwrap_or_else(|_| panic!("alice's login refused"));
    drop(c);

    // stderr is read on a thread so a missing line fails the test after a
    // deadline instead of hanging it
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    // wait for the session to end in the log, then stop the server
    let mut bytes = Vec::new();
    while !String::from_utf8_lossy(&bytes).contains("\"kind\":\"session.end\"") {
        match rx.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(chunk) => bytes.extend(chunk),
            Err(e) => panic!(
                "no session.end within 30 s ({e}):\n{}",
                String::from_utf8_lossy(&bytes)
            ),
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    while let Ok(chunk) = rx.recv_timeout(std::time::Duration::from_secs(30)) {
        bytes.extend(chunk);
    }
    reader.join().unwrap();
    let text = String::from_utf8(bytes).unwrap();
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
    assert!(starts(&refused, "source", "127.0.0.1:"));
    let detail: serde_json::Value =
        serde_json::from_str(refused["detail"].as_str().unwrap()).unwrap();
    assert!(detail["reason"].is_string(), "{detail}");
    let start = audit("session.start");
    assert_eq!(start["user"], "alice");
    assert!(starts(&start, "fingerprint", "SHA256:"));
    assert!(starts(&start, "actor", "gateway:"));
    audit("session.end");
}
