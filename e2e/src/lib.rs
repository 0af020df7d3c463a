//! Support for the end-to-end tests in `tests/`: the real registry (SQLite
//! in a temp folder) with its HTTP API and SSH gateway in this process on
//! 127.0.0.1:0 (the gateway restartable on the same port), keys, loopback
//! targets, and the `pra` binary.
//!
//! This crate is test support only (`publish = false`); like tests, it
//! opts out of the workspace's no-unwrap rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pra_proto::api::{Device, KeyStatus};
use pra_registry::api::{self, ApiConfig};
use pra_registry::gateway::{self, GatewayConfig, hostkey};
use pra_registry::model::{Actor, NewKey, RuleRecord};
use pra_registry::store::Store;
use pra_registry::store::sqlite::SqliteStore;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

fn admin() -> Actor {
    Actor::Cli("e2e".into())
}

/// A registry: store, HTTP API, and the data folder the gateway uses.
pub struct Registry {
    _dir: tempfile::TempDir,
    /// `--data`.
    pub data: PathBuf,
    /// The store.
    pub store: Arc<SqliteStore>,
    /// Where the HTTP API listens.
    pub api: SocketAddr,
    _api_stop: Option<oneshot::Sender<()>>,
}

impl Registry {
    /// A fresh registry with its API on 127.0.0.1:0.
    pub async fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store = Arc::new(SqliteStore::open(&data).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let dyn_store: Arc<dyn Store> = store.clone();
        tokio::spawn(api::serve(
            listener,
            dyn_store,
            ApiConfig::default(),
            async move {
                let _ = rx.await;
            },
        ));
        Registry {
            _dir: dir,
            data,
            store,
            api,
            _api_stop: Some(tx),
        }
    }

    /// A fresh registry whose HTTP API is not listening at all (`api` is
    /// a loopback port that was free a moment ago: nothing answers there).
    pub async fn without_api() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store = Arc::new(SqliteStore::open(&data).unwrap());
        let api = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        Registry {
            _dir: dir,
            data,
            store,
            api,
            _api_stop: None,
        }
    }

    /// `pra-registry --data DATA ARGS…` (the real binary on this store).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(registry_bin())
            .arg("--data")
            .arg(&self.data)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.api)
    }

    /// `pra-registry user add NAME`.
    pub fn add_user(&self, name: &str) {
        self.store.add_user(name, &admin()).unwrap();
    }

    /// Register an OpenSSH public-key line for `user` with `status`.
    pub fn add_key(&self, user: &str, public_line: &str, status: KeyStatus) -> String {
        let valid = pra_registry::validate::public_key(public_line).unwrap();
        let (rec, _) = self
            .store
            .add_key(
                NewKey {
                    fingerprint: valid.fingerprint.clone(),
                    user: user.into(),
                    public_key: valid.line,
                    algorithm: valid.algorithm,
                    device: Device {
                        computer: "e2e-pc".into(),
                        os_user: user.into(),
                        description: "end-to-end test".into(),
                        tag: "e2e0".into(),
                    },
                    status,
                },
                true,
                &admin(),
            )
            .unwrap();
        rec.fingerprint
    }

    /// `pra-registry key approve FP`.
    pub fn approve(&self, fp: &str) {
        self.store
            .set_key_status(fp, KeyStatus::Approved, &admin())
            .unwrap();
    }

    /// `pra-registry rule add`.
    pub fn add_rule(&self, user: &str, name: &str, local_port: u16, target: SocketAddr) {
        self.store
            .add_rule(
                RuleRecord {
                    user: user.into(),
                    name: name.into(),
                    local_port,
                    target_host: target.ip().to_string(),
                    target_port: target.port(),
                },
                &admin(),
            )
            .unwrap();
    }

    /// The SSH gateway on `addr` (127.0.0.1:0 when `None`).
    pub async fn gateway(&self, addr: Option<SocketAddr>) -> Gateway {
        let host_key = hostkey::load_or_create(&self.data).unwrap();
        let fingerprint = host_key.fingerprint();
        let mut cfg = GatewayConfig::new(host_key);
        cfg.auth_rejection_time = Duration::from_millis(100);
        let bind = addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let dyn_store: Arc<dyn Store> = self.store.clone();
        let task = tokio::spawn(gateway::run(listener, dyn_store, cfg, async move {
            let _ = rx.await;
        }));
        Gateway {
            addr,
            host_key: fingerprint,
            stop: Some(tx),
            task: Some(task),
        }
    }
}

/// A running gateway.
pub struct Gateway {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `SHA256:` of its host key.
    pub host_key: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), pra_registry::error::RegistryError>>>,
}

impl Gateway {
    /// Shut it down (every session disconnected) and wait until it is gone.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("gateway stops")
                .unwrap()
                .unwrap();
        }
    }
}

/// An ed25519 key from the OS RNG.
pub fn new_key() -> russh::keys::PrivateKey {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    russh::keys::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&seed))
}

/// `ssh-ed25519 AAAA…`.
pub fn public_line(key: &russh::keys::PrivateKey) -> String {
    key.public_key().to_openssh().unwrap()
}

/// A local port for a rule: below the ephemeral range, spread per process,
/// checked free (rules name fixed ports, so the test must pick one).
pub fn rule_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    if NEXT.load(Ordering::Relaxed) == 0 {
        let spread = (std::process::id() % 400) as u16 * 25;
        let _ = NEXT.compare_exchange(0, 12000 + spread, Ordering::Relaxed, Ordering::Relaxed);
    }
    loop {
        let p = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(p < 22000, "no free rule port");
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// Echo server on 127.0.0.1:0.
pub async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// A server that writes `i mod 251` bytes (per 64 KiB chunk) forever.
pub async fn firehose_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let chunk: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
                while s.write_all(&chunk).await.is_ok() {}
            });
        }
    });
    addr
}

/// Send `msg` to 127.0.0.1:`port`, read as much back.
pub async fn echo_roundtrip(port: u16, msg: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(msg).await.unwrap();
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).await.unwrap();
    back
}

/// True once an echo through `port` works, trying until `within` passes.
pub async fn echo_works_within(port: u16, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        let ok = tokio::time::timeout(Duration::from_secs(2), async {
            let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
            s.write_all(b"ping").await.ok()?;
            let mut b = [0u8; 4];
            s.read_exact(&mut b).await.ok()?;
            (&b == b"ping").then_some(())
        })
        .await;
        if matches!(ok, Ok(Some(()))) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// Deterministic bytes (xorshift).
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The `pra` binary of this build (built on first use: the e2e package
/// cannot name another package's binary in `CARGO_BIN_EXE_*`).
pub fn pra_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| workspace_bin("pra-client", "pra"))
        .clone()
}

/// The `pra-registry` binary of this build (built on first use).
pub fn registry_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| workspace_bin("pra-registry", "pra-registry"))
        .clone()
}

/// `cargo build -p PACKAGE --bin NAME` in this build's profile; its path.
fn workspace_bin(package: &str, name: &str) -> PathBuf {
    {
        {
            let exe = std::env::current_exe().unwrap();
            // target/<profile>/deps/<test> → target/<profile>
            let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
            let release = profile_dir.file_name().is_some_and(|n| n == "release");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut c = std::process::Command::new(cargo);
            c.args(["build", "--quiet", "-p", package, "--bin", name]);
            if release {
                c.arg("--release");
            }
            c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
            let status = c.status().expect("run cargo build");
            assert!(
                status.success(),
                "cargo build -p {package} --bin {name} failed"
            );
            let bin = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
            assert!(bin.exists(), "{} missing after the build", bin.display());
            bin
        }
    }
}

/// Reads the `--json` lines of a spawned `pra connect` (stdout piped) until
/// one says rule `rule` is forwarding; past `within` the child is killed and
/// the test fails with the lines seen. Returns those lines; the rest of the
/// output keeps being drained so the child never blocks on a full pipe.
pub fn wait_forwarding(
    child: &mut std::process::Child,
    rule: &str,
    within: Duration,
) -> Vec<String> {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().expect("pra connect's stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let deadline = std::time::Instant::now() + within;
    let name = format!("\"name\":\"{rule}\"");
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.contains(&name) && l.contains("forwarding"))
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => seen.push(l),
            Err(_) => {
                let _ = child.kill();
                panic!("no forwarding line for rule {rule}: {seen:#?}");
            }
        }
    }
    seen
}

/// `pra --home HOME …` with `PRA_PASSPHRASE` set, proxies cleared, no stdin.
pub fn pra(home: &Path, pass: &str) -> std::process::Command {
    let mut c = std::process::Command::new(pra_bin());
    c.arg("--home").arg(home);
    for v in [
        "PRA_HOME",
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "RUST_LOG",
    ] {
        c.env_remove(v);
    }
    c.env("PRA_PASSPHRASE", pass);
    c.stdin(std::process::Stdio::null());
    c
}
