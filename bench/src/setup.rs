//! The two sides on loopback, set up the way their users set them up:
//! - PRA: a registry folder with user `bench`, the client's key (made by
//!   `pra keygen`, passphrase-protected, approved with `key import
//!   --approve`), one rule per target, `pra-registry serve`, and
//!   `pra connect` with `PRA_PASSPHRASE`.
//! - OpenSSH: a stock `sshd` with a temporary config (127.0.0.1, public-key
//!   only, `AllowTcpForwarding yes`) and `ssh -N -L …` with a
//!   passphrase-protected ed25519 key (bcrypt-pbkdf, 16 rounds, as PRA's)
//!   whose passphrase comes from `SSH_ASKPASS` (`SSH_ASKPASS_REQUIRE=force`),
//!   the host key checked against a `known_hosts` file.
//!
//! Both also accept one unencrypted library key (the in-process session
//! measurements log in with it).

use crate::procs::{self, Proc};
use anyhow::{Context, Result, bail};
use russh::keys::PrivateKey;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Passphrase of both sides' keys (a throwaway, for this benchmark only).
pub(crate) const PASSPHRASE: &str = "bench passphrase, not a secret";
/// Account name on the PRA side.
pub(crate) const USER: &str = "bench";

/// Where the release binaries are.
#[derive(Clone, Debug)]
pub(crate) struct Bins {
    /// `pra`.
    pub pra: PathBuf,
    /// `pra-registry`.
    pub registry: PathBuf,
}

/// The local ports of one side's forwards.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Forwards {
    /// → iperf3 server.
    pub iperf: u16,
    /// → echo server.
    pub echo: u16,
    /// → firehose (writes, never reads).
    pub firehose: u16,
    /// → black hole (never reads).
    pub blackhole: u16,
}

impl Forwards {
    fn pick() -> Result<Forwards> {
        Ok(Forwards {
            iperf: procs::free_port()?,
            echo: procs::free_port()?,
            firehose: procs::free_port()?,
            blackhole: procs::free_port()?,
        })
    }

    /// All four ports.
    pub(crate) fn all(&self) -> [u16; 4] {
        [self.iperf, self.echo, self.firehose, self.blackhole]
    }
}

/// The targets: iperf3 server and `pra-bench targets`.
pub(crate) struct Targets {
    /// iperf3 server port.
    pub iperf: u16,
    /// Echo server port.
    pub echo: u16,
    /// Firehose port.
    pub firehose: u16,
    /// Black hole port.
    pub blackhole: u16,
    _iperf: Proc,
    _others: Proc,
}

impl Targets {
    /// Start them.
    pub(crate) fn start(dir: &Path) -> Result<Targets> {
        let iperf = procs::free_port()?;
        let iperf_proc = Proc::spawn(
            "iperf3 -s",
            Command::new("iperf3")
                .args(["-s", "-B", "127.0.0.1", "-p", &iperf.to_string()])
                .stdin(Stdio::null())
                .stdout(fs::File::create(dir.join("iperf3-server.log"))?)
                .stderr(Stdio::null()),
        )?;
        let mut others = Proc::spawn(
            "pra-bench targets",
            Command::new(std::env::current_exe()?)
                .arg("targets")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()),
        )?;
        let out = others.take_stdout().context("targets stdout")?;
        let mut lines = BufReader::new(out).lines();
        let mut port = |name: &str| -> Result<u16> {
            let line = lines.next().context("targets ended early")??;
            let p = line
                .strip_prefix(name)
                .map(str::trim)
                .context("unexpected targets line")?;
            Ok(p.parse()?)
        };
        let (echo, firehose, blackhole) = (port("echo")?, port("firehose")?, port("blackhole")?);
        procs::wait_listening(&[iperf], Duration::from_secs(10), Instant::now())?;
        Ok(Targets {
            iperf,
            echo,
            firehose,
            blackhole,
            _iperf: iperf_proc,
            _others: others,
        })
    }
}

/// An ed25519 key from the OS RNG.
pub(crate) fn new_key() -> Result<PrivateKey> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(PrivateKey::from(
        ssh_key::private::Ed25519Keypair::from_seed(&seed),
    ))
}

/// Clean environment for a PRA command: no proxies, no `RUST_LOG`.
fn clean(cmd: &mut Command) -> &mut Command {
    let pra = [
        "PRA_HOME",
        "PRA_REGISTRY_DATA",
        "PRA_DATABASE_URL",
        "RUST_LOG",
    ];
    pra_testkit::process::clean_env(cmd, &pra).stdin(Stdio::null())
}

/// The PRA side.
pub(crate) struct PraSide {
    /// Binaries.
    pub bins: Bins,
    /// Registry `--data`.
    pub data: PathBuf,
    /// Client `--home`.
    pub home: PathBuf,
    /// Gateway port.
    pub gw_port: u16,
    /// Gateway host key fingerprint.
    pub host_key: String,
    /// Local ports of the forwards.
    pub fwd: Forwards,
    /// The library key (approved for `bench`).
    pub lib_key: PrivateKey,
    dir: PathBuf,
    gateway: Option<Proc>,
    connect: Option<Proc>,
}

impl PraSide {
    /// Registry, user, keys, rules; nothing running yet.
    pub(crate) fn setup(bins: &Bins, dir: &Path, t: &Targets) -> Result<PraSide> {
        let dir = dir.join("pra");
        fs::create_dir_all(&dir)?;
        let data = dir.join("registry");
        let home = dir.join("client");
        let mut side = PraSide {
            bins: bins.clone(),
            data,
            home,
            gw_port: procs::free_port()?,
            host_key: String::new(),
            fwd: Forwards::pick()?,
            lib_key: new_key()?,
            dir,
            gateway: None,
            connect: None,
        };
        side.reg(&["user", "add", USER])?;
        side.host_key = side.reg(&["hostkey"])?.trim().to_string();
        side.pra(&[
            "server",
            "set",
            &format!("127.0.0.1:{}", side.gw_port),
            "--host-key",
            &side.host_key.clone(),
        ])?;
        side.pra(&["keygen", "--user", USER])?;
        let export = side.dir.join("client-key.pub");
        side.pra(&["key", "export", &export.display().to_string()])?;
        side.reg(&["key", "import", &export.display().to_string(), "--approve"])?;
        let lib = side.dir.join("library-key.pub");
        fs::write(
            &lib,
            format!("{}\n", side.lib_key.public_key().to_openssh()?),
        )?;
        side.reg(&[
            "key",
            "import",
            &lib.display().to_string(),
            "--user",
            USER,
            "--approve",
        ])?;
        for (name, local, target) in [
            ("iperf", side.fwd.iperf, t.iperf),
            ("echo", side.fwd.echo, t.echo),
            ("firehose", side.fwd.firehose, t.firehose),
            ("blackhole", side.fwd.blackhole, t.blackhole),
        ] {
            side.reg(&[
                "rule",
                "add",
                "--user",
                USER,
                "--name",
                name,
                "--local",
                &local.to_string(),
                "--target",
                &format!("127.0.0.1:{target}"),
            ])?;
        }
        Ok(side)
    }

    fn reg(&self, args: &[&str]) -> Result<String> {
        let mut c = Command::new(&self.bins.registry);
        clean(&mut c).arg("--data").arg(&self.data).args(args);
        procs::output(&mut c)
    }

    fn pra(&self, args: &[&str]) -> Result<String> {
        let mut c = self.pra_cmd();
        c.args(args);
        procs::output(&mut c)
    }

    /// `pra --home HOME` with `PRA_PASSPHRASE`.
    pub(crate) fn pra_cmd(&self) -> Command {
        let mut c = Command::new(&self.bins.pra);
        clean(&mut c)
            .arg("--home")
            .arg(&self.home)
            .env("PRA_PASSPHRASE", PASSPHRASE);
        c
    }

    /// Start `pra-registry serve` (a fresh process) and wait for its
    /// "ssh listening" line.
    pub(crate) fn start_gateway(&mut self) -> Result<()> {
        self.stop_gateway();
        let out = self.dir.join("serve.out");
        // For profiling by hand: PRA_BENCH_GATEWAY_WRAP="valgrind --tool=massif"
        // runs the gateway under that command.
        let wrap: Vec<String> = std::env::var("PRA_BENCH_GATEWAY_WRAP")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let mut c = match wrap.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&self.bins.registry);
                c
            }
            None => Command::new(&self.bins.registry),
        };
        clean(&mut c)
            .arg("--data")
            .arg(&self.data)
            .args([
                "serve",
                "--ssh",
                &format!("127.0.0.1:{}", self.gw_port),
                "--api",
                "127.0.0.1:0",
                // One approved key logs in from every worker and holds
                // every idle session: the default limit of live sessions
                // per key (4) would turn logins away and count refusals,
                // not logins.
                "--max-sessions-per-key",
                "10000",
            ])
            .stdout(fs::File::create(&out)?)
            .stderr(
                fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join("serve.err"))?,
            );
        let mut p = Proc::spawn("pra-registry serve", &mut c)?;
        let end = Instant::now() + Duration::from_secs(120);
        loop {
            if fs::read_to_string(&out)
                .unwrap_or_default()
                .contains("ssh listening on")
            {
                break;
            }
            if !p.alive() || Instant::now() > end {
                bail!(
                    "the gateway did not start: {}",
                    fs::read_to_string(self.dir.join("serve.err")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.gateway = Some(p);
        Ok(())
    }

    /// Stop the gateway if it runs.
    pub(crate) fn stop_gateway(&mut self) {
        self.stop_connect();
        if let Some(mut p) = self.gateway.take() {
            p.stop();
        }
    }

    /// The gateway's process id.
    pub(crate) fn gateway_pid(&self) -> Option<u32> {
        self.gateway.as_ref().map(Proc::pid)
    }

    /// `pra connect` with its output in files (not waited for).
    pub(crate) fn spawn_connect(&self) -> Result<Proc> {
        let mut c = self.pra_cmd();
        c.arg("connect")
            .stdout(fs::File::create(self.dir.join("connect.out"))?)
            .stderr(fs::File::create(self.dir.join("connect.err"))?);
        Proc::spawn("pra connect", &mut c)
    }

    /// Start `pra connect` and wait until every forward listens.
    pub(crate) fn start_connect(&mut self) -> Result<()> {
        self.stop_connect();
        let started = Instant::now();
        let p = self.spawn_connect()?;
        procs::wait_listening(&self.fwd.all(), Duration::from_secs(30), started).with_context(
            || {
                format!(
                    "pra connect: {}",
                    fs::read_to_string(self.dir.join("connect.err")).unwrap_or_default()
                )
            },
        )?;
        self.connect = Some(p);
        Ok(())
    }

    /// Point `pra` at `127.0.0.1:port` (a delay proxy in front of the
    /// gateway; `None`: the gateway itself), the host key pinned as before.
    pub(crate) fn server_via(&self, port: Option<u16>) -> Result<()> {
        let port = port.unwrap_or(self.gw_port);
        self.pra(&[
            "server",
            "set",
            &format!("127.0.0.1:{port}"),
            "--host-key",
            &self.host_key,
        ])?;
        Ok(())
    }

    /// Stop `pra connect` if it runs and wait until its ports are free.
    pub(crate) fn stop_connect(&mut self) {
        if let Some(mut p) = self.connect.take() {
            p.stop();
            let _ = procs::wait_free(&self.fwd.all());
        }
    }

    /// `pra connect`'s process id.
    pub(crate) fn connect_pid(&self) -> Option<u32> {
        self.connect.as_ref().map(Proc::pid)
    }
}

/// The stock OpenSSH side.
pub(crate) struct SshSide {
    /// sshd's port.
    pub port: u16,
    /// `SHA256:` of sshd's host key.
    pub host_key: String,
    /// Local ports of `ssh -L` (OpenSSH's default cipher).
    pub fwd: Forwards,
    /// Local ports of a second `ssh -L` forced to aes128-gcm (OpenSSH's
    /// fastest cipher on AES-NI), throughput only.
    pub fwd_gcm: Forwards,
    /// The remote user (the account the benchmark runs as).
    pub user: String,
    dir: PathBuf,
    sshd: Option<Proc>,
    client: Option<Proc>,
    client_gcm: Option<Proc>,
    targets: [u16; 4],
}

/// The cipher of the second `ssh -L`.
pub(crate) const GCM: &str = "aes128-gcm@openssh.com";

impl SshSide {
    /// Keys, config, and `sshd` running.
    pub(crate) fn setup(dir: &Path, t: &Targets, lib_key: &PrivateKey) -> Result<SshSide> {
        let dir = dir.join("openssh");
        fs::create_dir_all(&dir)?;
        let p = |n: &str| dir.join(n);
        procs::output(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "bench-host", "-f"])
                .arg(p("host_ed25519")),
        )?;
        procs::output(
            Command::new("ssh-keygen")
                .args([
                    "-q", "-t", "ed25519", "-a", "16", "-N", PASSPHRASE, "-C", "bench",
                ])
                .arg("-f")
                .arg(p("id_ed25519")),
        )?;
        let host_pub = fs::read_to_string(p("host_ed25519.pub"))?;
        let host_key = pra_proto::fingerprint(&ssh_key::PublicKey::from_openssh(host_pub.trim())?);
        let port = procs::free_port()?;
        let client_pub = fs::read_to_string(p("id_ed25519.pub"))?;
        fs::write(
            p("authorized_keys"),
            format!(
                "{}\n{}\n",
                client_pub.trim(),
                lib_key.public_key().to_openssh()?
            ),
        )?;
        fs::write(
            p("known_hosts"),
            format!("[127.0.0.1]:{port} {}\n", host_pub.trim()),
        )?;
        fs::write(
            p("askpass.sh"),
            "#!/bin/sh\nprintf '%s\\n' \"$PRA_BENCH_SSH_PASSPHRASE\"\n",
        )?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(p("askpass.sh"), fs::Permissions::from_mode(0o700))?;
        }
        let cfg = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
             StrictModes no\nUsePAM no\nPidFile none\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\nAllowTcpForwarding yes\nX11Forwarding no\n\
             PermitTTY no\nLogLevel ERROR\n",
            hk = p("host_ed25519").display(),
            ak = p("authorized_keys").display(),
        );
        fs::write(p("sshd_config"), cfg)?;
        // sshd started by root wants its privilege-separation folder.
        let _ = fs::create_dir_all("/run/sshd");
        let sshd = Proc::spawn(
            "sshd",
            Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(p("sshd_config"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(p("sshd.log"))?),
        )?;
        procs::wait_listening(&[port], Duration::from_secs(10), Instant::now())
            .with_context(|| fs::read_to_string(p("sshd.log")).unwrap_or_default())?;
        Ok(SshSide {
            port,
            host_key,
            fwd: Forwards::pick()?,
            fwd_gcm: Forwards::pick()?,
            user: whoami_user()?,
            dir,
            sshd: Some(sshd),
            client: None,
            client_gcm: None,
            targets: [t.iperf, t.echo, t.firehose, t.blackhole],
        })
    }

    /// sshd's listener process id.
    pub(crate) fn sshd_pid(&self) -> Option<u32> {
        self.sshd.as_ref().map(Proc::pid)
    }

    /// `ssh` with the key, the askpass passphrase and the pinned host key;
    /// `-L` for every forward.
    pub(crate) fn ssh_cmd(&self) -> Command {
        self.ssh_cmd_for(&self.fwd, self.port)
    }

    fn ssh_cmd_for(&self, fwd: &Forwards, port: u16) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-F")
            .arg("/dev/null")
            .arg("-i")
            .arg(self.dir.join("id_ed25519"))
            .args([
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "IdentityAgent=none",
                "-o",
                "PreferredAuthentications=publickey",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "ExitOnForwardFailure=yes",
            ])
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                self.dir.join("known_hosts").display()
            ))
            .args(["-p", &port.to_string()]);
        for (local, target) in fwd.all().iter().zip(self.targets) {
            c.arg("-L")
                .arg(format!("127.0.0.1:{local}:127.0.0.1:{target}"));
        }
        c.env("SSH_ASKPASS", self.dir.join("askpass.sh"))
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("PRA_BENCH_SSH_PASSPHRASE", PASSPHRASE)
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        c
    }

    /// The destination argument.
    pub(crate) fn destination(&self) -> String {
        format!("{}@127.0.0.1", self.user)
    }

    /// Start `ssh -N -L …` in the foreground (as children; one with the
    /// default cipher, one with [`GCM`]) and wait until every forward listens.
    pub(crate) fn start_client(&mut self) -> Result<()> {
        self.stop_client();
        for gcm in [false, true] {
            let (fwd, cipher, err) = if gcm {
                (self.fwd_gcm, Some(GCM), "ssh-gcm.err")
            } else {
                (self.fwd, None, "ssh.err")
            };
            let p = self.spawn_client(&fwd, self.port, cipher, err)?;
            if gcm {
                self.client_gcm = Some(p);
            } else {
                self.client = Some(p);
            }
        }
        Ok(())
    }

    /// Start `ssh -N -L …` (default cipher) through `127.0.0.1:port`, a
    /// delay proxy in front of sshd, and wait until every forward listens.
    pub(crate) fn start_client_via(&mut self, port: u16) -> Result<()> {
        self.stop_client();
        let known = self.dir.join("known_hosts");
        let line = fs::read_to_string(&known)?
            .lines()
            .next()
            .and_then(|l| l.split_once(' '))
            .map(|(_, key)| format!("[127.0.0.1]:{port} {key}\n"))
            .context("known_hosts is empty")?;
        fs::OpenOptions::new()
            .append(true)
            .open(&known)?
            .write_all(line.as_bytes())?;
        self.client = Some(self.spawn_client(&self.fwd, port, None, "ssh-delay.err")?);
        Ok(())
    }

    /// `ssh -N -L …` for `fwd` to sshd on `127.0.0.1:port` (with `cipher`,
    /// else the default), its errors in the file `err`; once every forward
    /// listens.
    fn spawn_client(
        &self,
        fwd: &Forwards,
        port: u16,
        cipher: Option<&str>,
        err: &str,
    ) -> Result<Proc> {
        let err = self.dir.join(err);
        let started = Instant::now();
        let mut c = self.ssh_cmd_for(fwd, port);
        if let Some(cipher) = cipher {
            c.args(["-c", cipher]);
        }
        c.arg("-N")
            .arg(self.destination())
            .stderr(fs::File::create(&err)?);
        let p = Proc::spawn("ssh -N -L", &mut c)?;
        procs::wait_listening(&fwd.all(), Duration::from_secs(30), started)
            .with_context(|| fs::read_to_string(&err).unwrap_or_default())?;
        Ok(p)
    }

    /// Stop the `ssh -N` clients if they run.
    pub(crate) fn stop_client(&mut self) {
        for (p, fwd) in [
            (self.client.take(), self.fwd),
            (self.client_gcm.take(), self.fwd_gcm),
        ] {
            if let Some(mut p) = p {
                p.stop();
                let _ = procs::wait_free(&fwd.all());
            }
        }
    }

    /// The ssh client's process id.
    pub(crate) fn client_pid(&self) -> Option<u32> {
        self.client.as_ref().map(Proc::pid)
    }
}

impl Drop for SshSide {
    fn drop(&mut self) {
        self.stop_client();
        if let Some(mut s) = self.sshd.take() {
            s.stop();
        }
    }
}

fn whoami_user() -> Result<String> {
    Ok(procs::output(Command::new("id").arg("-un"))?
        .trim()
        .to_string())
}
