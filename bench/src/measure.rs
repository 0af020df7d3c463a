//! One measurement each, on a port that forwards to a target: iperf3 bulk
//! throughput, sequential short connections, start-up time, memory with a
//! stalled stream.

use crate::procs::{self, Proc};
use crate::setup::{PraSide, SshSide};
use anyhow::{Context, Result, bail};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Direction of a bulk transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Client → target (iperf3 default).
    Up,
    /// Target → client (`-R`).
    Down,
    /// Both at once (`--bidir`); the sum of both directions.
    Both,
}

/// iperf3 through 127.0.0.1:`port` for `secs` (after one omitted second of
/// slow start); megabytes (10^6) per second received.
pub(crate) fn iperf(port: u16, dir: Direction, secs: u32) -> Result<f64> {
    // The server takes a moment to see the previous test's connections
    // close (through a forward they close after the client exits); until
    // then it refuses a new test ("busy", or a reset of the control
    // connection).
    let mut last = None;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(200));
        match iperf_once(port, dir, secs) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("iperf3 did not run")))
}

fn iperf_once(port: u16, dir: Direction, secs: u32) -> Result<f64> {
    let mut c = Command::new("iperf3");
    c.args([
        "-c",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-t",
        &secs.to_string(),
        "-O",
        "1",
        "-J",
    ]);
    match dir {
        Direction::Up => {}
        Direction::Down => {
            c.arg("-R");
        }
        Direction::Both => {
            c.arg("--bidir");
        }
    }
    let out = c.stdin(Stdio::null()).output().context("run iperf3")?;
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("iperf3 printed no JSON")?;
    if let Some(e) = v.get("error") {
        bail!("iperf3: {e}");
    }
    let end = &v["end"];
    let bps = |k: &str| end[k]["bits_per_second"].as_f64();
    let total = match dir {
        Direction::Both => bps("sum_received")
            .zip(bps("sum_received_bidir_reverse"))
            .map(|(a, b)| a + b),
        _ => bps("sum_received"),
    };
    total
        .map(|b| b / 8.0 / 1e6)
        .context("iperf3 JSON without end.sum_received")
}

/// Rate and latency of sequential short connections.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Short {
    /// Completed connections per second.
    pub rate: f64,
    /// Median latency of one connection (connect, 1-byte echo), ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

fn one_short(addr: &SocketAddr) -> Result<()> {
    let mut s = TcpStream::connect_timeout(addr, Duration::from_secs(10))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"x")?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b)?;
    if b[0] != b'x' {
        bail!("echo answered {:?}", b[0]);
    }
    Ok(())
}

/// `n` sequential connections to 127.0.0.1:`port`: connect, write one
/// byte, read it back, close (after 50 unmeasured ones).
pub(crate) fn short_connections(port: u16, n: usize) -> Result<Short> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    for _ in 0..50 {
        one_short(&addr)?;
    }
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        one_short(&addr)?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let total = start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    Ok(Short {
        rate: n as f64 / total,
        p50_ms: percentile(&lat, 0.50),
        p99_ms: percentile(&lat, 0.99),
    })
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `pra connect` from its start to every forward listening.
pub(crate) fn startup_pra(side: &PraSide) -> Result<Duration> {
    procs::wait_free(&side.fwd.all())?;
    let started = Instant::now();
    let mut p = side.spawn_connect()?;
    let t = procs::wait_listening(&side.fwd.all(), Duration::from_secs(30), started);
    p.stop();
    procs::wait_free(&side.fwd.all())?;
    t
}

/// `ssh -f -N -o ExitOnForwardFailure=yes -L …`: (every forward listening,
/// the foreground process gone).
pub(crate) fn startup_ssh(side: &SshSide) -> Result<(Duration, Duration)> {
    procs::wait_free(&side.fwd.all())?;
    let mut c = side.ssh_cmd();
    c.args(["-f", "-N"])
        .arg(side.destination())
        .stderr(Stdio::null());
    let started = Instant::now();
    let mut p = Proc::spawn("ssh -f -N", &mut c)?;
    let listening = procs::wait_listening(&side.fwd.all(), Duration::from_secs(30), started);
    let exited = if p.wait_exit(Duration::from_secs(30)) {
        Ok(started.elapsed())
    } else {
        Err(anyhow::anyhow!("ssh -f did not go to the background"))
    };
    // The background ssh: the process holding the first forward.
    if let Some(pid) = procs::listener_pid(side.fwd.iperf) {
        procs::terminate(pid);
    }
    procs::wait_free(&side.fwd.all())?;
    Ok((listening?, exited?))
}

/// Memory of a side while one stream is stalled.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stall {
    /// Bytes the local writer got rid of before the stream stopped (into
    /// buffers; 0 for a stalled reader).
    pub buffered: u64,
    /// RSS added between the stream's start and its end (KiB; the
    /// buffers the windows allow).
    pub added_kib: i64,
    /// RSS added between 2 s after the start and the end (KiB): flat
    /// memory means about 0.
    pub growth_kib: i64,
}

/// Sum of RSS of `pids`.
fn rss(pids: &[u32]) -> i64 {
    pids.iter().map(|p| procs::rss_kib(*p) as i64).sum()
}

/// One stalled stream on 127.0.0.1:`port` for `secs`: with `firehose`
/// the local side never reads (the target writes forever); otherwise the
/// local side writes as much as it can and the target never reads.
/// `pids()` lists the processes of the side (client and server).
pub(crate) fn stall(
    port: u16,
    firehose: bool,
    secs: u64,
    pids: impl Fn() -> Vec<u32>,
) -> Result<Stall> {
    let before = rss(&pids());
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    let start = Instant::now();
    let mut at2 = None;
    let mut buffered = 0u64;
    s.set_write_timeout(Some(Duration::from_millis(50)))?;
    let chunk = vec![0xa5u8; 64 * 1024];
    while start.elapsed() < Duration::from_secs(secs) {
        if at2.is_none() && start.elapsed() >= Duration::from_secs(2) {
            at2 = Some(rss(&pids()));
        }
        if firehose {
            std::thread::sleep(Duration::from_millis(50));
        } else {
            match s.write(&chunk) {
                Ok(n) => buffered += n as u64,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(e).context("write to the stalled forward"),
            }
        }
    }
    let end = rss(&pids());
    drop(s);
    Ok(Stall {
        buffered,
        added_kib: end - before,
        growth_kib: end - at2.unwrap_or(end),
    })
}
