//! The binaries under test as child processes.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Variables that would change what a binary under test does (proxies for
/// its HTTP calls).
pub const PROXY_VARS: [&str; 8] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Remove [`PROXY_VARS`] and `extra` from `c`'s environment.
pub fn clean_env<'a>(c: &'a mut Command, extra: &[&str]) -> &'a mut Command {
    for v in PROXY_VARS.iter().chain(extra) {
        c.env_remove(v);
    }
    c
}

/// Spawned `c` (stdout and stderr piped) once its stdout is closed: how it
/// exited and what it wrote on stderr (a CLI writing to a closed pipe must
/// not panic).
pub fn with_stdout_closed(c: &mut Command) -> (std::process::ExitStatus, String) {
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    drop(child.stdout.take());
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err).expect("read stderr");
    }
    (child.wait().expect("wait"), err)
}

/// How long [`Listening::read`] waits for the lines.
pub const LISTEN_BOUND: Duration = Duration::from_secs(30);

/// The `NAME listening on ADDR…` lines a `pra-registry serve` prints on
/// stdout when it is ready (`api`, `ssh` with ` host key SHA256:…`,
/// `metrics`).
#[derive(Debug)]
pub struct Listening {
    /// Every stdout line read until all the wanted ones were seen.
    pub lines: Vec<String>,
}

impl Listening {
    /// Read `child`'s piped stdout until a `NAME listening on` line stood
    /// there for each of `names`; the rest of stdout keeps being drained so
    /// the child never blocks on a full pipe. Past [`LISTEN_BOUND`], or when
    /// stdout ends first, the child is killed and the test fails with what
    /// it printed (stderr too, when piped).
    pub fn read(child: &mut Child, names: &[&str]) -> Listening {
        Listening::read_or(child, names, |child| {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            err
        })
    }

    /// [`Listening::read`], with `stderr` telling what the child logged
    /// when the lines do not come.
    pub fn read_or(
        child: &mut Child,
        names: &[&str],
        stderr: impl FnOnce(&mut Child) -> String,
    ) -> Listening {
        let stdout = child.stdout.take().expect("the child's stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let deadline = Instant::now() + LISTEN_BOUND;
        let mut seen = Listening { lines: Vec::new() };
        while !names.iter().all(|n| seen.find(n).is_some()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) => seen.lines.push(l.trim().to_owned()),
                Err(_) => {
                    let _ = child.kill();
                    let err = stderr(child);
                    panic!("no listening lines for {names:?}: {seen:#?}; stderr: {err}");
                }
            }
        }
        seen
    }

    /// What follows `NAME listening on ` (None when no such line was read).
    pub fn find(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name} listening on ");
        self.lines.iter().find_map(|l| l.strip_prefix(&prefix))
    }

    /// Where `name` listens.
    pub fn addr(&self, name: &str) -> SocketAddr {
        let rest = self
            .find(name)
            .unwrap_or_else(|| panic!("no {name} line: {self:#?}"));
        let addr = rest.split_once(' ').map_or(rest, |(a, _)| a);
        addr.parse()
            .unwrap_or_else(|e| panic!("{name} address {addr:?}: {e}"))
    }

    /// The gateway's host key (`SHA256:…`) from the `ssh` line.
    pub fn host_key(&self) -> String {
        let rest = self
            .find("ssh")
            .unwrap_or_else(|| panic!("no ssh line: {self:#?}"));
        let (_, fp) = rest
            .split_once(" host key ")
            .unwrap_or_else(|| panic!("no host key in {rest:?}"));
        fp.trim().to_owned()
    }
}

/// Stop an in-process server: send `stop` and wait (at most `within`) for
/// `task` to end, insisting it ended without an error.
pub async fn stop_server<E: std::fmt::Debug>(
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), E>>>,
    within: Duration,
) {
    if let Some(tx) = stop {
        let _ = tx.send(());
    }
    if let Some(task) = task {
        tokio::time::timeout(within, task)
            .await
            .expect("the server stops in time")
            .unwrap()
            .unwrap();
    }
}

/// A child's output lines, read on a thread, waited for one by one.
pub struct Lines {
    rx: std::sync::mpsc::Receiver<String>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl Lines {
    /// Read `out` (a child's stdout or stderr) line by line until it ends.
    pub fn of(out: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// The next line that `pred` accepts, within `within`; `None` when the
    /// time is up or the output ended first (the lines are in `seen`).
    pub fn wait(&mut self, within: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.rx.recv_timeout(left).ok()?;
            self.seen.push(line.clone());
            if pred(&line) {
                return Some(line);
            }
        }
    }
}
