//! The `pra` binary against the real gateway, what a new user trips on:
//! a second `pra connect` on the same home is refused with `ERR(10111)`
//! naming the running one; revoking the key ends the running connect with
//! exactly one `ERR(10206)` line (no "reconnecting" warning, no retry) and
//! a non-zero exit status; a rule whose target refuses says so at connect
//! (`WAR(10103)` with the target's error) while its listener stays open
//! and the other rules forward.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pra_e2e::*;
use pra_proto::api::KeyStatus;
use pra_registry::model::Actor;
use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

/// `pra connect` (text output) in `home`, stdout piped.
fn connect_text(home: &std::path::Path, stderr: Stdio) -> std::process::Child {
    let mut c = pra(home, PASS);
    c.arg("connect").stdout(Stdio::piped()).stderr(stderr);
    c.spawn().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_connect_is_refused_and_revocation_ends_with_one_err_line() {
    let (reg, port, gw, _dir, home) = alice_intranet(PASS).await;
    let public = ok(pra(&home, PASS).args(["key", "export"]));
    let fp = reg.add_key("alice", public.lines().next().unwrap(), KeyStatus::Approved);
    server_set(&home, PASS, &gw);

    let mut child = connect_text(&home, Stdio::piped());
    let mut lines = Lines::of(&mut child);
    if !lines.until(Duration::from_secs(30), |seen| forwarding(seen, "intranet")) {
        let _ = child.kill();
        panic!("no forwarding line: {:#?}", lines.seen);
    }
    assert_eq!(echo_roundtrip(port, b"before").await, b"before");

    // A second connect on the same home: refused at once, naming the first.
    let o = pra(&home, PASS).arg("connect").output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "ERR(10111) PRA is already connected from {} (pra connect, pid {}): ",
            home.display(),
            child.id()
        )),
        "{err}"
    );
    assert_eq!(echo_roundtrip(port, b"still").await, b"still");

    // Revoked while connected: one ERR line, no retry, non-zero exit.
    reg.store
        .set_key_status(&fp, KeyStatus::Revoked, &Actor::Cli("e2e".into()))
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let waited = tokio::task::spawn_blocking(move || {
        let mut e = String::new();
        stderr.read_to_string(&mut e).unwrap();
        (child.wait().unwrap(), e)
    });
    let (status, err) = tokio::time::timeout(Duration::from_secs(30), waited)
        .await
        .expect("connect ends after the revocation")
        .unwrap();
    let seen = lines.finish();
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "ERR(10206) the administrator revoked the key {fp}; the gateway ended the session: \
             generate a new key with `pra keygen --user alice --force`"
        )),
        "{err}"
    );
    assert!(
        !seen
            .iter()
            .any(|l| l.contains("WAR(10220)") || l.contains("reconnect")),
        "{seen:#?}"
    );
    let user_log = std::fs::read_to_string(home.join("log/User.log")).unwrap();
    assert_eq!(user_log.matches("ERR(10206)").count(), 1, "{user_log}");
    assert!(!user_log.contains("WAR(10220)"), "{user_log}");
    // The home is free again.
    assert!(!home.join("connect.pid").exists());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_target_is_reported_at_connect() {
    let reg = Registry::start().await;
    reg.add_user("bob");
    let echo = echo_server().await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (p_ok, p_dead) = (rule_port(), rule_port());
    reg.add_rule("bob", "wiki", p_ok, echo);
    reg.add_rule("bob", "old-crm", p_dead, dead);
    let gw = reg.gateway(None).await;

    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let run = |args: &[&str]| {
        let o = pra(&home, PASS).args(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    run(&["keygen", "--user", "bob"]);
    let public = run(&["key", "export"]);
    reg.add_key("bob", public.lines().next().unwrap(), KeyStatus::Approved);
    server_set(&home, PASS, &gw);

    let mut child = connect_text(&home, Stdio::null());
    let mut lines = Lines::of(&mut child);
    // No program has used either forward yet.
    let want_dead = format!("WAR(10103) target refused: the gateway could not open {dead} (");
    let shown = lines.until(Duration::from_secs(30), |seen| {
        seen.iter()
            .any(|l| l.starts_with("old-crm") && l.contains(&want_dead))
            && forwarding(seen, "wiki")
    });
    if !shown {
        let _ = child.kill();
        panic!("no refused/forwarding lines: {:#?}", lines.seen);
    }
    let seen = &lines.seen;
    assert!(
        !seen
            .iter()
            .any(|l| l.starts_with("old-crm") && l.ends_with("forwarding")),
        "the refusing target was never shown as forwarding: {seen:#?}"
    );
    // The dead rule keeps listening; the other forwards.
    assert!(std::net::TcpStream::connect(("127.0.0.1", p_dead)).is_ok());
    assert_eq!(echo_roundtrip(p_ok, b"wiki").await, b"wiki");
    let _ = std::process::Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    gw.stop().await;
}
