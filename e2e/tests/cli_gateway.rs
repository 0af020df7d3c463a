//! The `pra` binary against the real registry API and gateway: a submitted
//! key that waits for approval is refused with `ERR(10205)` and a non-zero
//! exit; once approved, `pra connect --json` forwards and stops on SIGTERM
//! with exit 0; `pra doctor` passes; `pra logs export` holds both logs and
//! no secret.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pra_e2e::*;
use pra_registry::store::Store;
use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

const PASS: &str = "e2e passphrase, not for logs";

fn run(c: &mut std::process::Command) -> (bool, String, String) {
    let o = c.output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_key_then_approved_connect_doctor_and_log_bundle() {
    let reg = Registry::start().await;
    reg.add_user("alice");
    let echo = echo_server().await;
    let port = rule_port();
    reg.add_rule("alice", "intranet", port, echo);
    let gw = reg.gateway(None).await;

    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let ok = |c: &mut std::process::Command| {
        let (ok, out, err) = run(c);
        assert!(ok, "{c:?} failed: {out}{err}");
        out
    };
    ok(pra(&home, PASS).args(["keygen", "--user", "alice"]));
    let submitted = ok(pra(&home, PASS).args(["key", "submit", "--registry", &reg.url()]));
    assert!(submitted.contains("pending"), "{submitted}");
    ok(pra(&home, PASS).args([
        "server",
        "set",
        &gw.addr.to_string(),
        "--host-key",
        &gw.host_key,
    ]));

    // Pending: a clear code, one line, non-zero exit, nothing listening.
    let (success, out, err) = run(pra(&home, PASS).arg("connect"));
    assert!(!success, "connect with a pending key succeeded: {out}");
    let line = err.trim_end();
    assert_eq!(line.lines().count(), 1, "{err}");
    assert!(
        line.starts_with("ERR(10205) the forwarding rules could not be fetched (ERR(10203)): "),
        "{line}"
    );
    assert!(
        line.contains("waiting for the administrator's approval"),
        "{line}"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());

    // Approved: connect forwards; SIGTERM stops it with exit 0.
    let fp = reg
        .store
        .list_keys(None)
        .unwrap()
        .into_iter()
        .find(|k| k.user == "alice")
        .unwrap()
        .fingerprint;
    reg.approve(&fp);
    let mut child = pra(&home, PASS)
        .args(["connect", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_forwarding(&mut child, "intranet", Duration::from_secs(30));
    assert_eq!(
        echo_roundtrip(port, b"via the gateway").await,
        b"via the gateway"
    );
    // The shell's builtin kill: no procps needed.
    let _ = std::process::Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status();
    let status =
        tokio::task::spawn_blocking(move || child.wait_with_output().map(|o| (o.status, o.stderr)))
            .await
            .unwrap()
            .unwrap();
    assert!(
        status.0.success(),
        "exit after SIGTERM: {:?} {}",
        status.0,
        String::from_utf8_lossy(&status.1)
    );

    // Doctor: every check passes (the connect above ended, the port is free).
    let doctor = ok(pra(&home, PASS).arg("doctor"));
    assert!(
        doctor.contains("OK   key approved: the gateway accepted user alice"),
        "{doctor}"
    );
    assert!(doctor.contains("doctor: all 9 checks passed"), "{doctor}");

    // The bundle: both logs, no passphrase, no key material.
    let zip_path = dir.path().join("bundle.zip");
    ok(pra(&home, PASS).args(["logs", "export", zip_path.to_str().unwrap()]));
    let mut z = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let mut texts = Vec::new();
    for i in 0..z.len() {
        let mut e = z.by_index(i).unwrap();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        texts.push((e.name().to_string(), b));
    }
    let names: Vec<&str> = texts.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"System.log") && names.contains(&"User.log"),
        "{names:?}"
    );
    let user_log = String::from_utf8_lossy(&texts.iter().find(|(n, _)| n == "User.log").unwrap().1)
        .into_owned();
    assert!(
        user_log.contains("ERR(10205)"),
        "the refused connect is in User.log: {user_log}"
    );
    assert!(user_log.contains("connected to"), "{user_log}");
    let key_file = std::fs::read_to_string(home.join("pra_ed25519")).unwrap();
    let secrets: Vec<&str> = std::iter::once(PASS)
        .chain(key_file.lines().filter(|l| !l.starts_with("-----")))
        .collect();
    let raw = std::fs::read(&zip_path).unwrap();
    for (name, bytes) in texts
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .chain([("zip", raw.as_slice())])
    {
        for s in &secrets {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "secret found in {name}"
            );
        }
    }
    gw.stop().await;
}
