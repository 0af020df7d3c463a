//! Memory per session is bounded: one session with 128 forwards to a target
//! that never reads, each pushed until its window is spent, adds at most
//! 64 MiB to the real `pra-registry serve` process's resident size, and the
//! resident size returns near its idle level once the session ended.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::gateway::{Pinned, add_key_to, add_rule_to, admin, silent_server};
use crate::common::{TestEnv, random_ed25519};
use pra_proto::api::KeyStatus;
use pra_registry::store::Store;
use russh::client;
use russh::keys::PrivateKeyWithHashAlg;
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const MIB: u64 = 1024 * 1024;

fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `serve` on 127.0.0.1:0: the process, the SSH address and host key.
fn serve(env: &TestEnv) -> (Served, SocketAddr, String) {
    let (child, seen) = env.serve(&[], Stdio::null(), &["ssh"]);
    (Served(child), seen.addr("ssh"), seen.host_key())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_with_128_stalled_forwards_costs_at_most_64_mib() {
    let _alone = crate::common::alone().await;
    let env = TestEnv::new();
    let target = silent_server().await;
    let key = random_ed25519();
    {
        let store = Store::sqlite(&env.data()).unwrap();
        store.add_user("mem", &admin()).unwrap();
        add_key_to(&store, "mem", &key, KeyStatus::Approved);
        add_rule_to(&store, "mem", "silent", 15000, "127.0.0.1", target.port());
    }
    let (served, ssh, fp) = serve(&env);
    let pid = served.0.id();

    let mut c = client::connect(Arc::new(client::Config::default()), ssh, Pinned::new(fp))
        .await
        .unwrap();
    assert!(
        c.authenticate_publickey("mem", PrivateKeyWithHashAlg::new(Arc::new(key), None))
            .await
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss(pid);

    // 128 forwards, each written to as fast as its window allows
    let sent = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for _ in 0..128 {
        let ch = c
            .channel_open_direct_tcpip("127.0.0.1", u32::from(target.port()), "127.0.0.1", 40000)
            .await
            .unwrap();
        let sent = Arc::clone(&sent);
        writers.push(tokio::spawn(async move {
            let mut s = ch.into_stream();
            let chunk = vec![0x42u8; 32 * 1024];
            while s.write_all(&chunk).await.is_ok() {
                sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        }));
    }
    // until nothing moves any more (every window spent, the target's
    // socket buffers full)
    let start = Instant::now();
    let mut last = 0;
    let mut peak = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        peak = peak.max(rss(pid));
        let now = sent.load(Ordering::Relaxed);
        if now == last && now > 0 {
            break;
        }
        last = now;
        assert!(start.elapsed() < Duration::from_secs(60), "still moving");
    }
    let stalled = rss(pid);
    let added = peak.max(stalled).saturating_sub(idle);
    eprintln!(
        "idle {} MiB, 128 stalled forwards: {} MiB sent, gateway RSS +{} MiB",
        idle / MIB,
        last / MIB,
        added / MIB
    );
    assert!(last > 16 * MIB, "the forwards did not take data: {last}");
    assert!(added <= 64 * MIB, "one session added {} MiB", added / MIB);

    // the session ends: memory goes back
    for w in &writers {
        w.abort();
    }
    c.disconnect(russh::Disconnect::ByApplication, "", "en")
        .await
        .unwrap();
    drop(c);
    let start = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = rss(pid);
        if now <= idle + 8 * MIB {
            eprintln!(
                "after the session: RSS {} MiB within {:?}",
                now / MIB,
                start.elapsed()
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "RSS {} MiB 15 s after the session ended (idle {} MiB)",
            now / MIB,
            idle / MIB
        );
    }
}
