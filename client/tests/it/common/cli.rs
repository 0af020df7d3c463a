//! Running `pra connect` as a child process: a key made with `pra keygen`,
//! a stock sshd that accepts it, JSON events read line by line.
#![allow(dead_code)]

use super::TestEnv;
use super::sshd::{StockSshd, TestRule, current_user, rules_json};
use pra_testkit::process::Lines;
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// `pra keygen` for the current OS user, the public line from `pra key export`.
pub(crate) fn keygen_and_export(env: &TestEnv) -> String {
    let user = current_user();
    env.keygen(&user);
    let file = env.path("key.pub");
    env.run(&["key", "export", file.to_str().expect("utf-8 path")])
        .ok();
    super::read(&file)
        .lines()
        .next()
        .expect("public key line")
        .to_string()
}

/// A home with a key and a stock sshd gateway pinned in `config.toml`.
pub(crate) fn env_with_gateway(rules: &[TestRule], permit: &[SocketAddr]) -> (TestEnv, StockSshd) {
    let env = TestEnv::new();
    let public = keygen_and_export(&env);
    let sshd = StockSshd::start(&public, &rules_json(&current_user(), rules), permit);
    env.run(&[
        "server",
        "set",
        &sshd.addr.to_string(),
        "--host-key",
        &sshd.host_key,
    ])
    .ok();
    (env, sshd)
}

/// A home with a key whose gateway is a loopback port nothing listens on:
/// (home, that port).
pub(crate) fn env_with_closed_gateway() -> (TestEnv, u16) {
    let env = TestEnv::new();
    keygen_and_export(&env);
    let port = super::closed_port();
    env.run(&["server", "set", &format!("127.0.0.1:{port}")])
        .ok();
    (env, port)
}

/// A runtime of two workers, for the targets of tests on the test thread.
pub(crate) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// An echo server on `rt`, rule `smtp` on a free rule port to it, and
/// [`env_with_gateway`] for that rule: (echo server, the rule's port, home,
/// sshd).
pub(crate) fn smtp_env(rt: &tokio::runtime::Runtime) -> (SocketAddr, u16, TestEnv, StockSshd) {
    let e1 = rt.block_on(super::net::echo_server());
    let port = super::net::rule_port();
    let (env, sshd) = env_with_gateway(&[TestRule::new("smtp", port, e1)], &[e1]);
    (e1, port, env, sshd)
}

/// Another host key than the gateway's, pinned in `config.toml`.
pub(crate) const OTHER_HOST_KEY: &str = "SHA256:O0dkuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10";

/// Pin [`OTHER_HOST_KEY`] for the gateway (re-pinning a different key
/// needs the address set again with it); returns that key.
pub(crate) fn pin_other_host_key(env: &TestEnv, sshd: &StockSshd) -> &'static str {
    let config = format!(
        "[server]\naddress = \"{}\"\nhost_key = \"{OTHER_HOST_KEY}\"\n",
        sshd.addr
    );
    std::fs::write(env.config_file(), config).expect("write config.toml");
    OTHER_HOST_KEY
}

/// A running `pra connect`, its stdout lines arriving on a channel.
pub(crate) struct Running {
    /// The process.
    pub child: Child,
    /// Its stdout; every line seen so far in `lines.seen`.
    pub lines: Lines,
}

impl Running {
    /// `pra connect [args]` with the test passphrase.
    pub(crate) fn start(env: &TestEnv, args: &[&str]) -> Running {
        let mut c = env.command(Some(super::PASS));
        c.arg("connect").args(args);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn pra connect");
        let lines = Lines::of(child.stdout.take().expect("stdout"));
        Running { child, lines }
    }

    /// Wait for a stdout line matching `pred`.
    pub(crate) fn wait_line(&mut self, within: Duration, pred: impl Fn(&str) -> bool) -> String {
        if let Some(l) = self.lines.wait(within, pred) {
            return l;
        }
        let _ = self.child.kill();
        let out = self.child.wait_with_output_lossy();
        panic!(
            "no such line within {within:?}; seen: {:#?}; stderr: {out}",
            self.lines.seen
        );
    }

    /// SIGTERM, then the exit status and stderr.
    pub(crate) fn terminate(mut self) -> (std::process::ExitStatus, String, Vec<String>) {
        let pid = self.child.id().to_string();
        // The shell's builtin kill: no procps needed.
        let _ = std::process::Command::new("sh")
            .args(["-c", &format!("kill -TERM {pid}")])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "pra connect did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        // the rest of stdout, until it ends
        let _ = self.lines.wait(Duration::from_secs(5), |_| false);
        let err = self.child.wait_with_output_lossy();
        (status, err, self.lines.seen)
    }
}

trait StderrLossy {
    fn wait_with_output_lossy(&mut self) -> String;
}

impl StderrLossy for Child {
    fn wait_with_output_lossy(&mut self) -> String {
        use std::io::Read;
        let _ = self.wait();
        let mut s = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}
