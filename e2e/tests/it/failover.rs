//! Several gateways of one registry (one store, one host key from the data
//! folder) and the real `pra` binary: `pra server set A B` with nothing
//! listening on A connects through B (a `WAR(10221)` line in User.log
//! names A); B
//! stopped while A is back, the same `pra connect` fails over to A and the
//! forward carries data again. `pra doctor` gives one line per gateway; a
//! gateway of another registry in the list is refused with `ERR(10204)`,
//! not skipped.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pra_e2e::*;
use std::path::Path;
use std::time::{Duration, Instant};

const PASS: &str = "failover passphrase, not for logs";
const T: Duration = Duration::from_secs(30);

/// The JSON lines of a running `pra connect --json`.
struct Lines(pra_testkit::process::Lines);

impl Lines {
    fn of(child: &mut std::process::Child) -> Lines {
        Lines(pra_testkit::process::Lines::of(
            child.stdout.take().unwrap(),
        ))
    }

    /// The next `connected` phase line.
    fn connected(&mut self, what: &str) -> serde_json::Value {
        self.wait(what, |v| v["event"] == "phase" && v["phase"] == "connected")
    }

    /// The next line (after those already seen) that `pred` accepts.
    fn wait(&mut self, what: &str, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let json = |l: &str| serde_json::from_str::<serde_json::Value>(l).ok();
        match self.0.wait(T, |l| json(l).is_some_and(|v| pred(&v))) {
            Some(l) => json(&l).unwrap(),
            None => panic!("no line: {what}: {:#?}", self.0.seen),
        }
    }
}

/// A registry without HTTP API where alice has rule `intranet` to a new
/// echo server: (registry, the rule's local port).
async fn alice_intranet_without_api() -> (Registry, u16) {
    let reg = Registry::without_api().await;
    reg.add_user("alice");
    let port = reg.echo_rule("alice", "intranet").await;
    (reg, port)
}

fn connected_to(v: &serde_json::Value, gw: &str) -> bool {
    v["event"] == "phase" && v["phase"] == "connected" && v["gateway"] == gw
}

/// `pra keygen` in `home`, the key imported and approved with the real
/// admin CLI.
fn approved_key(reg: &Registry, home: &Path) {
    ok(pra(home, PASS).args(["keygen", "--user", "alice"]));
    let file = home.join("alice.pub");
    ok(pra(home, PASS).args(["key", "export", file.to_str().unwrap()]));
    let o = reg.cli(&["key", "import", file.to_str().unwrap(), "--approve"]);
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_fails_over_between_the_gateways_of_one_registry() {
    let (reg, port) = alice_intranet_without_api().await;
    // A: started once for its port, then stopped: nothing listens there.
    let a = reg.gateway(None).await;
    let (a_addr, host_key) = (a.addr, a.host_key.clone());
    a.stop().await;
    assert!(std::net::TcpStream::connect(a_addr).is_err());
    let b = reg.gateway(None).await;
    assert_eq!(b.host_key, host_key, "the gateways share the host key");
    let (a_s, b_s) = (a_addr.to_string(), b.addr.to_string());

    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    approved_key(&reg, &home);
    let out = ok(pra(&home, PASS).args(["server", "set", &a_s, &b_s, "--host-key", &host_key]));
    assert_eq!(
        out,
        format!("gateway: {a_s}\nalternate gateway: {b_s}\nhost key: pinned {host_key}\n")
    );
    let cfg = std::fs::read_to_string(home.join("config.toml")).unwrap();
    assert!(cfg.contains(&format!("alternates = [\"{b_s}\"]")), "{cfg}");
    let shown: serde_json::Value =
        serde_json::from_str(&ok(pra(&home, PASS).args(["server", "show", "--json"]))).unwrap();
    assert_eq!(shown["gateway"], a_s.as_str());
    assert_eq!(shown["alternates"], serde_json::json!([b_s]));

    // A refuses the TCP connection: B is used, and the line says so.
    let mut child = connect_json(&home, PASS);
    let mut lines = Lines::of(&mut child);
    let v = lines.connected("connected to B");
    assert!(connected_to(&v, &b_s), "{v}");
    assert_eq!(v["connects"], 1);
    lines.wait("forwarding", |v| {
        v["name"] == "intranet" && v["state"] == "forwarding"
    });
    assert_eq!(echo_roundtrip(port, b"through B").await, b"through B");

    // A back, B gone while connected: the same process moves to A.
    let a = reg.gateway(Some(a_addr)).await;
    let t = Instant::now();
    b.stop().await;
    let v = lines.connected("reconnected");
    assert!(connected_to(&v, &a_s), "{v}");
    assert_eq!(v["connects"], 2);
    assert!(
        echo_works_within(port, Duration::from_secs(10)).await,
        "no data through A after the failover: {:#?}",
        lines.0.seen
    );
    eprintln!("failover to A took {:?}", t.elapsed());
    let _ = child.kill();
    let _ = child.wait();
    let user_log = std::fs::read_to_string(home.join("log").join("User.log")).unwrap();
    assert!(
        user_log.contains(&format!("connected to {b_s} as alice")),
        "{user_log}"
    );
    assert!(
        user_log.contains(&format!("reconnected to {a_s} as alice")),
        "{user_log}"
    );
    // Written by the tunnel itself: there even when B answered before a
    // reader of the state looked.
    let war = user_log
        .lines()
        .find(|l| l.contains("WAR(10221)"))
        .unwrap_or_else(|| panic!("no WAR(10221) line: {user_log}"));
    assert!(
        war.contains(&format!(
            "WAR(10221) the gateway {a_s} cannot be used (ERR(10202): cannot reach the gateway {a_s} over TCP"
        )) && war.contains(&format!("trying the gateway {b_s}: nothing to do")),
        "{war}"
    );
    assert_eq!(user_log.matches("WAR(10221)").count(), 1, "{user_log}");

    // Doctor: one line per gateway; B is down, the checks go on over A.
    let (success, out, _) = run(pra(&home, PASS).arg("doctor"));
    assert!(!success, "B is down, doctor passed: {out}");
    for line in [
        format!("OK   TCP reach of {a_s}: "),
        format!("FAIL alternate gateway {b_s}: ERR(10202) "),
        "OK   key approved: the gateway accepted user alice".to_string(),
    ] {
        assert!(out.contains(&line), "{line:?} missing in {out}");
    }

    // A gateway of another registry (another host key) first in the list:
    // refused with ERR(10204) at once, A is not tried behind its back.
    let other = Registry::without_api().await;
    let c = other.gateway(None).await;
    assert_ne!(c.host_key, host_key);
    let c_s = c.addr.to_string();
    let out = ok(pra(&home, PASS).args(["server", "set", &c_s, &a_s]));
    assert!(
        out.contains(&format!("host key: pinned {host_key}")),
        "the shared pin stays while A is in the list: {out}"
    );
    let (success, out, err) = run(pra(&home, PASS).arg("connect"));
    assert!(!success, "{out}");
    let line = err.trim_end();
    assert_eq!(line.lines().count(), 1, "{err}");
    assert!(line.starts_with("ERR(10204) "), "{line}");
    assert!(line.contains(&c_s), "{line}");
    assert!(!out.contains("connected to"), "{out}");

    a.stop().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_keeps_every_gateway_of_the_invite_in_its_order() {
    let (reg, port) = alice_intranet_without_api().await;
    let a = reg.gateway(None).await;
    let a_s = a.addr.to_string();
    a.stop().await;
    let b = reg.gateway(None).await;
    let b_s = b.addr.to_string();
    let o = reg.cli(&[
        "invite",
        "create",
        "--user",
        "alice",
        "--gateway",
        &a_s,
        "--gateway",
        &b_s,
        "--approve",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let code = String::from_utf8_lossy(&o.stdout).trim().to_string();

    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let out = ok(pra(&home, PASS).args(["enroll", &code]));
    assert!(
        out.contains(&format!("gateway: {b_s} (host key pinned)")),
        "{out}"
    );
    let cfg = std::fs::read_to_string(home.join("config.toml")).unwrap();
    assert_eq!(
        cfg,
        format!(
            "[server]\naddress = \"{a_s}\"\nalternates = [\"{b_s}\"]\nhost_key = \"{}\"\n",
            b.host_key
        )
    );

    // Connect goes past the unreachable first gateway.
    let mut child = connect_json(&home, PASS);
    let mut lines = Lines::of(&mut child);
    let v = lines.connected("connected");
    assert!(connected_to(&v, &b_s), "{v}");
    assert!(echo_works_within(port, Duration::from_secs(10)).await);
    let _ = child.kill();
    let _ = child.wait();
    b.stop().await;
}
