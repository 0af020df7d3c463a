//! `pra enroll INVITE` (the real binary) against the real gateway, with the
//! registry's HTTP API not listening at all: an invite made by the real
//! `pra-registry invite create` with `--approve` enrolls an empty home and
//! `pra connect` then carries data through a forward; without `--approve`
//! the key waits in `key list --status pending`. Reuse, revoke, expiry, a
//! tampered invite and a wrong host key each give their code.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pra_e2e::*;
use pra_proto::invite::Invite;
use std::path::Path;
use std::time::{Duration, Instant};

/// `pra-registry invite create --user USER --gateway ADDR [EXTRA…]`: the invite.
fn invite(reg: &Registry, user: &str, gw: &Gateway, extra: &[&str]) -> String {
    let addr = gw.addr.to_string();
    let mut args = vec!["invite", "create", "--user", user, "--gateway", &addr];
    args.extend_from_slice(extra);
    let o = reg.cli(&args);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let line = out.trim().to_string();
    assert!(line.starts_with("pra-invite:"), "{line}");
    line
}

/// `pra enroll` in `home`; must fail with one line starting with `code`.
fn refused(home: &Path, invite: &str, code: &str) -> String {
    let (ok, out, err) = run(pra(home, PASS).args(["enroll", invite]));
    assert!(!ok, "enroll succeeded: {out}");
    let line = err.trim_end();
    assert_eq!(line.lines().count(), 1, "{err}");
    assert!(line.starts_with(code), "want {code}: {line}");
    line.to_string()
}

/// Nothing stored in `home`: no key, no gateway.
fn nothing_stored(home: &Path) {
    assert!(!home.join("pra_ed25519").exists());
    let cfg = std::fs::read_to_string(home.join("config.toml")).unwrap_or_default();
    assert!(!cfg.contains("address"), "{cfg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_with_invites_then_connect() {
    let reg = Registry::without_api().await;
    assert!(std::net::TcpStream::connect(reg.api).is_err());
    reg.add_user("alice");
    reg.add_user("bob");
    let port = reg.echo_rule("alice", "intranet").await;
    let gw = reg.gateway(None).await;
    let dir = tempfile::tempdir().unwrap();

    // Approved at once: an empty home enrolls and connects.
    let code = invite(&reg, "alice", &gw, &["--approve"]);
    let home = dir.path().join("alice");
    let t = Instant::now();
    let (ok, out, err) = run(pra(&home, PASS).args(["enroll", &code]));
    assert!(ok, "{out}{err}");
    eprintln!("enroll took {:?}", t.elapsed());
    assert!(out.contains("approved"), "{out}");
    assert!(out.contains("pra connect"), "{out}");
    let fp = reg.fingerprint_of("alice");
    assert!(out.contains(&format!("fingerprint: {fp}")), "{out}");
    let user_log = std::fs::read_to_string(home.join("log").join("User.log")).unwrap();
    assert!(user_log.contains("enroll: key"), "{user_log}");
    assert!(!user_log.contains(PASS));
    let secret = Invite::decode(&code).unwrap().secret;
    assert!(
        !user_log.contains(secret.expose()),
        "the invite's secret is logged"
    );
    assert!(!user_log.contains(&code));

    // Reuse of the same invite (from another empty home): its code.
    let other = dir.path().join("reuse");
    refused(&other, &code, "ERR(10252)");

    let mut child = connect_json(&home, PASS);
    wait_forwarding(&mut child, "intranet", Duration::from_secs(30));
    assert_eq!(
        echo_roundtrip(port, b"enrolled via invite").await,
        b"enrolled via invite"
    );
    let _ = child.kill();
    let _ = child.wait();

    // Without --approve: pending, shown by `key list --status pending`.
    let code = invite(&reg, "bob", &gw, &[]);
    let home_b = dir.path().join("bob");
    let (ok, out, err) = run(pra(&home_b, PASS).args(["enroll", &code]));
    assert!(ok, "{out}{err}");
    assert!(out.contains("pending"), "{out}");
    let o = reg.cli(&["key", "list", "--status", "pending", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let keys = listed["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{listed}");
    assert_eq!(keys[0]["user"], "bob");
    assert!(out.contains(keys[0]["fingerprint"].as_str().unwrap()));

    // Revoked: its code.
    let code = invite(&reg, "bob", &gw, &[]);
    let id = Invite::decode(&code).unwrap().id;
    assert!(reg.cli(&["invite", "revoke", &id]).status.success());
    refused(&dir.path().join("revoked"), &code, "ERR(10253)");

    // Expired (checked on the client before anything is stored).
    let mut i = Invite::decode(&invite(&reg, "bob", &gw, &[])).unwrap();
    i.expires_at = 1_000_000;
    let h = dir.path().join("expired");
    refused(&h, &i.encode(), "ERR(10251)");
    nothing_stored(&h);

    // Tampered: one character changed.
    let good = invite(&reg, "bob", &gw, &[]);
    let mut bytes = good.clone().into_bytes();
    let n = bytes.len() - 10;
    bytes[n] = if bytes[n] == b'A' { b'B' } else { b'A' };
    let h = dir.path().join("tampered");
    refused(&h, &String::from_utf8(bytes).unwrap(), "ERR(10250)");
    nothing_stored(&h);

    // A wrong host key in a well-formed invite: ERR(10204), nothing stored,
    // and the invite still works afterwards.
    let mut i = Invite::decode(&good).unwrap();
    i.host_key = pra_proto::fingerprint(new_key().public_key());
    let h = dir.path().join("wrong-host-key");
    refused(&h, &i.encode(), "ERR(10204)");
    nothing_stored(&h);

    // A wrong secret: the gateway closes the connection.
    let mut i = Invite::decode(&good).unwrap();
    i.secret = pra_proto::invite::InviteSecret::new("not-the-secret".into());
    refused(&dir.path().join("wrong-secret"), &i.encode(), "ERR(10254)");

    assert_eq!(
        reg.store
            .list_keys(None)
            .unwrap()
            .iter()
            .filter(|k| k.user == "bob")
            .count(),
        1,
        "refused enrollments stored nothing"
    );
    gw.stop().await;
}
