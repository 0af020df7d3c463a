//! The real program in a real X server: `pra-gui --connect` under Xvfb (no
//! tray there: it must run anyway), against a gateway on 127.0.0.1:0 with
//! one busy and one free forward, in English and in Japanese. A window named
//! "PRA" appears, a screenshot of it is not blank, and it is kept under
//! `target/artifacts/` for a person to look at.
//!
//! Xvfb, xdotool, ImageMagick's `import`, Mesa's GL and fonts-noto-cjk come
//! from `scripts/deps.sh`; when one is missing the test fails, it never skips.
#![cfg(target_os = "linux")]

use crate::common::*;
use std::path::Path;
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
            .args(XVFB_ARGS)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run Xvfb ({e}): install it with scripts/deps.sh (package xvfb)")
            });
        let line = first_line(&mut child, "Xvfb (its display number)");
        let n: u32 = line
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
        gw.pin_in(&home);

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
        let (sd, colours) = screenshot(&x.display, &window, &out);
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
