//! Processes and what the kernel tells about them: spawn with a guard that
//! stops the child, wait for listening ports, find a port's owner, read RSS
//! and PSS from `/proc`.

use anyhow::{Context, Result, bail};
use std::fs;
use std::net::Ipv4Addr;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped.
pub(crate) struct Proc {
    /// What it is, for messages.
    pub name: String,
    child: Child,
}

impl Proc {
    /// Spawn `cmd`.
    pub(crate) fn spawn(name: &str, cmd: &mut Command) -> Result<Proc> {
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name} ({cmd:?})"))?;
        Ok(Proc {
            name: name.to_string(),
            child,
        })
    }

    /// Its stdout, when it was piped.
    pub(crate) fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Still running?
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait for it to exit by itself, up to `limit`; true if it did.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if !self.alive() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    /// SIGTERM, wait up to 5 s (300 s under a profiler), then SIGKILL.
    pub(crate) fn stop(&mut self) {
        if !self.alive() {
            return;
        }
        terminate(self.child.id());
        // Under a profiler (PRA_BENCH_GATEWAY_WRAP) the exit takes longer.
        let grace = if std::env::var_os("PRA_BENCH_GATEWAY_WRAP").is_some() {
            Duration::from_secs(300)
        } else {
            Duration::from_secs(5)
        };
        if !self.wait_exit(grace) {
            eprintln!("{} did not stop on SIGTERM within 5 s; killed", self.name);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SIGTERM to one process id.
pub(crate) fn terminate(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}

/// A TCP port that was free a moment ago (rules name fixed local ports, so
/// the benchmark must pick them; a race with another program is possible
/// and shows as a failed start).
pub(crate) fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("bind 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// The kernel's TCP tables (IPv4 and IPv6), read once.
fn tcp_tables() -> String {
    let mut text = fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.push_str(&fs::read_to_string("/proc/net/tcp6").unwrap_or_default());
    text
}

/// Is a socket listening on TCP `port` (the kernel's table; nothing is
/// connected, so servers such as iperf3 see no stray connection)?
pub(crate) fn listening(port: u16) -> bool {
    listens_in(&tcp_tables(), port)
}

/// Does `tables` (as [`tcp_tables`] reads them) hold a listener on `port`?
fn listens_in(tables: &str, port: u16) -> bool {
    !pra_client::tunnel::portowner::listening_inodes(tables, port).is_empty()
}

/// Time since `started` until every port in `ports` listens, looking
/// every millisecond (one read of the tables per look, so the watcher
/// takes little CPU from what it watches), up to `limit`.
pub(crate) fn wait_listening(ports: &[u16], limit: Duration, started: Instant) -> Result<Duration> {
    let mut pending: Vec<u16> = ports.to_vec();
    while started.elapsed() < limit {
        let tables = tcp_tables();
        pending.retain(|p| !listens_in(&tables, *p));
        if pending.is_empty() {
            return Ok(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    bail!("ports {pending:?} not listening within {limit:?}")
}

/// Wait until nothing listens on any of `ports` (up to 10 s).
pub(crate) fn wait_free(ports: &[u16]) -> Result<()> {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if ports.iter().all(|p| !listening(*p)) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    bail!("ports {ports:?} still in use after 10 s")
}

/// The process that holds the listening socket on `port` (Linux `/proc`).
pub(crate) fn listener_pid(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = fs::read_to_string(table) {
            inodes.extend(pra_client::tunnel::portowner::listening_inodes(&text, port));
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for (pid, dir) in processes() {
        let Ok(fds) = fs::read_dir(dir.join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = fs::read_link(fd.path())
                && wanted.iter().any(|w| link.as_os_str() == w.as_str())
            {
                return Some(pid);
            }
        }
    }
    None
}

/// Every process now running: its pid and `/proc/PID`.
fn processes() -> Vec<(u32, std::path::PathBuf)> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((pid, e.path()))
        })
        .collect()
}

fn status_field_kb(pid: u32, file: &str, field: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Resident set size in KiB.
pub(crate) fn rss_kib(pid: u32) -> u64 {
    status_field_kb(pid, "status", "VmRSS:").unwrap_or(0)
}

/// Proportional set size in KiB (shared pages split among their users).
pub(crate) fn pss_kib(pid: u32) -> u64 {
    status_field_kb(pid, "smaps_rollup", "Pss:").unwrap_or(0)
}

/// CPU time (user + system, seconds) that `pid` and every process below
/// it have used, counting children they have already reaped: the sum of
/// `utime`, `stime`, `cutime` and `cstime` from `/proc/PID/stat` over the
/// live processes of the tree (a reaped process's time has moved into its
/// parent's `cutime` / `cstime`). 0 for a process that is gone.
pub(crate) fn tree_cpu_seconds(pid: u32) -> f64 {
    let ticks: u64 = std::iter::once(pid)
        .chain(descendants(pid))
        .filter_map(|p| {
            let stat = fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            // Fields 14-17 of `pid (comm) state …`; `rest` starts at field 3.
            let (_, rest) = stat.rsplit_once(')')?;
            let f: Vec<u64> = rest
                .split_whitespace()
                .skip(11)
                .take(4)
                .filter_map(|v| v.parse().ok())
                .collect();
            (f.len() == 4).then(|| f.iter().sum::<u64>())
        })
        .sum();
    ticks as f64 / clock_ticks_per_second()
}

/// The kernel's clock ticks per second for `/proc` times (`getconf CLK_TCK`;
/// 100 on Linux when it cannot be asked).
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        output(Command::new("getconf").arg("CLK_TCK"))
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// Every process below `pid` (children, grandchildren …).
pub(crate) fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of: Vec<(u32, u32)> = Vec::new();
    for (p, _) in processes() {
        // `pid (comm) state ppid …`; comm may hold spaces and parens.
        if let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat"))
            && let Some((_, rest)) = stat.rsplit_once(')')
            && let Some(ppid) = rest.split_whitespace().nth(1)
            && let Ok(ppid) = ppid.parse::<u32>()
        {
            parent_of.push((p, ppid));
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for (child, _) in parent_of.iter().filter(|(_, pp)| *pp == p) {
            out.push(*child);
            frontier.push(*child);
        }
    }
    out
}

/// Run `cmd` to completion; its stdout, or an error with its stderr.
pub(crate) fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
