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
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The passphrase of the keys the end-to-end tests make (it must never
/// show up in a log).
pub const PASS: &str = "e2e passphrase, not for logs";

/// Tests that measure speed take turns: all end-to-end tests share one
/// process, so without this two of them could overlap where each used to
/// run in a binary of its own.
pub async fn alone() -> tokio::sync::MutexGuard<'static, ()> {
    static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    ALONE.lock().await
}

fn admin() -> Actor {
    Actor::Cli("e2e".into())
}

/// A registry: store, HTTP API, and the data folder the gateway uses.
pub struct Registry {
    _dir: tempfile::TempDir,
    /// `--data`.
    pub data: PathBuf,
    /// The store.
    pub store: Arc<Store>,
    /// Where the HTTP API listens.
    pub api: SocketAddr,
    _api_stop: Option<oneshot::Sender<()>>,
}

impl Registry {
    /// A fresh registry with its API on 127.0.0.1:0.
    pub async fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store = Arc::new(Store::sqlite(&data).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(api::serve(
            listener,
            store.clone(),
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
        let store = Arc::new(Store::sqlite(&data).unwrap());
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
        let device = Device {
            computer: "e2e-pc".into(),
            os_user: user.into(),
            description: "end-to-end test".into(),
            tag: "e2e0".into(),
        };
        let new = NewKey::new(valid, user, device, status);
        self.store
            .add_key(new, true, &admin())
            .unwrap()
            .0
            .fingerprint
    }

    /// The fingerprint of `user`'s first key.
    pub fn fingerprint_of(&self, user: &str) -> String {
        let keys = self.store.list_keys(None).unwrap();
        let key = keys.into_iter().find(|k| k.user == user).unwrap();
        key.fingerprint
    }

    /// `pra-registry key approve FP`.
    pub fn approve(&self, fp: &str) {
        self.store
            .set_key_status(fp, KeyStatus::Approved, &admin())
            .unwrap();
    }

    /// `pra-registry rule add`.
    pub fn add_rule(&self, user: &str, name: &str, local_port: u16, target: SocketAddr) {
        let host = target.ip().to_string();
        let rule = RuleRecord::new(user, name, local_port, &host, target.port());
        self.store.add_rule(rule, &admin()).unwrap();
    }

    /// A rule `name` of `user` on a free rule port to a new echo server;
    /// returns that port.
    pub async fn echo_rule(&self, user: &str, name: &str) -> u16 {
        let port = rule_port();
        self.add_rule(user, name, port, echo_server().await);
        port
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
        let task = tokio::spawn(gateway::run(
            listener,
            self.store.clone(),
            cfg,
            async move {
                let _ = rx.await;
            },
        ));
        Gateway {
            addr,
            host_key: fingerprint,
            stop: Some(tx),
            task: Some(task),
        }
    }
}

/// A registry where user alice has rule `intranet` to a new echo server,
/// its gateway, and a temp folder with the home `home` in it holding
/// alice's new key (passphrase `pass`): (registry, the rule's local port,
/// gateway, folder, home).
pub async fn alice_intranet(pass: &str) -> (Registry, u16, Gateway, tempfile::TempDir, PathBuf) {
    let reg = Registry::start().await;
    reg.add_user("alice");
    let port = reg.echo_rule("alice", "intranet").await;
    let gw = reg.gateway(None).await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    ok(pra(&home, pass).args(["keygen", "--user", "alice"]));
    (reg, port, gw, dir, home)
}

/// `pra connect --json` in `home`, stdout and stderr piped.
pub fn connect_json(home: &Path, pass: &str) -> std::process::Child {
    pra(home, pass)
        .args(["connect", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// `pra server set GATEWAY --host-key PIN` for the home `home`.
pub fn server_set(home: &Path, pass: &str, gw: &Gateway) {
    ok(pra(home, pass).args([
        "server",
        "set",
        &gw.addr.to_string(),
        "--host-key",
        &gw.host_key,
    ]));
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
    /// The client library's settings for `user` with `key` on this gateway
    /// (host key pinned, default timing).
    pub fn tunnel_config(
        &self,
        user: &str,
        key: russh::keys::PrivateKey,
    ) -> pra_client::tunnel::TunnelConfig {
        pra_client::tunnel::TunnelConfig {
            gateway: pra_client::config::GatewayAddr {
                host: self.addr.ip().to_string(),
                port: self.addr.port(),
            },
            alternates: Vec::new(),
            host_key: Some(self.host_key.clone()),
            pin_store: None,
            user: user.into(),
            key: Arc::new(key),
            explain_refusal: None,
            timing: pra_client::tunnel::Timing::default(),
        }
    }

    /// Shut it down (every session disconnected) and wait until it is gone.
    pub async fn stop(mut self) {
        let within = Duration::from_secs(20);
        pra_testkit::process::stop_server(self.stop.take(), self.task.take(), within).await;
    }
}

pub use pra_testkit::keys::{new_key, public_line};
pub use pra_testkit::net::{
    echo_roundtrip, echo_server, echo_works_within, firehose_server, pattern, read_firehose,
    rule_port, two_way, two_way_64_mib,
};

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
/// Under `scripts/test.sh` (`PRA_WORKSPACE_BUILT=1`) the binary that
/// `cargo test --workspace` built is taken as it is: a `cargo build -p`
/// would build it again with that package's own features, in the middle of
/// the tests (and the packaging test after them would build it once more).
fn workspace_bin(package: &str, name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let bin = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if std::env::var_os("PRA_WORKSPACE_BUILT").is_some() && bin.exists() {
        return bin;
    }
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
    assert!(bin.exists(), "{} missing after the build", bin.display());
    bin
}

/// A child's stdout lines, read on a thread (the child never blocks on a
/// full pipe), and the ones seen so far.
pub struct Lines {
    rx: std::sync::mpsc::Receiver<String>,
    reader: std::thread::JoinHandle<()>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl Lines {
    /// Start reading `child`'s piped stdout.
    pub fn of(child: &mut std::process::Child) -> Lines {
        use std::io::{BufRead, BufReader};
        let stdout = child.stdout.take().expect("the child's stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        Lines {
            rx,
            reader,
            seen: Vec::new(),
        }
    }

    /// Read until `done` holds for the lines seen; false when `within`
    /// passed (or stdout ended) first.
    pub fn until(&mut self, within: Duration, done: impl Fn(&[String]) -> bool) -> bool {
        let deadline = std::time::Instant::now() + within;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(_) => return false,
            }
        }
        true
    }

    /// Once the child closed stdout: every line it printed.
    pub fn finish(mut self) -> Vec<String> {
        self.reader.join().unwrap();
        self.seen.extend(self.rx.try_iter());
        self.seen
    }
}

/// True when a line of `lines` starts with `rule` and ends with
/// `forwarding` (`pra connect`'s text output).
pub fn forwarding(lines: &[String], rule: &str) -> bool {
    lines
        .iter()
        .any(|l| l.starts_with(rule) && l.ends_with("forwarding"))
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
    let mut lines = Lines::of(child);
    let name = format!("\"name\":\"{rule}\"");
    let found = lines.until(within, |seen| {
        seen.iter()
            .any(|l| l.contains(&name) && l.contains("forwarding"))
    });
    if !found {
        let _ = child.kill();
        panic!("no forwarding line for rule {rule}: {:#?}", lines.seen);
    }
    lines.seen
}

/// Run a command: (success, stdout, stderr).
pub fn run(c: &mut std::process::Command) -> (bool, String, String) {
    let o = c.output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Run a command and insist on success; its stdout.
pub fn ok(c: &mut std::process::Command) -> String {
    let (ok, out, err) = run(c);
    assert!(ok, "{c:?} failed: {out}{err}");
    out
}

/// `pra --home HOME …` with `PRA_PASSPHRASE` set, proxies cleared, no stdin.
pub fn pra(home: &Path, pass: &str) -> std::process::Command {
    let mut c = std::process::Command::new(pra_bin());
    c.arg("--home").arg(home);
    pra_testkit::process::clean_env(&mut c, &["PRA_HOME", "RUST_LOG"]);
    c.env("PRA_PASSPHRASE", pass);
    c.stdin(std::process::Stdio::null());
    c
}
