//! Gateway test helpers: a real gateway on 127.0.0.1:0 over SQLite in a temp
//! folder, forward targets on 127.0.0.1:0 (echo, silent, pusher), a russh
//! client that pins the gateway's host key, and the stock OpenSSH client.

use super::{BOUND, device, line};
use pra_proto::api::KeyStatus;
use pra_registry::gateway::hostkey::{self, HostKey};
use pra_registry::gateway::{self, GatewayConfig};
use pra_registry::model::{Actor, AuditEntry, AuditQuery, NewKey, RuleRecord};
use pra_registry::store::Store;
use pra_registry::store::sqlite::SqliteStore;
use russh::client;
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use ssh_key::PrivateKey;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub fn admin() -> Actor {
    Actor::Cli("test".into())
}

// --- the gateway -------------------------------------------------------------------

/// A gateway on 127.0.0.1:0 over the SQLite registry in `data`.
pub struct Gateway {
    pub addr: SocketAddr,
    pub store: Arc<SqliteStore>,
    pub host_key: HostKey,
    pub data: PathBuf,
    _dir: Option<tempfile::TempDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), pra_registry::error::RegistryError>>>,
}

/// Test defaults: quick refusals, everything else as shipped.
pub fn test_config(host_key: HostKey) -> GatewayConfig {
    let mut cfg = GatewayConfig::new(host_key);
    cfg.auth_rejection_time = Duration::from_millis(100);
    cfg
}

impl Gateway {
    pub async fn start() -> Gateway {
        Gateway::start_with(|_| {}).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut GatewayConfig)) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut gw = Gateway::start_in(&data, tune).await;
        gw._dir = Some(dir);
        gw
    }

    /// On an existing data folder (e.g. one the CLI binary also uses).
    pub async fn start_in(data: &Path, tune: impl FnOnce(&mut GatewayConfig)) -> Gateway {
        let store = Arc::new(SqliteStore::open(data).unwrap());
        let host_key = hostkey::load_or_create(data).unwrap();
        let mut cfg = test_config(host_key.clone());
        tune(&mut cfg);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let dyn_store: Arc<dyn Store> = store.clone();
        let task = tokio::spawn(gateway::run(listener, dyn_store, cfg, async move {
            let _ = rx.await;
        }));
        Gateway {
            addr,
            store,
            host_key,
            data: data.to_path_buf(),
            _dir: None,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn fingerprint(&self) -> String {
        self.host_key.fingerprint()
    }

    pub fn add_user(&self, name: &str) {
        self.store.add_user(name, &admin()).unwrap();
    }

    /// Register `key` for `user` (created if needed) with `status`; returns
    /// its fingerprint.
    pub fn add_key(&self, user: &str, key: &PrivateKey, status: KeyStatus) -> String {
        let valid = pra_registry::validate::public_key(&line(key)).unwrap();
        let (rec, _) = self
            .store
            .add_key(
                NewKey {
                    fingerprint: valid.fingerprint.clone(),
                    user: user.into(),
                    public_key: valid.line,
                    algorithm: valid.algorithm,
                    device: device(),
                    status,
                },
                true,
                &admin(),
            )
            .unwrap();
        rec.fingerprint
    }

    /// A user with an approved key.
    pub fn approved(&self, user: &str, key: &PrivateKey) -> String {
        self.add_key(user, key, KeyStatus::Approved)
    }

    pub fn add_rule(&self, user: &str, name: &str, local_port: u16, host: &str, port: u16) {
        self.store
            .add_rule(
                RuleRecord {
                    user: user.into(),
                    name: name.into(),
                    local_port,
                    target_host: host.into(),
                    target_port: port,
                },
                &admin(),
            )
            .unwrap();
    }

    pub fn store_key(&self, fp: &str) -> pra_registry::model::KeyRecord {
        self.store.get_key(fp).unwrap().unwrap()
    }

    pub fn revoke(&self, fp: &str) {
        self.store
            .set_key_status(fp, KeyStatus::Revoked, &admin())
            .unwrap();
    }

    /// Audit entries of `kind`, newest first.
    pub fn audit(&self, kind: &str) -> Vec<AuditEntry> {
        self.store
            .audit(&AuditQuery {
                kind_prefix: Some(kind.into()),
                limit: 1000,
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .filter(|e| e.event.kind == kind)
            .collect()
    }

    /// Wait (bounded) for an audit entry of `kind` that `pred` accepts.
    pub async fn wait_audit(&self, kind: &str, pred: impl Fn(&AuditEntry) -> bool) -> AuditEntry {
        let start = Instant::now();
        loop {
            if let Some(e) = self.audit(kind).into_iter().find(|e| pred(e)) {
                return e;
            }
            assert!(
                start.elapsed() < BOUND,
                "no {kind} audit entry within {BOUND:?}; have: {:?}",
                self.audit(kind)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("gateway stops")
                .unwrap()
                .unwrap();
        }
    }
}

// --- forward targets -----------------------------------------------------------------

/// Echoes every connection back; returns its address.
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

/// Accepts connections and never reads from them (keeps them open).
pub async fn silent_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    addr
}

/// Writes an endless stream of bytes to every connection.
pub async fn pusher_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let chunk = vec![0x5au8; 64 * 1024];
                while s.write_all(&chunk).await.is_ok() {}
            });
        }
    });
    addr
}

/// Bytes that are not all alike (catch reordering and truncation).
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    let mut x = u32::from(seed).wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

// --- russh client -----------------------------------------------------------------------

/// A client handler that accepts only the gateway's host key.
pub struct Pinned {
    pub fingerprint: String,
}

impl client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                pra_proto::fingerprint(key) == self.fingerprint
            }
            PublicKeyOrCertificate::Certificate(_) => false,
        })
    }
}

pub type Client = client::Handle<Pinned>;

/// An SSH connection to the gateway, not logged in.
pub async fn connect(gw: &Gateway) -> Client {
    let config = Arc::new(client::Config::default());
    tokio::time::timeout(
        BOUND,
        client::connect(
            config,
            gw.addr,
            Pinned {
                fingerprint: gw.fingerprint(),
            },
        ),
    )
    .await
    .expect("connect within bound")
    .expect("ssh handshake")
}

/// An SSH connection to the gateway from the loopback address `source`
/// (any of 127.0.0.0/8 works on Linux), not logged in.
pub async fn connect_from(gw: &Gateway, source: std::net::IpAddr) -> Client {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    let stream = socket.connect(gw.addr).await.unwrap();
    let config = Arc::new(client::Config::default());
    tokio::time::timeout(
        BOUND,
        client::connect_stream(
            config,
            stream,
            Pinned {
                fingerprint: gw.fingerprint(),
            },
        ),
    )
    .await
    .expect("connect within bound")
    .expect("ssh handshake")
}

/// Authenticate an open connection: true when accepted.
pub async fn authenticate(c: &mut Client, user: &str, key: &PrivateKey) -> client::AuthResult {
    tokio::time::timeout(
        BOUND,
        c.authenticate_publickey(
            user,
            PrivateKeyWithHashAlg::new(Arc::new(key.clone()), None),
        ),
    )
    .await
    .expect("auth answer within bound")
    .expect("auth exchange")
}

/// Try to log in as `user` with `key`: Ok(connection) or Err(connection).
pub async fn try_login(gw: &Gateway, user: &str, key: &PrivateKey) -> Result<Client, Client> {
    let mut c = connect(gw).await;
    let ok = tokio::time::timeout(
        BOUND,
        c.authenticate_publickey(
            user,
            PrivateKeyWithHashAlg::new(Arc::new(key.clone()), None),
        ),
    )
    .await
    .expect("auth answer within bound")
    .expect("auth exchange")
    .success();
    if ok { Ok(c) } else { Err(c) }
}

/// Log in or fail the test.
pub async fn login(gw: &Gateway, user: &str, key: &PrivateKey) -> Client {
    match try_login(gw, user, key).await {
        Ok(c) => c,
        Err(_) => panic!("{user} could not log in"),
    }
}

/// Run `exec pra-rules`: (stdout, exit status).
pub async fn exec(c: &Client, command: &str) -> (Vec<u8>, Option<u32>, bool) {
    let mut ch = c.channel_open_session().await.unwrap();
    ch.exec(true, command).await.unwrap();
    let mut out = Vec::new();
    let mut status = None;
    let mut failed = false;
    tokio::time::timeout(BOUND, async {
        while let Some(msg) = ch.wait().await {
            match msg {
                russh::ChannelMsg::Data { data } => out.extend_from_slice(&data),
                russh::ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                russh::ChannelMsg::Failure => {
                    failed = true;
                    break;
                }
                russh::ChannelMsg::Close => break,
                _ => {}
            }
        }
    })
    .await
    .expect("exec answered within bound");
    let _ = ch.close().await;
    (out, status, failed)
}

/// Open forwards to `host:port` until one is accepted (`want_open`) or
/// refused (`!want_open`); a rule change must show within `bound`. Returns
/// the accepted stream and how long it took.
pub async fn forward_once(
    c: &Client,
    host: &str,
    port: u32,
    want_open: bool,
    bound: Duration,
) -> (Option<russh::ChannelStream<client::Msg>>, Duration) {
    let start = Instant::now();
    loop {
        match forward(c, host, port).await {
            Ok(s) if want_open => return (Some(s), start.elapsed()),
            Err(_) if !want_open => return (None, start.elapsed()),
            _ => {}
        }
        assert!(
            start.elapsed() < bound,
            "{host}:{port} still {} after {bound:?}",
            if want_open { "refused" } else { "open" }
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Open a forward through the gateway as a byte stream.
pub async fn forward(
    c: &Client,
    host: &str,
    port: u32,
) -> Result<russh::ChannelStream<client::Msg>, russh::Error> {
    tokio::time::timeout(
        BOUND,
        c.channel_open_direct_tcpip(host, port, "127.0.0.1", 40000),
    )
    .await
    .expect("channel open answered within bound")
    .map(|ch| ch.into_stream())
}

/// Send `data` through an echoing stream while reading the echo back
/// concurrently; returns what came back.
pub async fn echo_through<S>(stream: S, data: Vec<u8>) -> Vec<u8>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut r, mut w) = tokio::io::split(stream);
    let len = data.len();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w.flush().await.unwrap();
        w
    });
    let mut back = vec![0u8; len];
    r.read_exact(&mut back).await.unwrap();
    let _w = writer.await.unwrap();
    back
}

// --- OpenSSH client ----------------------------------------------------------------------

/// The stock `ssh` client set up to pin the gateway's host key and use one
/// key file, with no user or system configuration.
pub struct OpenSsh {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub user: String,
    key: PathBuf,
    known_hosts: PathBuf,
}

impl OpenSsh {
    pub fn new(gw: &Gateway, user: &str, key: &PrivateKey) -> OpenSsh {
        OpenSsh::for_gateway(gw.port(), &gw.host_key.openssh_public(), user, key)
    }

    /// For a gateway on 127.0.0.1:`port` whose host key is `public` (an
    /// OpenSSH public-key line), e.g. one running in another process.
    pub fn for_gateway(port: u16, public: &str, user: &str, key: &PrivateKey) -> OpenSsh {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("id_ed25519");
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&key_path)
                .unwrap();
            f.write_all(key.to_openssh(ssh_key::LineEnding::LF).unwrap().as_bytes())
                .unwrap();
        }
        let known_hosts = dir.path().join("known_hosts");
        std::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {public}\n")).unwrap();
        OpenSsh {
            dir,
            port,
            user: user.into(),
            key: key_path,
            known_hosts,
        }
    }

    /// `ssh` with the pinning options; add arguments, then the host comes last
    /// through [`OpenSsh::host`].
    pub fn command(&self) -> Command {
        self.command_logging("ERROR")
    }

    /// [`OpenSsh::command`] at another `LogLevel` (e.g. `DEBUG1`).
    pub fn command_logging(&self, level: &str) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-F")
            .arg("/dev/null")
            .args(["-o", "BatchMode=yes"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args(["-o", "GlobalKnownHostsFile=/dev/null"])
            .args(["-o", "StrictHostKeyChecking=yes"])
            .args(["-o", "IdentitiesOnly=yes"])
            .args(["-o", "IdentityAgent=none"])
            .args(["-o", "ConnectTimeout=10"])
            .arg("-o")
            .arg(format!("LogLevel={level}"))
            .arg("-i")
            .arg(&self.key)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-l")
            .arg(&self.user);
        c
    }

    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }
}

/// Run a command with `stdin`, killing it if it outlives `limit`.
pub fn run_bounded(mut cmd: Command, stdin: &[u8], limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ssh (openssh-client) is needed, see scripts/deps.sh");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
        drop(input);
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let ereader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let s = child.wait().unwrap();
            panic!(
                "command did not finish within {limit:?} ({s}); it hangs: {:?}",
                cmd.get_args().collect::<Vec<_>>()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    writer.join().unwrap();
    Output {
        status,
        stdout: reader.join().unwrap(),
        stderr: ereader.join().unwrap(),
    }
}

/// A running `ssh -N` with local forwards on unix sockets; killed on drop.
pub struct Tunnel {
    child: std::process::Child,
}

impl Tunnel {
    /// `ssh -N -L SOCK:HOST:PORT …` for each `(socket, host, port)`; waits
    /// (bounded) until every socket accepts connections.
    pub async fn open(ssh: &OpenSsh, forwards: &[(&Path, &str, u16)]) -> Tunnel {
        let mut cmd = ssh.command();
        cmd.arg("-N")
            .args(["-o", "ExitOnForwardFailure=yes"])
            .args(["-o", "StreamLocalBindUnlink=yes"]);
        for (sock, host, port) in forwards {
            cmd.arg("-L")
                .arg(format!("{}:{host}:{port}", sock.display()));
        }
        cmd.arg(ssh.host())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("ssh is needed, see scripts/deps.sh");
        let start = Instant::now();
        for (sock, _, _) in forwards {
            loop {
                // Created by bind(2) right before listen(2); see [`unix`].
                if sock.exists() {
                    break;
                }
                if let Some(status) = child.try_wait().unwrap() {
                    let mut err = String::new();
                    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
                    panic!("ssh -N -L exited ({status}): {err}");
                }
                assert!(start.elapsed() < BOUND, "ssh -L socket never appeared");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Tunnel { child }
    }

    /// Is the ssh process still running?
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connect to a TCP address (helper for targets).
pub async fn tcp(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.unwrap()
}

/// Connect to a forward's unix socket (retrying the instant between the
/// socket file appearing and ssh listening on it).
pub async fn unix(sock: &Path) -> tokio::net::UnixStream {
    let start = Instant::now();
    loop {
        match tokio::net::UnixStream::connect(sock).await {
            Ok(s) => return s,
            Err(e) => {
                assert!(
                    start.elapsed() < BOUND,
                    "cannot connect to {}: {e}",
                    sock.display()
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
