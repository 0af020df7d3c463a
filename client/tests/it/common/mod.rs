//! Helpers shared by the `pra` CLI tests: a temp home, running the real
//! binary, asserting the one error line. Add helpers; do not rewrite.
#![allow(dead_code)]

#[cfg(unix)]
pub(crate) mod cli;
pub(crate) mod net;
#[cfg(unix)]
pub(crate) mod sshd;
pub(crate) mod tunnel;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

/// The passphrase the helpers put in `PRA_PASSPHRASE` unless told otherwise.
pub(crate) const PASS: &str = "correct horse battery staple";

/// Path of the `pra` binary under test.
pub(crate) fn pra_bin() -> &'static str {
    env!("CARGO_BIN_EXE_pra")
}

/// A temporary `--home` for one test.
pub(crate) struct TestEnv {
    /// Keeps the folder alive.
    pub dir: tempfile::TempDir,
    /// The `--home` folder (inside `dir`, created by the client).
    pub home: PathBuf,
}

/// What one run printed.
#[derive(Debug)]
pub(crate) struct Out {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Out {
    /// Assert success and return stdout.
    #[track_caller]
    pub(crate) fn ok(&self) -> &str {
        assert!(self.status.success(), "expected success, got {self:#?}");
        &self.stdout
    }

    /// Assert failure whose stderr is one line starting with `prefix`.
    #[track_caller]
    pub(crate) fn err(&self, prefix: &str) -> &str {
        assert!(!self.status.success(), "expected failure, got {self:#?}");
        let line = self.stderr.trim_end();
        assert!(
            line.starts_with(prefix),
            "expected stderr to start with {prefix:?}, got {self:#?}"
        );
        assert_eq!(
            line.lines().count(),
            1,
            "one error line expected: {self:#?}"
        );
        line
    }
}

impl TestEnv {
    /// A fresh home in a fresh temp folder.
    pub(crate) fn new() -> TestEnv {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        TestEnv { dir, home }
    }

    /// A fresh home with the key of `user` ([`TestEnv::keygen`]).
    pub(crate) fn with_key(user: &str) -> TestEnv {
        let env = TestEnv::new();
        env.keygen(user);
        env
    }

    /// A path inside the temp folder (outside the home).
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `pra --home HOME` with `PRA_PASSPHRASE` = `pass` (removed if `None`),
    /// no proxy variables and no stdin.
    pub(crate) fn command(&self, pass: Option<&str>) -> Command {
        let mut c = Command::new(pra_bin());
        c.arg("--home").arg(&self.home);
        clean_env(&mut c);
        match pass {
            Some(p) => c.env("PRA_PASSPHRASE", p),
            None => c.env_remove("PRA_PASSPHRASE"),
        };
        c.stdin(Stdio::null());
        c
    }

    /// Run `pra` with [`PASS`].
    pub(crate) fn run(&self, args: &[&str]) -> Out {
        self.run_pass(Some(PASS), args)
    }

    /// Run `pra` with the given passphrase (or none).
    pub(crate) fn run_pass(&self, pass: Option<&str>, args: &[&str]) -> Out {
        let mut c = self.command(pass);
        c.args(args);
        output(c)
    }

    /// `pra keygen --user NAME` with [`PASS`]; asserts success.
    pub(crate) fn keygen(&self, user: &str) -> String {
        self.run(&["keygen", "--user", user]).ok().to_string()
    }

    /// The key file.
    pub(crate) fn key_file(&self) -> PathBuf {
        self.home.join("pra_ed25519")
    }

    /// `config.toml`.
    pub(crate) fn config_file(&self) -> PathBuf {
        self.home.join("config.toml")
    }
}

/// Remove variables that would change what the client does in a test.
pub(crate) fn clean_env(c: &mut Command) {
    pra_testkit::process::clean_env(c, &["PRA_HOME"]);
}

/// Run a command and collect its output.
pub(crate) fn output(mut c: Command) -> Out {
    let o = c.output().expect("run pra");
    Out {
        status: o.status,
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Read a file to a string (panics with the path).
pub(crate) fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// True when `program --version`-like probing finds it on PATH.
pub(crate) fn have(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

pub(crate) use pra_testkit::net::closed_port;
