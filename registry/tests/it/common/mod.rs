//! Helpers shared by the registry's integration tests: the real binary on a
//! temp `--data`, an in-process API server on 127.0.0.1:0, a tiny raw
//! HTTP/1.1 client, and keys made in-process.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub(crate) mod fleet;
pub(crate) mod gateway;
pub(crate) mod pg;
pub(crate) mod web;

use pra_proto::api::{Device, KeySubmission};
use pra_proto::proof::{self, Action};
use pra_registry::api::{self, ApiConfig};
use pra_registry::model::Actor;
use pra_registry::store::Store;
use pra_testkit::process::Listening;
use ssh_key::PrivateKey;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Generous bound for anything that should be quick.
pub(crate) const BOUND: Duration = Duration::from_secs(10);

/// Tests that want the machine to themselves (floods, resident-size and
/// starvation measurements, the database outage's timed windows) take
/// turns: all tests share one process, so without this two of them could
/// overlap where each used to run in a binary of its own.
pub(crate) async fn alone() -> tokio::sync::MutexGuard<'static, ()> {
    static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    ALONE.lock().await
}

// --- the binary ---------------------------------------------------------------

/// A temp data folder and the binary run against it.
pub(crate) struct TestEnv {
    pub dir: tempfile::TempDir,
}

impl TestEnv {
    pub(crate) fn new() -> TestEnv {
        TestEnv {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub(crate) fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pra-registry"));
        c.env_remove("PRA_REGISTRY_DATA")
            .env_remove("PRA_DATABASE_URL")
            .env_remove("RUST_LOG")
            .arg("--data")
            .arg(self.data());
        c
    }

    /// Run with these arguments.
    pub(crate) fn run(&self, args: &[&str]) -> Run {
        Run(self.command().args(args).output().unwrap())
    }

    /// Run with `stdin` fed to the process.
    pub(crate) fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        use std::io::Write;
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        Run(child.wait_with_output().unwrap())
    }

    /// Run and insist on success; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert!(r.0.status.success(), "{args:?} failed: {}", r.stderr());
        r.stdout()
    }

    /// Write a file in the temp folder.
    pub(crate) fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// `--json` output parsed.
    pub(crate) fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// Number of keys, rules, users and audit events, and the revision:
    /// "nothing was stored" means this did not change.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let store = Store::sqlite(&self.data()).unwrap();
        snapshot(&store)
    }

    /// `serve --api 127.0.0.1:0 --ssh 127.0.0.1:0 EXTRA…` with `stderr`,
    /// once it printed the listening lines of `names` (e.g. `["api"]`).
    pub(crate) fn serve(
        &self,
        extra: &[&str],
        stderr: Stdio,
        names: &[&str],
    ) -> (Child, Listening) {
        let mut child = self
            .command()
            .args(["serve", "--api", "127.0.0.1:0", "--ssh", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let seen = Listening::read(&mut child, names);
        (child, seen)
    }

    /// The user `alice` with a new approved key, made with the CLI.
    pub(crate) fn approved_alice(&self) -> PrivateKey {
        let key = random_ed25519();
        let key_file = self.file("alice.pub", format!("{}\n", line(&key)));
        self.ok(&["user", "add", "alice"]);
        let mut import = key_import(&key_file, "alice");
        import.push("--approve");
        self.ok(&import);
        key
    }

    /// [`TestEnv::approved_alice`] and [`TestEnv::echo_rule`] to a new echo
    /// server: alice's key, the gateway's host key (`SHA256:…`), the echo
    /// server.
    pub(crate) async fn alice_echo(&self) -> (PrivateKey, String, SocketAddr) {
        let key = self.approved_alice();
        let echo = pra_testkit::net::echo_server().await;
        self.echo_rule(echo);
        (key, self.ok(&["hostkey"]).trim().to_string(), echo)
    }

    /// alice's rule `echo` (local port 15432) to `echo`, made with the CLI.
    pub(crate) fn echo_rule(&self, echo: SocketAddr) {
        let target = format!("127.0.0.1:{}", echo.port());
        self.rule_add("alice", "echo", "15432", &target);
    }

    /// `rule add --user USER --name NAME --local PORT --target TARGET`,
    /// insisting on success; stdout.
    pub(crate) fn rule_add(&self, user: &str, name: &str, local: &str, target: &str) -> String {
        self.ok(&[
            "rule", "add", "--user", user, "--name", name, "--local", local, "--target", target,
        ])
    }
}

/// `key import FILE --user USER` (add flags to the end).
pub(crate) fn key_import<'a>(file: &'a Path, user: &'a str) -> Vec<&'a str> {
    vec!["key", "import", file.to_str().unwrap(), "--user", user]
}

/// The secret is nowhere in the data folder; its hash is.
pub(crate) fn assert_only_hash_stored(data: &Path, secret: &str, hash: &str) {
    let mut found_hash = false;
    for entry in std::fs::read_dir(data).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
        found_hash |= bytes.windows(hash.len()).any(|w| w == hash.as_bytes());
    }
    assert!(found_hash);
}

/// What a refused change must leave as it was.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub keys: usize,
    pub rules: usize,
    pub users: usize,
    pub invites: usize,
    pub audit: usize,
    pub revision: i64,
}

pub(crate) fn snapshot(store: &Store) -> Snapshot {
    Snapshot {
        keys: store.list_keys(None).unwrap().len(),
        rules: store.list_rules(None).unwrap().len(),
        users: store.list_users().unwrap().len(),
        invites: store.list_invites().unwrap().len(),
        audit: store
            .audit(&pra_registry::model::AuditQuery {
                limit: 1000,
                ..Default::default()
            })
            .unwrap()
            .len(),
        revision: store.revision().unwrap(),
    }
}

/// A finished run of the binary.
pub(crate) struct Run(pub Output);

impl Run {
    pub(crate) fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    pub(crate) fn success(&self) -> bool {
        self.0.status.success()
    }
    /// The one error line of a failed run.
    pub(crate) fn error_line(&self) -> String {
        assert!(
            !self.success(),
            "expected a failure, got: {}",
            self.stdout()
        );
        let err = self.stderr();
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "expected one error line, got: {err:?}");
        lines[0].to_string()
    }
}

// --- audit ---------------------------------------------------------------------

/// Audit look-ups on any store (a method, so `web.api.store.audit_of(..)`
/// works through the `Arc`).
pub(crate) trait AuditOf {
    /// The entries whose kind starts with `prefix`, newest first.
    fn audit_of(&self, prefix: &str) -> Vec<pra_registry::model::AuditEntry>;
    /// The entries about `user`, newest first.
    fn audit_about(&self, user: &str) -> Vec<pra_registry::model::AuditEntry>;
}

impl AuditOf for Store {
    fn audit_of(&self, prefix: &str) -> Vec<pra_registry::model::AuditEntry> {
        let q = pra_registry::model::AuditQuery {
            kind_prefix: Some(prefix.into()),
            ..Default::default()
        };
        self.audit(&q).unwrap()
    }

    fn audit_about(&self, user: &str) -> Vec<pra_registry::model::AuditEntry> {
        let q = pra_registry::model::AuditQuery {
            user: Some(user.into()),
            ..Default::default()
        };
        self.audit(&q).unwrap()
    }
}

/// `field` of every event of an `audit --json` (or API) listing, in order.
pub(crate) fn event_fields(listing: &serde_json::Value, field: &str) -> Vec<String> {
    let events = listing["events"].as_array().unwrap();
    events
        .iter()
        .map(|e| e[field].as_str().unwrap().to_string())
        .collect()
}

// --- keys ----------------------------------------------------------------------

pub(crate) fn ed25519(seed: u8) -> PrivateKey {
    let mut k = PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]));
    k.set_comment(format!("user{seed}@pc"));
    k
}

pub(crate) use pra_testkit::keys::{new_key as random_ed25519, public_line as line};

pub(crate) fn fingerprint(key: &PrivateKey) -> String {
    pra_proto::fingerprint(key.public_key())
}

pub(crate) fn device() -> Device {
    Device {
        computer: "PC-01".into(),
        os_user: "alice".into(),
        description: "Linux 6.1 / Test board / Test CPU".into(),
        tag: "3f2a".into(),
    }
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A signed submission of `key` for `user`.
pub(crate) fn submission(key: &PrivateKey, user: &str) -> KeySubmission {
    KeySubmission {
        user: user.into(),
        public_key: line(key),
        device: device(),
        proof: proof::sign(key, Action::Submit, user, unix_now()).unwrap(),
    }
}

/// `ssh-keygen ARGS… PATH` (openssh-client, see scripts/deps.sh), insisting
/// on success.
pub(crate) fn ssh_keygen(args: &[&str], path: &Path) -> Output {
    let out = Command::new("ssh-keygen")
        .args(args)
        .arg(path)
        .output()
        .expect("ssh-keygen is needed (apt-get install openssh-client)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// An RSA key made by `ssh-keygen` (openssh-client, see scripts/deps.sh).
pub(crate) fn ssh_keygen_rsa(dir: &Path, bits: u32) -> (PathBuf, String) {
    let path = dir.join(format!("rsa{bits}"));
    let bits = bits.to_string();
    let args = [
        "-q", "-t", "rsa", "-b", &bits, "-N", "", "-C", "rsa@test", "-f",
    ];
    ssh_keygen(&args, &path);
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    (path, public.trim().to_string())
}

fn ssh_string(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn mpint(out: &mut Vec<u8>, bits: usize) {
    let mut n = vec![0x5au8; bits / 8];
    n[0] = 0x80;
    let mut enc = vec![0u8];
    enc.extend_from_slice(&n);
    ssh_string(out, &enc);
}

/// A DSA public key line (structurally valid; recent OpenSSH cannot make DSA keys).
pub(crate) fn dsa_line() -> String {
    use base64::Engine as _;
    let mut blob = Vec::new();
    ssh_string(&mut blob, b"ssh-dss");
    for bits in [1024, 160, 1024, 1024] {
        mpint(&mut blob, bits);
    }
    format!(
        "ssh-dss {} dsa@test",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

/// A private key in OpenSSH format (what an employee might paste by mistake).
pub(crate) fn private_pem(key: &PrivateKey) -> String {
    key.to_openssh(ssh_key::LineEnding::LF).unwrap().to_string()
}

/// Every bad public key from the issue: (what, text, API code).
pub(crate) fn bad_keys(dir: &Path) -> Vec<(&'static str, String, &'static str)> {
    let good = line(&ed25519(1));
    let data = good.split(' ').nth(1).unwrap().to_string();
    let (_, rsa2048) = ssh_keygen_rsa(dir, 2048);
    vec![
        (
            "garbage",
            "hello world, this is not a key".into(),
            "invalid_public_key",
        ),
        (
            "truncated base64",
            format!("ssh-ed25519 {} x", &data[..data.len() - 7]),
            "invalid_public_key",
        ),
        (
            "truncated key data",
            format!("ssh-ed25519 {} x", &data[..40]),
            "invalid_public_key",
        ),
        (
            "type name does not match data",
            format!("ssh-rsa {data} x"),
            "invalid_public_key",
        ),
        (
            "several keys",
            format!("{good}\n{}\n", line(&ed25519(2))),
            "invalid_public_key",
        ),
        (
            "private key",
            private_pem(&ed25519(3)),
            "private_key_refused",
        ),
        ("RSA 2048", rsa2048, "weak_key"),
        ("DSA", dsa_line(), "weak_key"),
        (
            "comment with ANSI",
            format!("ssh-ed25519 {data} evil\x1b[2Jcomment"),
            "invalid_public_key",
        ),
        (
            "comment over 1 KiB",
            format!("ssh-ed25519 {data} {}", "c".repeat(1025)),
            "invalid_public_key",
        ),
    ]
}

// --- in-process API server -------------------------------------------------------

/// The API on 127.0.0.1:0 over a store in a temp folder.
pub(crate) struct Api {
    pub addr: SocketAddr,
    pub store: Arc<Store>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub dir: tempfile::TempDir,
}

impl Api {
    pub(crate) async fn start() -> Api {
        Api::start_with(ApiConfig::default()).await
    }

    /// Without the public rate limits (for tests that submit a lot).
    /// [`Api::start`] with these accounts.
    pub(crate) async fn with_users(names: &[&str]) -> Api {
        let api = Api::start().await;
        for name in names {
            api.store
                .add_user(name, &Actor::Cli("test".into()))
                .unwrap();
        }
        api
    }

    pub(crate) async fn start_unlimited() -> Api {
        let lots = pra_registry::api::limit::RateLimit {
            burst: 100_000,
            refill_every: Duration::from_millis(1),
            max_sources: 16,
        };
        Api::start_with(ApiConfig {
            submit_limit: lots,
            status_limit: lots,
            ..ApiConfig::default()
        })
        .await
    }

    pub(crate) async fn start_with(config: ApiConfig) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::sqlite(dir.path()).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(api::serve(listener, store.clone(), config, async move {
            let _ = rx.await;
        }));
        Api {
            addr,
            store,
            stop: Some(tx),
            task: Some(task),
            dir,
        }
    }

    /// Create an admin token; returns the secret.
    pub(crate) fn token(&self, name: &str) -> String {
        let token = format!("pra_test_{name}_{}", unix_now());
        self.store
            .add_token(
                name,
                &api::extract::token_hash(&token),
                None,
                &Actor::Cli("test".into()),
            )
            .unwrap();
        token
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        snapshot(self.store.as_ref())
    }

    pub(crate) async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        request(self.addr, "GET", path, token, None).await
    }

    /// `POST /api/v1/keys` with the [`submission`] of `key` for `user`.
    pub(crate) async fn submit(&self, key: &PrivateKey, user: &str) -> Resp {
        let body = serde_json::to_value(submission(key, user)).unwrap();
        self.post("/api/v1/keys", None, &body).await
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &serde_json::Value,
    ) -> Resp {
        request(
            self.addr,
            "POST",
            path,
            token,
            Some(body.to_string().as_bytes()),
        )
        .await
    }

    pub(crate) async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(BOUND, task)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        }
    }
}

// --- raw HTTP/1.1 client ---------------------------------------------------------

/// A parsed answer.
#[derive(Debug)]
pub(crate) struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    /// The API error code.
    pub(crate) fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_string()
    }
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Parse one HTTP/1.1 answer from the start of `raw`.
pub(crate) fn parse_response(raw: &[u8]) -> Option<Resp> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(rest.len());
    Some(Resp {
        status,
        headers,
        body: rest[..len.min(rest.len())].to_vec(),
    })
}

/// Send raw bytes, then read until the server closes (within [`BOUND`]).
pub(crate) async fn raw(addr: SocketAddr, bytes: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let got = read_all(&mut s).await;
    parse_response(&got)
        .unwrap_or_else(|| panic!("no HTTP answer: {:?}", String::from_utf8_lossy(&got)))
}

/// Read until EOF (or a reset after data), within [`BOUND`].
pub(crate) async fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    tokio::time::timeout(BOUND, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server did not close the connection in time");
    got
}

/// One request with `Connection: close`.
pub(crate) async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some(b) = body {
        bytes.extend_from_slice(b);
    }
    raw(addr, &bytes).await
}

/// Bind port 0 and hold it: an address that is in use.
pub(crate) fn busy_port() -> std::net::TcpListener {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap()
}
