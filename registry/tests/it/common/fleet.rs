//! Several gateways on one PostgreSQL registry: real `pra-registry serve`
//! processes (`--database URL`, their own `--data` for the host key and a
//! `--gateway-id`), the admin CLI against the same database, and a russh
//! client that pins a gateway's host key.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::gateway::Client;
use pra_testkit::process::Listening;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary with `--database url`, no inherited registry settings.
pub(crate) fn registry(url: &str, data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pra-registry"));
    c.env_remove("PRA_REGISTRY_DATA")
        .env_remove("PRA_DATABASE_URL")
        .env_remove("PRA_GATEWAY_ID")
        .env_remove("RUST_LOG")
        .arg("--data")
        .arg(data)
        .arg("--database")
        .arg(url);
    c
}

/// Run an admin command against `url`; insist on success; stdout.
pub(crate) fn admin(url: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = registry(url, dir.path()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A running `pra-registry serve`.
pub(crate) struct Serve {
    pub id: String,
    pub api: SocketAddr,
    pub ssh: SocketAddr,
    pub host_key: String,
    pub data: PathBuf,
    pub log: PathBuf,
    child: Child,
}

impl Serve {
    /// Start `serve` on 127.0.0.1:0 (both listeners) over `url`, with
    /// `data` (host key) and `--gateway-id id`; waits for its listening lines.
    pub(crate) fn start(url: &str, data: &Path, id: &str) -> Serve {
        let log = data.with_extension("stderr.log");
        let mut child = registry(url, data)
            .env("RUST_LOG", "info")
            .args(["serve", "--ssh", "127.0.0.1:0", "--api", "127.0.0.1:0"])
            .args(["--gateway-id", id])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let seen = Listening::read_or(&mut child, &["api", "ssh"], |_| {
            format!(
                "serve {id}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        Serve {
            id: id.to_owned(),
            api: seen.addr("api"),
            ssh: seen.addr("ssh"),
            host_key: seen.host_key(),
            data: data.to_path_buf(),
            log,
            child,
        }
    }

    /// What it logged so far.
    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stop it (SIGTERM, then wait).
    pub(crate) fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("serve {} did not stop on SIGTERM", self.id);
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) use crate::common::gateway::try_login_at as try_login;

/// Wait until the gateway closed `c` (at most `limit`); how long it took.
pub(crate) async fn closed_within(c: &Client, since: Instant, limit: Duration) -> Duration {
    loop {
        if c.is_closed() {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < limit,
            "the session is still open after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Poll `f` until it returns Some (at most `limit`).
pub(crate) async fn eventually<T>(
    limit: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
