//! One office behind one NAT address: a client there that keeps failing to
//! log in (junk keys) slows that address's logins, but an approved
//! colleague behind the same address still gets in with the real
//! `pra connect` well within its patience, and the bad client stays slowed.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pra_e2e::*;
use pra_testkit::ssh::Pinned;
use russh::client;
use russh::keys::PrivateKeyWithHashAlg;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_logins_from_an_address_do_not_lock_out_an_approved_neighbour() {
    let (reg, port, gw, _dir, home) = alice_intranet(PASS).await;
    ok(pra(&home, PASS).args(["key", "submit", "--registry", &reg.url()]));
    server_set(&home, PASS, &gw);
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
    let mut child = connect_json(&home, PASS);
    let brute = {
        let g = GatewayRef {
            addr: gw.addr,
            host_key: gw.host_key.clone(),
        };
        tokio::spawn(async move { g.junk().await })
    };
    let mut lines = Lines::of(&mut child);
    let limit = Duration::from_secs(25);
    let up = lines.until(limit.saturating_sub(started.elapsed()), |seen| {
        seen.iter()
            .any(|l| l.contains("\"name\":\"intranet\"") && l.contains("forwarding"))
    });
    if !up {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "pra connect not forwarding within {limit:?}: {:#?} {}",
            lines.seen,
            String::from_utf8_lossy(&out.stderr)
        );
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
        let mut c = client::connect(config, self.addr, Pinned::new(self.host_key.clone()))
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
