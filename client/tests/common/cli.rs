//! Running `pra connect` as a child process: a key made with `pra keygen`,
//! a stock sshd that accepts it, JSON events read line by line.
#![allow(dead_code)]

use super::TestEnv;
use super::sshd::{StockSshd, TestRule, current_user, rules_json};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `pra keygen` for the current OS user, the public line from `pra key export`.
pub fn keygen_and_export(env: &TestEnv) -> String {
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
pub fn env_with_gateway(rules: &[TestRule], permit: &[SocketAddr]) -> (TestEnv, StockSshd) {
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

/// A running `pra connect`, its stdout lines arriving on a channel.
pub struct Running {
    /// The process.
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line seen so far.
    pub seen: Vec<String>,
}

impl Running {
    /// `pra connect [args]` with the test passphrase.
    pub fn start(env: &TestEnv, args: &[&str]) -> Running {
        let mut c = env.command(Some(super::PASS));
        c.arg("connect").args(args);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn pra connect");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Wait for a stdout line matching `pred`.
    pub fn wait_line(&mut self, within: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if pred(&l) {
                        return l;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    let out = self.child.wait_with_output_lossy();
                    panic!(
                        "no such line within {within:?}; seen: {:#?}; stderr: {out}",
                        self.seen
                    );
                }
            }
        }
    }

    /// SIGTERM, then the exit status and stderr.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String, Vec<String>) {
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
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(500)) {
            self.seen.push(l);
        }
        let err = self.child.wait_with_output_lossy();
        (status, err, self.seen)
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
