//! Gateway test helpers: a real gateway on 127.0.0.1:0 over SQLite in a temp
//! folder, forward targets on 127.0.0.1:0 (echo, silent, pusher), a russh
//! client that pins the gateway's host key, and the stock OpenSSH client.

use super::{BOUND, device, line};
use pra_proto::api::KeyStatus;
use pra_registry::gateway::hostkey::{self, HostKey};
use pra_registry::gateway::{self, GatewayConfig};
use pra_registry::model::{Actor, AuditEntry, AuditQuery, NewKey, RuleRecord};
use pra_registry::store::Store;
use russh::client;
use russh::keys::PrivateKeyWithHashAlg;
use ssh_key::PrivateKey;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub(crate) fn admin() -> Actor {
    Actor::Cli("test".into())
}

// --- the gateway -------------------------------------------------------------------

/// A gateway on 127.0.0.1:0 over the SQLite registry in `data`.
pub(crate) struct Gateway {
    pub addr: SocketAddr,
    pub store: Arc<Store>,
    pub host_key: HostKey,
    pub data: PathBuf,
    _dir: Option<tempfile::TempDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), pra_registry::error::RegistryError>>>,
}

/// Test defaults: quick refusals, everything else as shipped.
pub(crate) fn test_config(host_key: HostKey) -> GatewayConfig {
    let mut cfg = GatewayConfig::new(host_key);
    cfg.auth_rejection_time = Duration::from_millis(100);
    cfg
}

impl Gateway {
    pub(crate) async fn start() -> Gateway {
        Gateway::start_with(|_| {}).await
    }

    pub(crate) async fn start_with(tune: impl FnOnce(&mut GatewayConfig)) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut gw = Gateway::start_in(&data, tune).await;
        gw._dir = Some(dir);
        gw
    }

    /// On an existing data folder (e.g. one the CLI binary also uses).
    pub(crate) async fn start_in(data: &Path, tune: impl FnOnce(&mut GatewayConfig)) -> Gateway {
        let store = Arc::new(Store::sqlite(data).unwrap());
        let host_key = hostkey::load_or_create(data).unwrap();
        let mut cfg = test_config(host_key.clone());
        tune(&mut cfg);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(gateway::run(listener, store.clone(), cfg, async move {
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

    /// A gateway where `user` has a new approved key: (gateway, key).
    pub(crate) async fn with_user(user: &str) -> (Gateway, PrivateKey) {
        let gw = Gateway::start().await;
        let key = super::random_ed25519();
        gw.approved(user, &key);
        (gw, key)
    }

    /// A gateway where `user` has a new approved key and a rule `echo`
    /// (local port 15432) to a new echo server: (gateway, key, echo server,
    /// the key's fingerprint).
    pub(crate) async fn with_echo_rule(user: &str) -> (Gateway, PrivateKey, SocketAddr, String) {
        let gw = Gateway::start().await;
        let echo = echo_server().await;
        let key = super::random_ed25519();
        let fp = gw.approved(user, &key);
        gw.add_rule(user, "echo", 15432, "127.0.0.1", echo.port());
        (gw, key, echo, fp)
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    pub(crate) fn fingerprint(&self) -> String {
        self.host_key.fingerprint()
    }

    pub(crate) fn add_user(&self, name: &str) {
        self.store.add_user(name, &admin()).unwrap();
    }

    /// Register `key` for `user` (created if needed) with `status`; returns
    /// its fingerprint.
    pub(crate) fn add_key(&self, user: &str, key: &PrivateKey, status: KeyStatus) -> String {
        add_key_to(self.store.as_ref(), user, key, status)
    }

    /// A user with an approved key.
    pub(crate) fn approved(&self, user: &str, key: &PrivateKey) -> String {
        self.add_key(user, key, KeyStatus::Approved)
    }

    pub(crate) fn add_rule(&self, user: &str, name: &str, local_port: u16, host: &str, port: u16) {
        add_rule_to(self.store.as_ref(), user, name, local_port, host, port);
    }

    pub(crate) fn store_key(&self, fp: &str) -> pra_registry::model::KeyRecord {
        self.store.get_key(fp).unwrap().unwrap()
    }

    pub(crate) fn revoke(&self, fp: &str) {
        self.store
            .set_key_status(fp, KeyStatus::Revoked, &admin())
            .unwrap();
    }

    /// Audit entries of `kind`, newest first.
    pub(crate) fn audit(&self, kind: &str) -> Vec<AuditEntry> {
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
    pub(crate) async fn wait_audit(
        &self,
        kind: &str,
        pred: impl Fn(&AuditEntry) -> bool,
    ) -> AuditEntry {
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

    /// Wait (bounded) for a `session.revoked` entry of `user`.
    pub(crate) async fn wait_revoked(&self, user: &str) -> AuditEntry {
        self.wait_audit("session.revoked", |e| e.event.user.as_deref() == Some(user))
            .await
    }

    pub(crate) async fn stop(mut self) {
        let within = Duration::from_secs(15);
        pra_testkit::process::stop_server(self.stop.take(), self.task.take(), within).await;
    }
}

/// Register `key` for `user` (created if needed) with `status` in `store`;
/// returns its fingerprint.
pub(crate) fn add_key_to(store: &Store, user: &str, key: &PrivateKey, status: KeyStatus) -> String {
    let valid = pra_registry::validate::public_key(&line(key)).unwrap();
    let new = NewKey::new(valid, user, device(), status);
    store.add_key(new, true, &admin()).unwrap().0.fingerprint
}

/// Rule `name` of `user` in `store`: `local_port` to `host:port`.
pub(crate) fn add_rule_to(
    store: &Store,
    user: &str,
    name: &str,
    local_port: u16,
    host: &str,
    port: u16,
) {
    let rule = RuleRecord::new(user, name, local_port, host, port);
    store.add_rule(rule, &admin()).unwrap();
}

// --- forward targets -----------------------------------------------------------------

pub(crate) use pra_testkit::net::{echo_server, pattern, silent_server};

/// Writes an endless stream of bytes to every connection.
pub(crate) async fn pusher_server() -> SocketAddr {
    pra_testkit::net::endless_server(vec![0x5au8; 64 * 1024]).await
}

// --- russh client -----------------------------------------------------------------------

pub(crate) use pra_testkit::ssh::Pinned;

pub(crate) type Client = client::Handle<Pinned>;

/// An SSH connection to the gateway, not logged in.
pub(crate) async fn connect(gw: &Gateway) -> Client {
    connect_to(gw.addr, &gw.fingerprint()).await
}

/// An SSH connection to `addr` that pins `host_key`, not logged in.
pub(crate) async fn connect_to(addr: SocketAddr, host_key: &str) -> Client {
    tokio::time::timeout(
        BOUND,
        client::connect(
            Arc::new(client::Config::default()),
            addr,
            Pinned::new(host_key.to_owned()),
        ),
    )
    .await
    .expect("connect within bound")
    .expect("ssh handshake")
}

/// An SSH connection to the gateway from the loopback address `source`
/// (any of 127.0.0.0/8 works on Linux), not logged in.
pub(crate) async fn connect_from(gw: &Gateway, source: std::net::IpAddr) -> Client {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    let stream = socket.connect(gw.addr).await.unwrap();
    let config = Arc::new(client::Config::default());
    tokio::time::timeout(
        BOUND,
        client::connect_stream(config, stream, Pinned::new(gw.fingerprint())),
    )
    .await
    .expect("connect within bound")
    .expect("ssh handshake")
}

/// Authenticate an open connection: true when accepted.
pub(crate) async fn authenticate(
    c: &mut Client,
    user: &str,
    key: &PrivateKey,
) -> client::AuthResult {
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
pub(crate) async fn try_login(
    gw: &Gateway,
    user: &str,
    key: &PrivateKey,
) -> Result<Client, Client> {
    try_login_at(gw.addr, &gw.fingerprint(), user, key).await
}

/// [`try_login`] to the gateway on `addr` whose host key is `host_key`.
pub(crate) async fn try_login_at(
    addr: SocketAddr,
    host_key: &str,
    user: &str,
    key: &PrivateKey,
) -> Result<Client, Client> {
    let mut c = connect_to(addr, host_key).await;
    if authenticate(&mut c, user, key).await.success() {
        Ok(c)
    } else {
        Err(c)
    }
}

/// Log in or fail the test.
pub(crate) async fn login(gw: &Gateway, user: &str, key: &PrivateKey) -> Client {
    match try_login(gw, user, key).await {
        Ok(c) => c,
        Err(_) => panic!("{user} could not log in"),
    }
}

/// Run `exec pra-rules`: (stdout, exit status).
pub(crate) async fn exec(c: &Client, command: &str) -> (Vec<u8>, Option<u32>, bool) {
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
pub(crate) async fn forward_once(
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
pub(crate) async fn forward(
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
pub(crate) async fn echo_through<S>(stream: S, data: Vec<u8>) -> Vec<u8>
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
pub(crate) struct OpenSsh {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub user: String,
    key: PathBuf,
    known_hosts: PathBuf,
}

impl OpenSsh {
    pub(crate) fn new(gw: &Gateway, user: &str, key: &PrivateKey) -> OpenSsh {
        OpenSsh::for_gateway(gw.port(), &gw.host_key.openssh_public(), user, key)
    }

    /// For a gateway on 127.0.0.1:`port` whose host key is `public` (an
    /// OpenSSH public-key line), e.g. one running in another process.
    pub(crate) fn for_gateway(port: u16, public: &str, user: &str, key: &PrivateKey) -> OpenSsh {
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
    pub(crate) fn command(&self) -> Command {
        self.command_logging("ERROR")
    }

    /// [`OpenSsh::command`] at another `LogLevel` (e.g. `DEBUG1`).
    pub(crate) fn command_logging(&self, level: &str) -> Command {
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

    pub(crate) fn host(&self) -> &'static str {
        "127.0.0.1"
    }
}

/// Run a command with `stdin`, killing it if it outlives `limit`.
pub(crate) fn run_bounded(mut cmd: Command, stdin: &[u8], limit: Duration) -> Output {
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

/// [`run_bounded`] off the async runtime.
pub(crate) async fn run_blocking(cmd: Command, stdin: Vec<u8>, limit: Duration) -> Output {
    tokio::task::spawn_blocking(move || run_bounded(cmd, &stdin, limit))
        .await
        .unwrap()
}

/// [`run_blocking`], insisting on success (stderr shown otherwise).
pub(crate) async fn run_ok(cmd: Command, stdin: Vec<u8>, limit: Duration) -> Output {
    let out = run_blocking(cmd, stdin, limit).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A running `ssh -N` with local forwards on unix sockets; killed on drop.
pub(crate) struct Tunnel {
    child: std::process::Child,
}

impl Tunnel {
    /// `ssh -N -L SOCK:HOST:PORT …` for each `(socket, host, port)`; waits
    /// (bounded) until every socket accepts connections.
    pub(crate) async fn open(ssh: &OpenSsh, forwards: &[(&Path, &str, u16)]) -> Tunnel {
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
    pub(crate) fn alive(&mut self) -> bool {
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
pub(crate) async fn tcp(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.unwrap()
}

/// Connect to a forward's unix socket (retrying the instant between the
/// socket file appearing and ssh listening on it).
pub(crate) async fn unix(sock: &Path) -> tokio::net::UnixStream {
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
