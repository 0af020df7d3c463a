//! The real program in a real X server: `pra-gui --connect` under Xvfb (no
//! tray there: it must run anyway), against a gateway on 127.0.0.1:0 with
//! one busy and one free forward, in English and in Japanese. A window named
//! "PRA" appears, a screenshot of it is not blank, and it is kept under
//! `target/artifacts/` for a person to look at.
//!
//! Xvfb, xdotool, ImageMagick's `import`, Mesa's GL and fonts-noto-cjk come
//! from `scripts/deps.sh`; when one is missing the test fails, it never skips.
#![cfg(target_os = "linux")]
mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Startup of a debug build under a software GL renderer is slow.
const WINDOW_BOUND: Duration = Duration::from_secs(90);

struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    /// An X server on the first free display (Xvfb picks it: `-displayfd`).
    fn start() -> Xvfb {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1024x720x24",
                "-nolisten",
                "tcp",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run Xvfb ({e}): install it with scripts/deps.sh (package xvfb)")
            });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(BOUND)
            .unwrap_or_else(|_| panic!("Xvfb did not report its display within {BOUND:?}"));
        let n: u32 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("Xvfb said {line:?} instead of a display number"));
        Xvfb {
            child,
            display: format!(":{n}"),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills the app when the test ends, however it ends.
struct App(Child);

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tool(name: &str) -> Command {
    let mut c = Command::new(name);
    c.stdin(Stdio::null());
    c
}

fn run_tool(mut c: Command, what: &str) -> std::process::Output {
    c.output()
        .unwrap_or_else(|e| panic!("cannot run {what} ({e}): install it with scripts/deps.sh"))
}

/// The id of the top-level window named exactly "PRA", once it exists.
fn wait_for_window(x: &Xvfb, app: &mut App, log: &Path) -> String {
    let start = Instant::now();
    loop {
        let mut c = tool("xdotool");
        c.env("DISPLAY", &x.display)
            .args(["search", "--onlyvisible", "--name", "^PRA$"]);
        let out = run_tool(c, "xdotool");
        let ids = String::from_utf8_lossy(&out.stdout);
        if let Some(id) = ids.lines().next().filter(|l| !l.trim().is_empty()) {
            return id.trim().to_string();
        }
        if let Ok(Some(status)) = app.0.try_wait() {
            panic!(
                "pra-gui exited with {status} before its window appeared:\n{}",
                read(log)
            );
        }
        assert!(
            start.elapsed() < WINDOW_BOUND,
            "no window named PRA within {WINDOW_BOUND:?}:\n{}",
            read(log)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// Wait until `file` contains every one of `parts`.
fn wait_for_log(file: &Path, parts: &[&str], app: &mut App) -> String {
    let start = Instant::now();
    loop {
        let text = read(file);
        if parts.iter().all(|p| text.contains(p)) {
            return text;
        }
        if let Ok(Some(status)) = app.0.try_wait() {
            panic!("pra-gui exited with {status}; {}:\n{text}", file.display());
        }
        assert!(
            start.elapsed() < WINDOW_BOUND,
            "{} never said {parts:?}:\n{text}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Decode a PNG into (width, height, RGB(A) pixels, channels).
fn decode(path: &Path) -> (u32, u32, Vec<u8>, usize) {
    let file = BufReader::new(std::fs::File::open(path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    let channels = info.color_type.samples();
    (info.width, info.height, buf, channels)
}

/// Luminance standard deviation and number of distinct colours: a blank
/// (single-colour) capture has 0 and 1.
fn variance(path: &Path) -> (f64, usize) {
    let (_, _, px, ch) = decode(path);
    let mut colours = std::collections::HashSet::new();
    let (mut sum, mut sq, mut n) = (0f64, 0f64, 0f64);
    for p in px.chunks_exact(ch) {
        let (r, g, b) = (p[0], p[1 % ch], p[2 % ch]);
        colours.insert((r, g, b));
        let y = 0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b);
        sum += y;
        sq += y * y;
        n += 1.0;
    }
    let mean = sum / n;
    ((sq / n - mean * mean).max(0.0).sqrt(), colours.len())
}

/// Capture the window until a capture is not blank and equals the one
/// before (the frame has settled); returns the file.
fn screenshot(x: &Xvfb, window: &str, out: &Path) -> (f64, usize) {
    let start = Instant::now();
    let mut previous: Option<Vec<u8>> = None;
    loop {
        let mut c = tool("import");
        c.env("DISPLAY", &x.display)
            .args(["-window", window])
            .arg(format!("png:{}", out.display()));
        let o = run_tool(c, "import (ImageMagick)");
        assert!(
            o.status.success(),
            "import failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let bytes = std::fs::read(out).unwrap();
        let (sd, colours) = variance(out);
        let settled = previous.as_ref() == Some(&bytes);
        if sd > 8.0 && colours > 30 && settled {
            return (sd, colours);
        }
        assert!(
            start.elapsed() < WINDOW_BOUND,
            "the window stays blank or keeps changing (sd {sd:.1}, {colours} colours): {}",
            out.display()
        );
        previous = Some(bytes);
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn artifacts_dir() -> PathBuf {
    // target/debug/pra-gui → target/artifacts
    let bin = Path::new(env!("CARGO_BIN_EXE_pra-gui"));
    let target = bin.parent().and_then(Path::parent).unwrap();
    let dir = target.join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn window_named_pra_shows_connected_forwards_in_english_and_japanese() {
    let noto = Path::new("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc");
    assert!(
        noto.exists(),
        "{} is missing: install fonts-noto-cjk with scripts/deps.sh",
        noto.display()
    );
    let x = Xvfb::start();
    let gw = TestGateway::start();
    let (busy, free) = (rule_port(), rule_port());
    let _holder = std::net::TcpListener::bind(("127.0.0.1", busy)).unwrap();
    let (echo1, echo2) = (gw.echo_server(), gw.echo_server());
    let mut shots = Vec::new();

    for (lang, locale, connected) in [
        ("en", "en_US.UTF-8", "connected to"),
        ("ja", "ja_JP.UTF-8", "connected to"),
    ] {
        let home = TestHome::new();
        let user = format!("erin-{lang}");
        let key = home.keygen(&user);
        gw.approve(&key);
        gw.add_rule(&user, "mail", busy, echo1);
        gw.add_rule(&user, "intranet", free, echo2);
        home.server_set(&gw.addr.to_string(), Some(&gw.fingerprint));

        let log_dir = home.home.root().join("log");
        let stderr = home.dir.path().join("stderr.txt");
        let child = Command::new(env!("CARGO_BIN_EXE_pra-gui"))
            .arg("--connect")
            .env("DISPLAY", &x.display)
            .env("PRA_HOME", home.home.root())
            .env("PRA_PASSPHRASE", PASS)
            .env("LANG", locale)
            .env("LC_ALL", locale)
            // No D-Bus session, so no tray: the app must run without one.
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                "unix:path=/nonexistent/pra-test-bus",
            )
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut app = App(child);
        let system_log = log_dir.join("System.log");
        let window = wait_for_window(&x, &mut app, &system_log);

        // The tunnel is up: one line per rule in User.log, as `pra connect` writes.
        let user_log = wait_for_log(
            &log_dir.join("User.log"),
            &[
                &format!("{connected} {} as {user}", gw.addr),
                "WAR(10102) port busy",
                "forwarding",
            ],
            &mut app,
        );
        assert!(
            user_log.contains(&format!("127.0.0.1:{free}")),
            "{user_log}"
        );
        let system = wait_for_log(
            &system_log,
            &[&format!("lang=\"{lang}\""), "no system tray available"],
            &mut app,
        );
        assert!(
            system.contains("NotoSansCJK"),
            "CJK font not found:\n{system}"
        );
        assert_eq!(echo_roundtrip(free, b"through the app"), b"through the app");

        let out = artifacts_dir().join(format!("pra-gui-{lang}.png"));
        let (sd, colours) = screenshot(&x, &window, &out);
        let (w, h, _, _) = decode(&out);
        assert!(w >= 500 && h >= 300, "window {w}x{h}");
        eprintln!(
            "screenshot {}: {w}x{h}, luminance sd {sd:.1}, {colours} colours",
            out.display()
        );
        shots.push(out);
        assert!(
            app.0.try_wait().unwrap().is_none(),
            "pra-gui is still running"
        );
    }
    assert_eq!(shots.len(), 2);
}
