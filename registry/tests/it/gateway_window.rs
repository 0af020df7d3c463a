//! Receive windows that follow the link: over a long round trip, a forward
//! whose target keeps up gets a larger window; one whose target never reads
//! does not. Observed from the client: how much it can push beyond what the
//! target took before the target, having stopped reading, holds it back:
//! the channel's window plus the kernel's buffers towards the target (the
//! target's receive buffer is kept small). And a busy forward, its window
//! full, keeps going through the gateway's key renewals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::gateway::*;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MIB: u64 = 1024 * 1024;
/// Bytes the reading target takes before it stops reading.
const READ_FIRST: u64 = 96 * MIB;

/// A proxy on 127.0.0.1 to `upstream` that delays each direction by
/// `one_way` (unlimited bandwidth, order kept).
async fn delay_proxy(upstream: SocketAddr, one_way: Duration) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((down, _)) = l.accept().await {
            let up = TcpStream::connect(upstream).await.unwrap();
            let (dr, dw) = down.into_split();
            let (ur, uw) = up.into_split();
            tokio::spawn(carry(dr, uw, one_way));
            tokio::spawn(carry(ur, dw, one_way));
        }
    });
    addr
}

async fn carry(
    mut rd: tokio::net::tcp::OwnedReadHalf,
    mut wr: tokio::net::tcp::OwnedWriteHalf,
    one_way: Duration,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    tokio::spawn(async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if wr.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 256 * 1024];
    while let Ok(n) = rd.read(&mut buf).await {
        if n == 0
            || tx
                .send((tokio::time::Instant::now() + one_way, buf[..n].to_vec()))
                .is_err()
        {
            break;
        }
    }
}

/// A target that reads `first` bytes of each connection, then never again;
/// its receive buffer is 64 KiB.
async fn reads_then_stalls(first: u64) -> SocketAddr {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(64 * 1024).unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let l = sock.listen(64).unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 256 * 1024];
                let mut left = first;
                while left > 0 {
                    let want = buf.len().min(left as usize);
                    match s.read(&mut buf[..want]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => left -= n as u64,
                    }
                }
                std::future::pending::<()>().await;
                drop(s);
            });
        }
    });
    addr
}

/// Push into one forward until the target holds it back; bytes pushed
/// beyond what the target took.
async fn pushed_beyond(
    gw: &Gateway,
    via: SocketAddr,
    key: &ssh_key::PrivateKey,
    port: u16,
    took: u64,
) -> u64 {
    let c = match try_login_at(via, &gw.fingerprint(), "alice", key).await {
        Ok(c) => c,
        Err(_) => panic!("no login through {via}"),
    };
    let s = forward(&c, "127.0.0.1", u32::from(port)).await.unwrap();
    let pushed = Arc::new(AtomicU64::new(0));
    let p2 = pushed.clone();
    let (_r, mut w) = tokio::io::split(s);
    let pusher = tokio::spawn(async move {
        let chunk = vec![0x5au8; 64 * 1024];
        while w.write_all(&chunk).await.is_ok() {
            p2.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
    });
    let start = Instant::now();
    let mut last = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let now = pushed.load(Ordering::Relaxed);
        if now == last && now >= took {
            break;
        }
        last = now;
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never held back: {now} bytes"
        );
    }
    pusher.abort();
    last - took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_grows_over_a_long_link_while_its_target_keeps_up() {
    let _alone = crate::common::alone().await;
    let (gw, key) = Gateway::with_user("alice").await;
    let reader = reads_then_stalls(READ_FIRST).await;
    let silent = reads_then_stalls(0).await;
    gw.add_rule("alice", "reader", 15000, "127.0.0.1", reader.port());
    gw.add_rule("alice", "silent", 15001, "127.0.0.1", silent.port());
    let far = delay_proxy(gw.addr, Duration::from_millis(100)).await;

    let reader_near = pushed_beyond(&gw, gw.addr, &key, reader.port(), READ_FIRST).await;
    let reader_far = pushed_beyond(&gw, far, &key, reader.port(), READ_FIRST).await;
    let silent_far = pushed_beyond(&gw, far, &key, silent.port(), 0).await;
    // Without growth: the 2 MiB window, the gateway's send buffer towards
    // the target (at most tcp_wmem's maximum), the target's small receive
    // buffer, and slack.
    let wmem = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2).and_then(|m| m.parse().ok()))
        .unwrap_or(4 * MIB);
    let no_growth = 2 * MIB + wmem + 2 * MIB;
    eprintln!(
        "pushed beyond what the target took: reader {reader_near} (loopback) / {reader_far} \
         (200 ms), silent {silent_far} (200 ms); without growth at most {no_growth}"
    );
    // the window of the forward whose target kept up grew over the long
    // link (loopback may grow too on a loaded machine: not asserted)
    assert!(
        reader_far > no_growth,
        "no growth: {reader_far} over 200 ms (at most {no_growth} without)"
    );
    // a target that never read: no growth
    assert!(
        silent_far <= no_growth,
        "a stalled target's window grew: {silent_far} over 200 ms"
    );
    gw.stop().await;
}

/// While the gateway renews the keys (a rekey it starts), the client may
/// still send what its windows allow: more than russh's stock bound (twice
/// the configured initial window) once a channel has its full window. With
/// keys renewed every 2 MiB, 24 MiB echoed through one forward take about a
/// dozen renewals each way, every one with a window's worth in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_forward_survives_the_gateways_rekeys() {
    let _alone = crate::common::alone().await;
    let gw = Gateway::start_with(|c| c.rekey_after = 2 * MIB as usize).await;
    let echo = pra_testkit::net::echo_server().await;
    let key = crate::common::random_ed25519();
    gw.approved("alice", &key);
    gw.add_rule("alice", "echo", 15432, "127.0.0.1", echo.port());
    let c = login(&gw, "alice", &key).await;
    let s = forward(&c, "127.0.0.1", u32::from(echo.port()))
        .await
        .unwrap();
    let data = pra_testkit::net::pattern(24 * MIB as usize, 19);
    let back = tokio::time::timeout(Duration::from_secs(120), echo_through(s, data.clone()))
        .await
        .expect("24 MiB echoed within 120 s");
    assert_eq!(back.len(), data.len(), "the session ended during a rekey");
    assert!(back == data, "the echo came back changed");
    // the session still carries new forwards
    let s = forward(&c, "127.0.0.1", u32::from(echo.port()))
        .await
        .unwrap();
    assert_eq!(echo_through(s, b"after".to_vec()).await, b"after");
    gw.stop().await;
}
