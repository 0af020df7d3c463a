//! The tray, end to end: a private D-Bus session with a StatusNotifier
//! watcher played by the test (as a desktop's panel would), `pra-gui
//! --connect` under Xvfb. The app registers its tray item; the icon turns
//! green when connected; closing the window hides it and the forwards keep
//! working; the tray menu (Connect, Disconnect, Open window, Enroll with an
//! invite…, Quit) opens it again, opens the enroll dialog (an invite typed
//! into it; a screenshot kept under `target/artifacts/` for a person to
//! look at), Disconnect turns the icon grey, Quit ends the app.
//!
//! dbus-daemon, Xvfb and Mesa's GL come from `scripts/deps.sh`; a missing
//! one fails the test.
#![cfg(target_os = "linux")]

use crate::common::*;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zbus::zvariant::{OwnedValue, Value};

const SLOW: Duration = Duration::from_secs(90);

/// A child process killed when the test ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `cmd` and read the first line it prints (an address, a display).
fn start_reading_line(mut cmd: Command, what: &str) -> (Proc, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what} ({e}): install it with scripts/deps.sh"));
    let line = first_line(&mut child, what);
    (Proc(child), line)
}

/// Wait until the app's `User.log` in `log` says `text`.
fn wait_user_log(log: &Path, what: &str, text: &str) {
    wait_for(what, || {
        read(&log.join("User.log")).contains(text).then_some(())
    });
}

/// The panel's side of the StatusNotifier protocol.
#[derive(Clone, Default)]
struct Watcher {
    items: Arc<Mutex<Vec<String>>>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    fn register_status_notifier_item(&self, service: &str) {
        self.items.lock().unwrap().push(service.to_string());
    }

    fn register_status_notifier_host(&self, _service: &str) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items.lock().unwrap().clone()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < SLOW, "not {what} within {SLOW:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The centre pixel of the item's icon (ARGB, network byte order).
fn icon_centre(conn: &zbus::blocking::Connection, service: &str) -> Option<(u8, u8, u8)> {
    let item = zbus::blocking::Proxy::new(
        conn,
        service.to_string(),
        "/StatusNotifierItem",
        "org.kde.StatusNotifierItem",
    )
    .ok()?;
    let icons: Vec<(i32, i32, Vec<u8>)> = item.get_property("IconPixmap").ok()?;
    let (w, h, px) = icons.first()?;
    let i = ((h / 2 * w + w / 2) * 4) as usize;
    Some((*px.get(i + 1)?, *px.get(i + 2)?, *px.get(i + 3)?))
}

fn is_green((r, g, b): (u8, u8, u8)) -> bool {
    g > r.saturating_add(60) && g > b.saturating_add(40)
}

fn is_grey((r, g, b): (u8, u8, u8)) -> bool {
    r.abs_diff(g) < 20 && g.abs_diff(b) < 20
}

/// The item's com.canonical.dbusmenu object.
fn menu_proxy<'a>(conn: &zbus::blocking::Connection, service: &str) -> zbus::blocking::Proxy<'a> {
    zbus::blocking::Proxy::new(
        conn,
        service.to_string(),
        "/MenuBar",
        "com.canonical.dbusmenu",
    )
    .unwrap()
}

/// Menu item ids by label, from the item's com.canonical.dbusmenu layout.
fn menu_items(conn: &zbus::blocking::Connection, service: &str) -> HashMap<String, i32> {
    let menu = menu_proxy(conn, service);
    let reply = menu
        .call_method("GetLayout", &(0i32, -1i32, Vec::<String>::new()))
        .unwrap();
    type Layout = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);
    let (_rev, (_root, _props, children)): (u32, Layout) = reply.body().deserialize().unwrap();
    let mut out = HashMap::new();
    for c in &children {
        collect(c, &mut out);
    }
    out
}

fn collect(v: &Value<'_>, out: &mut HashMap<String, i32>) {
    let v = match v {
        Value::Value(inner) => inner.as_ref(),
        other => other,
    };
    let Value::Structure(s) = v else { return };
    let f = s.fields();
    let (Some(Value::I32(id)), Some(Value::Dict(props))) = (f.first(), f.get(1)) else {
        return;
    };
    for (k, val) in props.iter() {
        let val = match val {
            Value::Value(inner) => inner.as_ref(),
            other => other,
        };
        if let (Value::Str(k), Value::Str(label)) = (k, val)
            && k.as_str() == "label"
        {
            out.insert(label.as_str().to_string(), *id);
        }
    }
    if let Some(Value::Array(children)) = f.get(2) {
        for c in children.inner() {
            collect(c, out);
        }
    }
}

fn click_item(conn: &zbus::blocking::Connection, service: &str, id: i32) {
    let menu = menu_proxy(conn, service);
    menu.call_method("Event", &(id, "clicked", Value::from(0i32), 0u32))
        .unwrap();
}

/// The id of the visible window named "PRA", if there is one.
fn visible_window(display: &str) -> Option<u32> {
    let out = Command::new("xdotool")
        .env("DISPLAY", display)
        .args(["search", "--onlyvisible", "--name", "^PRA$"])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run xdotool ({e}): install it with scripts/deps.sh"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
}

/// Ask the window to close, as a window manager does (WM_DELETE_WINDOW).
fn request_close(display: &str, window: u32) {
    use x11rb::protocol::xproto::{ClientMessageEvent, ConnectionExt as _, EventMask};
    let (conn, _) = x11rb::rust_connection::RustConnection::connect(Some(display)).unwrap();
    let atom = |name: &[u8]| conn.intern_atom(false, name).unwrap().reply().unwrap().atom;
    let (protocols, delete) = (atom(b"WM_PROTOCOLS"), atom(b"WM_DELETE_WINDOW"));
    let ev = ClientMessageEvent::new(32, window, protocols, [delete, 0, 0, 0, 0]);
    // Checked: waits until the server has taken it (a bare flush before the
    // connection closes sometimes lost it).
    conn.send_event(false, window, EventMask::NO_EVENT, ev)
        .unwrap()
        .check()
        .unwrap();
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[test]
fn tray_icon_follows_the_connection_and_its_menu_disconnects_and_quits() {
    let bus_dir = tempfile::tempdir().unwrap();
    let mut dbus = Command::new("dbus-daemon");
    dbus.args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
        .arg(format!("--address=unix:dir={}", bus_dir.path().display()));
    let (_dbus, address) = start_reading_line(dbus, "dbus-daemon");
    let watcher = Watcher::default();
    let panel = zbus::blocking::connection::Builder::address(address.as_str())
        .unwrap()
        .name("org.kde.StatusNotifierWatcher")
        .unwrap()
        .serve_at("/StatusNotifierWatcher", watcher.clone())
        .unwrap()
        .build()
        .unwrap();

    let mut xvfb = Command::new("Xvfb");
    xvfb.args(XVFB_ARGS);
    let (_xvfb, display) = start_reading_line(xvfb, "Xvfb");

    let display = format!(":{display}");
    let gw = TestGateway::start();
    let (home, _) = gw.approved_home("grace");
    let port = rule_port();
    gw.add_rule("grace", "mail", port, gw.echo_server());
    gw.pin_in(&home);
    let log = home.home.root().join("log");

    let child = Command::new(env!("CARGO_BIN_EXE_pra-gui"))
        .args(["--connect", "--lang", "en"])
        .env("DISPLAY", &display)
        .env("DBUS_SESSION_BUS_ADDRESS", &address)
        .env("PRA_HOME", home.home.root())
        .env("PRA_PASSPHRASE", PASS)
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut app = Proc(child);

    let service = wait_for("the tray item registered", || {
        if let Ok(Some(s)) = app.0.try_wait() {
            panic!(
                "pra-gui exited with {s}:\n{}",
                read(&log.join("System.log"))
            );
        }
        watcher.items.lock().unwrap().first().cloned()
    });
    wait_for("a green icon once connected", || {
        icon_centre(&panel, &service).filter(|&p| is_green(p))
    });
    wait_user_log(&log, "connected in User.log", "connected to");
    assert!(
        !read(&log.join("System.log")).contains("no system tray available"),
        "{}",
        read(&log.join("System.log"))
    );

    // Closing the window keeps the tunnel running in the tray…
    let window = wait_for("the window", || visible_window(&display));
    request_close(&display, window);
    let start = Instant::now();
    while visible_window(&display).is_some() {
        assert!(
            start.elapsed() < SLOW,
            "the window was not hidden on close:\n{}",
            read(&log.join("System.log"))
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        app.0.try_wait().unwrap().is_none(),
        "closing the window quit the app"
    );
    assert_eq!(echo_roundtrip(port, b"tray"), b"tray");
    assert!(icon_centre(&panel, &service).is_some_and(is_green));

    // … and the tray opens it again.
    let items = menu_items(&panel, &service);
    for label in [
        "Connect",
        "Disconnect",
        "Open window",
        "Enroll with an invite…",
        "Quit",
    ] {
        assert!(
            items.contains_key(label),
            "no {label:?} in the tray menu: {items:?}"
        );
    }
    click_item(&panel, &service, items["Open window"]);
    wait_for("the window shown again", || visible_window(&display));

    // The tray's "Enroll with an invite…" opens the enroll dialog; an invite
    // of the registry typed into its field (focused on opening).
    gw.add_user("ivy");
    let invite = gw.invite("ivy", &[]);
    click_item(&panel, &service, items["Enroll with an invite…"]);
    let window = wait_for("the window", || visible_window(&display)).to_string();
    let typed = Command::new("xdotool")
        .env("DISPLAY", &display)
        .args(["windowfocus", "--sync", &window, "type", "--delay", "2"])
        .arg(&invite)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(typed.success(), "xdotool type failed");
    let shot = artifacts_dir().join("pra-gui-enroll.png");
    let (sd, colours) = screenshot(&display, &window, &shot);
    eprintln!(
        "screenshot {}: luminance sd {sd:.1}, {colours} colours",
        shot.display()
    );

    click_item(&panel, &service, items["Disconnect"]);
    wait_for("a grey icon after Disconnect", || {
        icon_centre(&panel, &service).filter(|&p| is_grey(p))
    });
    wait_user_log(&log, "disconnected in User.log", "disconnected");

    click_item(&panel, &service, items["Quit"]);
    let status = wait_for("the app to quit", || app.0.try_wait().unwrap());
    assert!(status.success(), "pra-gui exited with {status}");
}
