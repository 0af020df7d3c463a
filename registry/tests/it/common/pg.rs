//! A throwaway PostgreSQL server for the tests: Debian's `postgresql`
//! package, `initdb` into a temp folder, `postgres` on a free loopback port
//! with its socket in that folder, password (SCRAM) authentication over TCP.
//!
//! `initdb` and `postgres` refuse to run as root, so when the tests run as
//! root (CI) both run as the `postgres` user (made by the package; `nobody`
//! otherwise) on a folder owned by it, through `runuser`.
//!
//! A small shell keeper owns the server: it reads commands on its standard
//! input (`stop`, `start`) and, when that input closes (the test process
//! ended, however it ended), stops the server and deletes the folder. So no
//! server outlives its tests.
//!
//! If PostgreSQL cannot be started the test fails with the reason. Only
//! outside CI, `PRA_TEST_POSTGRES=skip` turns that into a loud skip.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Superuser the tests connect as.
pub(crate) const USER: &str = "pra";
/// Its password (SCRAM over TCP); tests check it never shows up in output.
pub(crate) const PASSWORD: &str = "pra-test-Secret-7f3a";

/// A running throwaway server.
pub(crate) struct Postgres {
    pub port: u16,
    pub dir: PathBuf,
    bin: PathBuf,
    keeper: Mutex<Keeper>,
    next_db: AtomicUsize,
}

struct Keeper {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

/// Why the tests cannot have PostgreSQL here.
fn unavailable(why: &str) -> ! {
    panic!(
        "PostgreSQL for the tests cannot be started: {why}. Install Debian's `postgresql` \
         package (scripts/deps.sh does), or, outside CI only, set PRA_TEST_POSTGRES=skip to \
         skip the PostgreSQL tests"
    )
}

/// True when the PostgreSQL tests are skipped on purpose (never in CI).
/// The shared server and a new database on it (its URL), or `None` when
/// the PostgreSQL tests are skipped.
pub(crate) fn fresh() -> Option<(&'static Postgres, String)> {
    if skipped() {
        return None;
    }
    let pg = Postgres::shared();
    Some((pg, pg.fresh_db()))
}

pub(crate) fn skipped() -> bool {
    let skip = std::env::var("PRA_TEST_POSTGRES").is_ok_and(|v| v == "skip");
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    if skip && ci {
        panic!(
            "PRA_TEST_POSTGRES=skip is not honoured in CI (CI is set): PostgreSQL tests must run"
        );
    }
    if skip {
        eprintln!("SKIPPED: PostgreSQL tests (PRA_TEST_POSTGRES=skip)");
    }
    skip
}

/// The folder of `initdb` / `postgres`: `PRA_TEST_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin`, else wherever `PATH` has `initdb`.
fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("PRA_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let which = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match which {
        Some(p) if !p.is_empty() => Path::new(&p)
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| unavailable("initdb found but its folder is unknown")),
        _ => unavailable("no initdb in /usr/lib/postgresql/*/bin nor on PATH"),
    }
}

fn id(args: &[&str]) -> Option<u32> {
    let o = Command::new("id").args(args).output().ok()?;
    if !o.status.success() {
        return None;
    }
    String::from_utf8_lossy(&o.stdout).trim().parse().ok()
}

/// The unprivileged user to run the server as when we are root.
fn server_user() -> Option<(String, u32, u32)> {
    if id(&["-u"]) != Some(0) {
        return None;
    }
    for user in ["postgres", "nobody"] {
        if let (Some(uid), Some(gid)) = (id(&["-u", user]), id(&["-g", user])) {
            return Some((user.to_owned(), uid, gid));
        }
    }
    unavailable("running as root and neither a `postgres` nor a `nobody` user exists")
}

/// `cmd args…`, as the server user when we are root.
fn as_server_user(user: &Option<(String, u32, u32)>, program: &Path) -> Command {
    match user {
        Some((name, _, _)) => {
            let mut c = Command::new("runuser");
            c.args(["-u", name, "--"]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

impl Postgres {
    /// The server shared by the tests of this test binary.
    pub(crate) fn shared() -> &'static Postgres {
        static PG: OnceLock<Postgres> = OnceLock::new();
        PG.get_or_init(Postgres::start)
    }

    /// A server of its own (for tests that stop and restart it).
    pub(crate) fn start() -> Postgres {
        Postgres::start_with(None)
    }

    /// A server of its own with `ssl=on`, serving this PEM certificate
    /// chain and key (clients may still connect in plain text).
    pub(crate) fn start_tls(cert_pem: &str, key_pem: &str) -> Postgres {
        Postgres::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Postgres {
        let started = Instant::now();
        let bin = bin_dir();
        let user = server_user();
        let dir = tempfile::Builder::new()
            .prefix("pra-pg-")
            .tempdir()
            .unwrap()
            .keep();
        std::fs::write(dir.join("pwfile"), PASSWORD).unwrap();
        if let Some((_, uid, gid)) = &user {
            for p in [dir.clone(), dir.join("pwfile")] {
                std::os::unix::fs::chown(&p, Some(*uid), Some(*gid)).unwrap();
            }
        }
        let mut extra = String::new();
        if let Some((cert, key)) = tls {
            // The server wants its key readable by its user only.
            use std::os::unix::fs::PermissionsExt;
            for (name, pem, mode) in [("server.crt", cert, 0o644), ("server.key", key, 0o600)] {
                let p = dir.join(name);
                std::fs::write(&p, pem).unwrap();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
                if let Some((_, uid, gid)) = &user {
                    std::os::unix::fs::chown(&p, Some(*uid), Some(*gid)).unwrap();
                }
            }
            extra =
                r#"-c ssl=on -c ssl_cert_file="$DIR/server.crt" -c ssl_key_file="$DIR/server.key""#
                    .to_owned();
        }
        let data = dir.join("data");
        // The server user may not be allowed into the test's folder: work in
        // the temp folder.
        let out = as_server_user(&user, &bin.join("initdb"))
            .current_dir(&dir)
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "-E", "UTF8", "--locale=C", "--no-sync"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", dir.join("pwfile").display()))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| unavailable(&format!("cannot run initdb: {e}")));
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            unavailable(&format!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let mut tried = Vec::new();
        for _ in 0..8 {
            // Free now (bound once, released); postgres binds it a moment later,
            // and a lost race is retried with another one.
            let port = pra_testkit::net::closed_port();
            match Postgres::launch(&bin, &user, &dir, port, &extra) {
                Ok(keeper) => {
                    let pg = Postgres {
                        port,
                        dir,
                        bin,
                        keeper: Mutex::new(keeper),
                        next_db: AtomicUsize::new(0),
                    };
                    eprintln!(
                        "test PostgreSQL on 127.0.0.1:{port} in {} (ready after {:.1} s)",
                        pg.dir.display(),
                        started.elapsed().as_secs_f64()
                    );
                    return pg;
                }
                Err(e) => tried.push(e),
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        unavailable(&format!("postgres did not start: {}", tried.join(" | ")))
    }

    fn launch(
        bin: &Path,
        user: &Option<(String, u32, u32)>,
        dir: &Path,
        port: u16,
        extra: &str,
    ) -> Result<Keeper, String> {
        let log = dir.join("server.log");
        let _ = std::fs::remove_file(&log);
        let script = format!(
            r#"
DIR={dir}
start() {{
  {postgres} -D "$DIR/data" -p {port} -k "$DIR" -c listen_addresses=127.0.0.1 \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
    -c max_connections=400 {extra} >>"$DIR/server.log" 2>&1 &
  pid=$!
}}
stop() {{
  if [ -n "$pid" ]; then kill -INT "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=; fi
}}
start
echo started
while read -r cmd; do
  case "$cmd" in
    stop) stop; echo stopped ;;
    start) start; echo started ;;
    abandon) abandoned=1; break ;;
  esac
done
stop
[ -n "$abandoned" ] || rm -rf "$DIR"
"#,
            dir = shell_quote(dir),
            postgres = shell_quote(&bin.join("postgres")),
        );
        let mut child = as_server_user(user, Path::new("/bin/sh"))
            .current_dir(dir)
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run the keeper shell: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().ok_or("no keeper stdout")?);
        let mut keeper = Keeper {
            child,
            stdin,
            stdout,
        };
        keeper.expect("started")?;
        match wait_ready(&log, port, 0) {
            Ok(()) => Ok(keeper),
            Err(e) => {
                // Stop this attempt's server (if any) and end this keeper
                // without deleting the folder: the next attempt uses it.
                keeper.send("stop");
                let _ = keeper.expect("stopped");
                keeper.send("abandon");
                keeper.stdin.take();
                let _ = keeper.child.wait();
                Err(e)
            }
        }
    }

    /// `postgres://pra:PASSWORD@127.0.0.1:PORT/DB`.
    pub(crate) fn url(&self, db: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// Run SQL as the superuser with `psql` on database `db`.
    pub(crate) fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-U", USER, "-d", db])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-c")
            .arg(sql)
            .env("PGPASSWORD", PASSWORD)
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A new, empty database; returns its URL.
    pub(crate) fn fresh_db(&self) -> String {
        let n = self.next_db.fetch_add(1, Ordering::Relaxed);
        let name = format!("t{}_{n}", std::process::id());
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// Stop the server (fast shutdown: clients are disconnected).
    pub(crate) fn stop(&self) {
        let mut k = self.keeper.lock().unwrap();
        k.send("stop");
        k.expect("stopped").unwrap();
    }

    /// Start it again on the same port and folder.
    pub(crate) fn restart(&self) {
        let log = self.dir.join("server.log");
        let from = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let mut k = self.keeper.lock().unwrap();
        k.send("start");
        k.expect("started").unwrap();
        wait_ready(&log, self.port, from as usize).unwrap();
    }

    /// The server's log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let k = self.keeper.get_mut().unwrap_or_else(|p| p.into_inner());
        // EOF: the keeper stops the server and deletes the folder.
        k.stdin.take();
        let _ = k.child.wait();
    }
}

impl Keeper {
    fn send(&mut self, cmd: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = writeln!(stdin, "{cmd}");
            let _ = stdin.flush();
        }
    }

    fn expect(&mut self, word: &str) -> Result<(), String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(n) if n > 0 && line.trim() == word => Ok(()),
            Ok(_) => Err(format!("the keeper shell said {line:?}, not {word}")),
            Err(e) => Err(format!("the keeper shell: {e}")),
        }
    }
}

/// Until the log (from byte `from` on: this start's lines) says it accepts
/// connections and the port answers (90 s: a loaded 2-core CI
/// machine runs several servers and many tests at once).
fn wait_ready(log: &Path, port: u16, from: usize) -> Result<(), String> {
    let started = Instant::now();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        let bytes = std::fs::read(log).unwrap_or_default();
        let text = String::from_utf8_lossy(bytes.get(from..).unwrap_or_default()).into_owned();
        let tail = text.as_str();
        if tail.contains("ready to accept connections")
            && TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
        {
            return Ok(());
        }
        if tail.contains("could not bind")
            || tail.contains("could not create any TCP/IP sockets")
            || tail.contains("FATAL")
        {
            return Err(format!("port {port}: {}", tail.trim()));
        }
        if started.elapsed() > Duration::from_secs(90) {
            return Err(format!(
                "not ready within 90 s on port {port}; log: {}",
                tail.trim()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
