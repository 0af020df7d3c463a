//! Many SSH sessions from this process with the `pra` client library (the
//! code `pra connect` runs: TCP_NODELAY, host key checked against the pin,
//! public-key login), against the gateway or sshd: idle sessions for memory
//! per session, and back-to-back logins for logins per second.

use anyhow::{Result, anyhow};
use pra_client::config::GatewayAddr;
use pra_client::tunnel::Timing;
use pra_client::tunnel::session::{self, SshSession};
use russh::keys::PrivateKey;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Where to log in and as whom.
#[derive(Clone)]
pub(crate) struct Login {
    /// Server address.
    pub addr: SocketAddr,
    /// Pinned host key.
    pub pin: String,
    /// Account.
    pub user: String,
    /// Key.
    pub key: Arc<PrivateKey>,
    /// Also fetch the rules (`exec pra-rules`), as `pra connect` does.
    pub rules: bool,
}

/// One logged-in session.
pub(crate) async fn login(l: &Login, config: Arc<russh::client::Config>) -> Result<SshSession> {
    let timing = Timing::default();
    let gw = GatewayAddr {
        host: l.addr.ip().to_string(),
        port: l.addr.port(),
    };
    let stream = session::tcp_connect(&gw, &[l.addr], &timing)
        .await
        .map_err(|e| anyhow!("{}", e.line()))?;
    let mut s = session::handshake(&gw, stream, Some(&l.pin), config, &timing)
        .await
        .map_err(|e| anyhow!("{}", e.line()))?;
    session::authenticate(&mut s, &l.user, l.key.clone(), &timing)
        .await
        .map_err(|e| anyhow!("{}", e.line()))?;
    if l.rules {
        session::fetch_rules(&s, &timing)
            .await
            .map_err(|e| anyhow!("{}", e.line()))?;
    }
    Ok(s)
}

/// Open `n` more sessions, `parallel` logins at a time.
pub(crate) async fn open_many(l: &Login, n: usize, parallel: usize) -> Result<Vec<SshSession>> {
    let config = session::ssh_config(&Timing::default());
    let gate = Arc::new(Semaphore::new(parallel));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let permit = gate.clone().acquire_owned().await?;
        let l = l.clone();
        let config = config.clone();
        tasks.spawn(async move {
            // A server may turn a connection away while others are still
            // logging in (sshd's MaxStartups, the gateway's per-source cap):
            // try again a few times.
            let mut r = login(&l, config.clone()).await;
            for _ in 0..20 {
                if r.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                r = login(&l, config.clone()).await;
            }
            drop(permit);
            r
        });
    }
    let mut out = Vec::with_capacity(n);
    while let Some(r) = tasks.join_next().await {
        out.push(r??);
    }
    Ok(out)
}

/// Memory per idle session: open sessions up to each count in `steps` and
/// read `mem` (KiB) of the server processes (`pids()`) after it settled.
/// Returns (sessions, KiB per session over the baseline) per step.
pub(crate) async fn idle(
    l: &Login,
    steps: &[usize],
    parallel: usize,
    pids: impl Fn() -> Vec<u32>,
    mem: fn(u32) -> u64,
) -> Result<Vec<(usize, f64)>> {
    let sum = |pids: &[u32]| -> u64 { pids.iter().map(|p| mem(*p)).sum() };
    settle().await;
    let base = sum(&pids());
    let mut held: Vec<SshSession> = Vec::new();
    let mut out = Vec::new();
    for &target in steps {
        let more = target.saturating_sub(held.len());
        held.extend(open_many(l, more, parallel).await?);
        settle().await;
        let now = sum(&pids());
        let per = (now.saturating_sub(base)) as f64 / held.len().max(1) as f64;
        eprintln!(
            "  {} idle sessions: server memory {} KiB → {} KiB, {per:.1} KiB per session",
            held.len(),
            base,
            now
        );
        out.push((held.len(), per));
    }
    for s in &held {
        s.disconnect().await;
    }
    drop(held);
    Ok(out)
}

async fn settle() {
    tokio::time::sleep(Duration::from_secs(3)).await;
}

/// What a logins run measured.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Logins {
    /// Completed logins per second over the `secs` of the run.
    pub rate: f64,
    /// Attempts the server turned away.
    pub failed: u64,
    /// Every completed login, including those that finished after the
    /// `secs` (the workers end their login in progress).
    pub completed: u64,
}

/// Logins per second: `parallel` workers log in and disconnect back to
/// back for `secs`. A server that turns connections away (e.g. the
/// gateway's per-source cap on connections still logging in) counts them
/// as failures, not logins. Returns when every worker has ended.
pub(crate) async fn logins(l: &Login, parallel: usize, secs: u64) -> Result<Logins> {
    let config = session::ssh_config(&Timing::default());
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..parallel {
        let (l, config, done, failed, stop) = (
            l.clone(),
            config.clone(),
            done.clone(),
            failed.clone(),
            stop.clone(),
        );
        tasks.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match login(&l, config.clone()).await {
                    Ok(s) => {
                        done.fetch_add(1, Ordering::Relaxed);
                        s.disconnect().await;
                    }
                    Err(e) => {
                        if failed.fetch_add(1, Ordering::Relaxed) == 0 {
                            eprintln!("  (first failed login: {e})");
                        }
                    }
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let n = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    while tasks.join_next().await.is_some() {}
    if n == 0 {
        return Err(anyhow!("no login completed"));
    }
    Ok(Logins {
        rate: n as f64 / elapsed,
        failed: failed.load(Ordering::Relaxed),
        completed: done.load(Ordering::Relaxed),
    })
}
