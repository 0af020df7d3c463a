//! A stock OpenSSH `sshd` as a stand-in gateway, for interop tests.
//!
//! The test owns the listener (127.0.0.1:0) and starts `sshd -i` (inetd
//! mode) per accepted connection, so there is no port race. The config is
//! private to the test: its own ed25519 host key, `AuthorizedKeysFile` with
//! the test key whose forced command prints the rules document (so
//! `exec pra-rules` gets a `RulesDocument`), `PermitOpen` for the targets.
#![allow(dead_code)]

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Where the system's sshd lives (Debian: openssh-server).
pub(crate) const SSHD: &str = "/usr/sbin/sshd";

/// The account the test runs as (sshd logs in real users only).
pub(crate) fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// One forwarding rule for the rules document.
#[derive(Clone, Debug)]
pub(crate) struct TestRule {
    /// Name.
    pub name: String,
    /// Local port on the client.
    pub local_port: u16,
    /// Target as seen from sshd.
    pub target: SocketAddr,
}

impl TestRule {
    /// Rule `name`: 127.0.0.1:`local_port` on the client to `target`.
    pub(crate) fn new(name: &str, local_port: u16, target: SocketAddr) -> TestRule {
        TestRule {
            name: name.into(),
            local_port,
            target,
        }
    }
}

/// The JSON the forced command prints.
pub(crate) fn rules_json(user: &str, rules: &[TestRule]) -> String {
    let doc = pra_proto::rules::RulesDocument {
        version: pra_proto::rules::RULES_VERSION,
        user: user.to_string(),
        rules: rules
            .iter()
            .map(|r| pra_proto::rules::Rule {
                name: r.name.clone(),
                local_port: r.local_port,
                target_host: r.target.ip().to_string(),
                target_port: r.target.port(),
            })
            .collect(),
    };
    serde_json::to_string(&doc).expect("json")
}

/// The current user, a new key, rule `name` (on a free rule port) to a
/// new echo server, and a stock sshd that lets that key in and serves the
/// rule: (user, key, echo server, rules, sshd).
pub(crate) async fn one_echo_rule(
    name: &str,
) -> (
    String,
    russh::keys::PrivateKey,
    SocketAddr,
    [TestRule; 1],
    StockSshd,
) {
    let echo = super::net::echo_server().await;
    let (user, key, rules, sshd) = sshd_with(&[(name, echo)], &[echo]);
    let rules = [rules[0].clone()];
    (user, key, echo, rules, sshd)
}

/// The current user, a new key, `rules` ((name, target) on free rule
/// ports), and a stock sshd that lets the key in, serves the rules and
/// permits `permit`: (user, key, rules, sshd).
pub(crate) fn sshd_with(
    rules: &[(&str, SocketAddr)],
    permit: &[SocketAddr],
) -> (String, russh::keys::PrivateKey, Vec<TestRule>, StockSshd) {
    let user = current_user();
    let key = super::net::new_key();
    let rules: Vec<TestRule> = rules
        .iter()
        .map(|(name, target)| TestRule::new(name, super::net::rule_port(), *target))
        .collect();
    let public = super::net::public_line(&key);
    let sshd = StockSshd::start(&public, &rules_json(&user, &rules), permit);
    (user, key, rules, sshd)
}

/// A tunnel to `sshd` as `user` with `key`, its host key pinned, once it is
/// connected (within `within`): the tunnel, its state channel, that state.
pub(crate) async fn connected(
    sshd: &StockSshd,
    user: &str,
    key: russh::keys::PrivateKey,
    within: std::time::Duration,
) -> (
    pra_client::tunnel::Tunnel,
    tokio::sync::watch::Receiver<pra_client::tunnel::TunnelState>,
    pra_client::tunnel::TunnelState,
) {
    let cfg = super::tunnel::config(sshd.addr, Some(&sshd.host_key), user, key);
    let tunnel = pra_client::tunnel::Tunnel::start(cfg);
    let mut rx = tunnel.state();
    let s = super::tunnel::wait_for(&mut rx, within, "connected", |s| {
        s.phase == pra_client::tunnel::Phase::Connected
    })
    .await;
    (tunnel, rx, s)
}

/// Nothing accepts connections on 127.0.0.1:`port`.
pub(crate) async fn nothing_listens(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
}

/// A running stand-in gateway.
pub(crate) struct StockSshd {
    /// Its address.
    pub addr: SocketAddr,
    /// `SHA256:` fingerprint of its host key.
    pub host_key: String,
    /// Its folder (config, keys, log).
    pub dir: tempfile::TempDir,
    children: Arc<Mutex<Vec<Child>>>,
    down: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl StockSshd {
    /// Start with `client_pub` allowed, answering `rules` to `exec`, and
    /// forwarding allowed to `permit` only.
    pub(crate) fn start(client_pub: &str, rules: &str, permit: &[SocketAddr]) -> StockSshd {
        assert!(
            std::path::Path::new(SSHD).exists(),
            "{SSHD} is missing: install openssh-server (scripts/deps.sh)"
        );
        // sshd started by root wants its privilege-separation folder.
        let _ = std::fs::create_dir_all("/run/sshd");
        let dir = tempfile::tempdir().expect("tempdir");
        let p = |n: &str| -> PathBuf { dir.path().join(n) };

        let host = super::net::new_key();
        let host_key = pra_proto::fingerprint(host.public_key());
        let pem = host
            .to_openssh(ssh_key::LineEnding::LF)
            .expect("encode host key");
        write_private(&p("host_ed25519"), pem.as_bytes());
        std::fs::write(p("rules.json"), rules).expect("write rules");
        std::fs::write(
            p("authorized_keys"),
            format!(
                "command=\"cat {}\",no-pty,no-agent-forwarding,no-X11-forwarding {client_pub}\n",
                p("rules.json").display()
            ),
        )
        .expect("write authorized_keys");
        let permit_open = if permit.is_empty() {
            "none".to_string()
        } else {
            permit
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let cfg = format!(
            "HostKey {hk}\nAuthorizedKeysFile {ak}\nStrictModes no\nUsePAM no\nPidFile none\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\nAllowTcpForwarding local\nPermitOpen {permit_open}\n\
             X11Forwarding no\nPermitTTY no\nAllowAgentForwarding no\nLogLevel VERBOSE\n",
            hk = p("host_ed25519").display(),
            ak = p("authorized_keys").display(),
        );
        std::fs::write(p("sshd_config"), cfg).expect("write sshd_config");

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind sshd listener");
        let addr = listener.local_addr().expect("addr");
        let children = Arc::new(Mutex::new(Vec::new()));
        let down = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, d, s) = (children.clone(), down.clone(), stop.clone());
        let config = p("sshd_config");
        let log = p("sshd.log");
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                if d.load(Ordering::SeqCst) {
                    drop(conn);
                    continue;
                }
                let fd = OwnedFd::from(conn);
                let Ok(fd2) = fd.try_clone() else { continue };
                let err = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .expect("sshd log");
                let child = Command::new(SSHD)
                    .arg("-i")
                    .arg("-e")
                    .arg("-f")
                    .arg(&config)
                    .stdin(Stdio::from(fd))
                    .stdout(Stdio::from(fd2))
                    .stderr(Stdio::from(err))
                    .spawn()
                    .expect("spawn sshd -i");
                c.lock().expect("children").push(child);
            }
        });
        StockSshd {
            addr,
            host_key,
            dir,
            children,
            down,
            stop,
        }
    }

    /// Kill every session (as a gateway restart does); with `down`, refuse
    /// new connections until [`StockSshd::up`].
    pub(crate) fn kill_sessions(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        for mut c in self.children.lock().expect("children").drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Accept connections again.
    pub(crate) fn up(&self) {
        self.down.store(false, Ordering::SeqCst);
    }

    /// sshd's log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for StockSshd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        for mut c in self
            .children
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn write_private(path: &std::path::Path, bytes: &[u8]) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("write private file");
    f.write_all(bytes).expect("write");
}
