//! One office behind one NAT address: a client there that keeps failing to
//! log in (junk keys) slows that address's logins, but an approved
//! colleague behind the same address still gets in with the real
//! `pra connect` well within its patience, and the bad client stays slowed.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pra_e2e::*;
use pra_registry::store::Store;
use russh::client;
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASS: &str = "e2e passphrase, not for logs";

struct Pinned(String);

impl client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(matches!(key, PublicKeyOrCertificate::PublicKey { key, .. }
            if pra_proto::fingerprint(key) == self.0))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_logins_from_an_address_do_not_lock_out_an_approved_neighbour() {
    let reg = Registry::start().await;
    reg.add_user("alice");
    let echo = echo_server().await;
    let port = rule_port();
    reg.add_rule("alice", "intranet", port, echo);
    let gw = reg.gateway(None).await;

    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let ok = |c: &mut std::process::Command| {
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "{c:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    };
    ok(pra(&home, PASS).args(["keygen", "--user", "alice"]));
    ok(pra(&home, PASS).args(["key", "submit", "--registry", &reg.url()]));
    ok(pra(&home, PASS).args([
        "server",
        "set",
        &gw.addr.to_string(),
        "--host-key",
        &gw.host_key,
    ]));
    let fp = reg.store.list_keys(None).unwrap()[0].fingerprint.clone();
    reg.approve(&fp);

    // 12 refused logins from the shared address, 6 at a time (the gateway
    // holds at most 10 unauthenticated connections per address).
    for _ in 0..2 {
        let batch: Vec<_> = (0..6)
            .map(|_| {
                let g = GatewayRef {
                    addr: gw.addr,
                    host_key: gw.host_key.clone(),
                };
                tokio::spawn(async move { g.junk().await })
            })
            .collect();
        for j in batch {
            j.await.unwrap();
        }
    }

    // The approved colleague connects with the real client, while the bad
    // client's next attempt from the same address is held back.
    let started = Instant::now();
    let mut child = pra(&home, PASS)
        .args(["connect", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let brute = {
        let g = GatewayRef {
            addr: gw.addr,
            host_key: gw.host_key.clone(),
        };
        tokio::spawn(async move { g.junk().await })
    };
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let limit = Duration::from_secs(25);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.contains("\"name\":\"intranet\"") && l.contains("forwarding"))
    {
        let left = limit.saturating_sub(started.elapsed());
        match rx.recv_timeout(left) {
            Ok(l) => seen.push(l),
            Err(_) => {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "pra connect not forwarding within {limit:?}: {seen:#?} {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    let took = started.elapsed();
    eprintln!("pra connect from the penalized address forwarding after {took:?}");
    assert_eq!(
        echo_roundtrip(port, b"via the office").await,
        b"via the office"
    );

    let slowed = brute.await.unwrap();
    eprintln!("a further junk login from that address took {slowed:?}");
    assert!(
        slowed >= Duration::from_secs(8),
        "the brute force was not slowed: {slowed:?}"
    );

    let _ = std::process::Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit after SIGTERM: {status:?}");
    gw.stop().await;
}

/// What a junk login needs of the gateway (movable into tasks).
struct GatewayRef {
    addr: std::net::SocketAddr,
    host_key: String,
}

impl GatewayRef {
    /// One login with a fresh junk key from 127.0.0.1 (the address `pra`
    /// connects from too); how long its refusal took.
    async fn junk(&self) -> Duration {
        let config = Arc::new(client::Config::default());
        let mut c = client::connect(config, self.addr, Pinned(self.host_key.clone()))
            .await
            .unwrap();
        let t = Instant::now();
        let key = Arc::new(new_key());
        let answer = tokio::time::timeout(
            Duration::from_secs(40),
            c.authenticate_publickey("alice", PrivateKeyWithHashAlg::new(key, None)),
        )
        .await
        .expect("refusal within 40 s")
        .unwrap();
        assert!(!answer.success());
        t.elapsed()
    }
}
