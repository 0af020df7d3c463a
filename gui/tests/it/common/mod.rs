//! Helpers of the app's tests: a temp client home with a key, a real gateway
//! (the registry's `gateway::run` over SQLite in a temp folder) on
//! 127.0.0.1:0, echo targets, and the app in an egui_kittest harness.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::NodeT;
pub(crate) use egui_kittest::kittest::Queryable;
use pra_client::home::Home;
use pra_client::passphrase::Passphrase;
use pra_client::tunnel::Timing;
use pra_gui::credstore::{MemoryStore, SecretStore};
use pra_gui::i18n::Lang;
use pra_gui::settings::LangChoice;
use pra_gui::{AppOptions, PraApp};
use pra_proto::api::KeyStatus;
use pra_registry::gateway::{self, GatewayConfig, hostkey};
use pra_registry::model::{Actor, NewKey, RuleRecord};
use pra_registry::store::Store;
use std::io::BufReader;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The passphrase of the test keys.
pub(crate) const PASS: &str = "correct horse battery staple";

/// Generous bound for anything the UI waits for.
pub(crate) const BOUND: Duration = Duration::from_secs(30);

/// A client home in a temp folder.
pub(crate) struct TestHome {
    pub dir: tempfile::TempDir,
    pub home: Home,
}

impl TestHome {
    pub(crate) fn new() -> TestHome {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("home"));
        TestHome { dir, home }
    }

    /// Generate the key of `user` (protected by [`PASS`]); returns its
    /// OpenSSH public-key line.
    pub(crate) fn keygen(&self, user: &str) -> pra_client::keystore::KeyInfo {
        pra_client::keystore::generate(&self.home, user, &Passphrase::new(PASS), false).unwrap()
    }

    /// `pra server set ADDRESS [--host-key PIN]`.
    pub(crate) fn server_set(&self, address: &str, pin: Option<&str>) {
        pra_client::config::set_gateway(&self.home, address, pin).unwrap();
    }
}

/// Timers for tests: quick retries.
pub(crate) fn quick_timing() -> Timing {
    Timing {
        keepalive_interval: Duration::from_secs(1),
        keepalive_max: 2,
        connect_timeout: Duration::from_secs(5),
        ssh_timeout: Duration::from_secs(5),
        backoff_base: Duration::from_millis(100),
        backoff_cap: Duration::from_secs(1),
        port_retry: Duration::from_millis(200),
        wait_for_tunnel: Duration::from_secs(10),
    }
}

pub(crate) use pra_testkit::net::rule_port;

/// A real gateway on 127.0.0.1:0 over a SQLite registry in a temp folder,
/// on a runtime of its own (the UI test drives the app on the test thread).
pub(crate) struct TestGateway {
    pub rt: tokio::runtime::Runtime,
    pub addr: SocketAddr,
    pub store: Arc<Store>,
    pub fingerprint: String,
    /// The registry's folder (`pra-registry --data`).
    pub data: std::path::PathBuf,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

fn admin() -> Actor {
    Actor::Cli("test".into())
}

impl TestGateway {
    pub(crate) fn start() -> TestGateway {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store = Arc::new(Store::sqlite(&data).unwrap());
        let host_key = hostkey::load_or_create(&data).unwrap();
        let fingerprint = host_key.fingerprint();
        let mut cfg = GatewayConfig::new(host_key);
        cfg.auth_rejection_time = Duration::from_millis(100);
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(gateway::run(listener, store.clone(), cfg, async move {
            let _ = rx.await;
        }));
        TestGateway {
            rt,
            addr,
            store,
            fingerprint,
            data,
            _dir: dir,
            stop: Some(tx),
        }
    }

    /// Register the key of `home` as approved for its user.
    pub(crate) fn approve(&self, key: &pra_client::keystore::KeyInfo) {
        let valid = pra_registry::validate::public_key(&key.meta.public_key).unwrap();
        let new = NewKey::new(
            valid,
            &key.meta.user,
            key.meta.device(),
            KeyStatus::Approved,
        );
        self.store.add_key(new, true, &admin()).unwrap();
    }

    pub(crate) fn add_rule(&self, user: &str, name: &str, local_port: u16, target: SocketAddr) {
        let host = target.ip().to_string();
        let rule = RuleRecord::new(user, name, local_port, &host, target.port());
        self.store.add_rule(rule, &admin()).unwrap();
    }

    /// The registry's HTTP API on 127.0.0.1:0 over the same store; returns
    /// its base URL.
    pub(crate) fn api(&self) -> String {
        let l = self
            .rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = l.local_addr().unwrap();
        let store: Arc<Store> = self.store.clone();
        self.rt.spawn(pra_registry::api::serve(
            l,
            store,
            pra_registry::api::ApiConfig::default(),
            std::future::pending(),
        ));
        format!("http://{addr}")
    }

    /// `pra-registry --data DATA invite create --user USER --gateway ADDR
    /// [EXTRA…]`, the admin CLI run in this process on the gateway's
    /// registry: the invite line it prints.
    pub(crate) fn invite(&self, user: &str, extra: &[&str]) -> String {
        use clap::Parser as _;
        let (data, addr) = (self.data.display().to_string(), self.addr.to_string());
        let mut args = vec!["pra-registry", "--data", &data, "invite", "create"];
        args.extend(["--user", user, "--gateway", &addr]);
        args.extend_from_slice(extra);
        let cli = pra_registry::cli::Cli::try_parse_from(args).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        if let Err(f) = pra_registry::commands::run(cli, &mut out, &mut err) {
            panic!("invite create failed: {}", f.line());
        }
        let line = String::from_utf8(out).unwrap().trim().to_string();
        assert!(line.starts_with("pra-invite:"), "{line}");
        line
    }

    /// An account allowed to submit keys.
    pub(crate) fn add_user(&self, name: &str) {
        self.store.add_user(name, &admin()).unwrap();
    }

    /// The registry's status of the key `fp`.
    pub(crate) fn key_status(&self, fp: &str) -> Option<KeyStatus> {
        self.store.get_key(fp).unwrap().map(|k| k.status)
    }

    /// Approve the key `fp`.
    pub(crate) fn approve_fp(&self, fp: &str) {
        self.store
            .set_key_status(fp, KeyStatus::Approved, &admin())
            .unwrap();
    }

    /// Pin this gateway in `home` (`pra server set ADDR --host-key FP`).
    pub(crate) fn pin_in(&self, home: &TestHome) {
        home.server_set(&self.addr.to_string(), Some(&self.fingerprint));
    }

    /// An echo server on 127.0.0.1:0 on the gateway's runtime.
    pub(crate) fn echo_server(&self) -> SocketAddr {
        self.rt.block_on(pra_testkit::net::echo_server())
    }

    /// A new home whose key (of `user`) this gateway approved.
    pub(crate) fn approved_home(&self, user: &str) -> (TestHome, pra_client::keystore::KeyInfo) {
        let home = TestHome::new();
        let key = home.keygen(user);
        self.approve(&key);
        (home, key)
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// `Xvfb` on the first free display, which it prints on stdout
/// (`-displayfd 1`), with one 1024×720 screen and no TCP.
pub(crate) const XVFB_ARGS: [&str; 7] = [
    "-displayfd",
    "1",
    "-screen",
    "0",
    "1024x720x24",
    "-nolisten",
    "tcp",
];

/// The first line `child` prints on its piped stdout (an address, a
/// display), trimmed; `what` names it when nothing comes within [`BOUND`].
pub(crate) fn first_line(child: &mut std::process::Child, what: &str) -> String {
    use std::io::BufRead;
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(BOUND)
        .unwrap_or_else(|_| panic!("{what} printed nothing within {BOUND:?}"));
    line.trim().to_string()
}

/// Send `msg` to 127.0.0.1:`port` and read the echo (blocking, bounded).
pub(crate) fn echo_roundtrip(port: u16, msg: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(BOUND)).unwrap();
    s.write_all(msg).unwrap();
    let mut buf = vec![0u8; msg.len()];
    s.read_exact(&mut buf).unwrap();
    buf
}

/// The app, created on the harness's first frame (it needs the context).
pub(crate) struct Slot {
    opts: Option<AppOptions>,
    pub app: Option<PraApp>,
}

impl Slot {
    pub(crate) fn app(&self) -> &PraApp {
        self.app.as_ref().unwrap()
    }
}

/// Options for a test app: English, no tray, the given credential store.
pub(crate) fn options(home: &TestHome, store: Arc<dyn SecretStore>) -> AppOptions {
    AppOptions {
        home: home.home.clone(),
        os_lang: Lang::En,
        lang_override: Some(LangChoice::En),
        cjk_font: None,
        store,
        timing: quick_timing(),
        tray: false,
        connect: false,
        passphrase: None,
    }
}

/// The app in a harness (no display needed).
pub(crate) fn harness(opts: AppOptions) -> Harness<'static, Slot> {
    Harness::builder().with_size((900.0, 600.0)).build_ui_state(
        |ui, slot: &mut Slot| {
            if slot.app.is_none() {
                let opts = slot.opts.take().unwrap();
                slot.app = Some(PraApp::new(ui.ctx(), opts).unwrap());
            }
            slot.app.as_mut().unwrap().ui(ui);
        },
        Slot {
            opts: Some(opts),
            app: None,
        },
    )
}

/// An app with an empty in-memory credential store.
pub(crate) fn app(home: &TestHome) -> Harness<'static, Slot> {
    harness(options(home, Arc::new(MemoryStore::new())))
}

/// The app of `home`, connecting (passphrase [`PASS`], not remembered).
pub(crate) fn connecting(home: &TestHome) -> Harness<'static, Slot> {
    let mut h = app(home);
    h.step();
    connect_with(&mut h, PASS, false);
    h
}

/// Step the UI until `pred` holds (panics after [`BOUND`] with what is shown).
pub(crate) fn wait_until(
    h: &mut Harness<'_, Slot>,
    what: &str,
    pred: impl Fn(&Harness<'_, Slot>) -> bool,
) {
    let start = Instant::now();
    loop {
        h.step();
        if pred(h) {
            return;
        }
        assert!(
            start.elapsed() < BOUND,
            "not {what} within {BOUND:?}; the window shows:\n{}",
            shown(h)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True when some node's label contains `text`.
pub(crate) fn shows(h: &Harness<'_, Slot>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

/// The text of a node: a label's value, a widget's label.
pub(crate) fn text_of(n: &egui_kittest::Node<'_>) -> String {
    let a = n.accesskit_node();
    let t = if a.role() == egui::accesskit::Role::Label {
        a.value()
    } else {
        a.label()
    };
    t.unwrap_or_default()
}

/// The text of the one node whose text contains `part`.
pub(crate) fn text_containing(h: &Harness<'_, Slot>, part: &str) -> String {
    text_of(&h.get_by_label_contains(part))
}

/// Every text in the window, one per line (for failure messages).
pub(crate) fn shown(h: &Harness<'_, Slot>) -> String {
    h.query_all_by(|_| true)
        .map(|n| text_of(&n))
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Open the menu `menu` and click its item `item`.
pub(crate) fn menu(h: &mut Harness<'_, Slot>, menu: &str, item: &str) {
    // A click in the frame a dialog closes may still land on its backdrop:
    // click again until the menu is open.
    for _ in 0..5 {
        click(h, menu);
        h.run_steps(2);
        if h.query_by_label(item).is_some() {
            click(h, item);
            h.run_steps(2);
            return;
        }
    }
    panic!("menu {menu:?} has no item {item:?}; shown:\n{}", shown(h));
}

/// Put `text` into the text field labelled `label`.
pub(crate) fn type_into(h: &mut Harness<'_, Slot>, label: &str, text: &str) {
    wait_until(h, &format!("a field {label:?}"), |h| {
        h.query_by_label(label).is_some()
    });
    h.get_by_label(label).set_text_value_accesskit(text);
    h.step();
}

/// Click the last button labelled `label` (a dialog's, when one is open).
pub(crate) fn click(h: &mut Harness<'_, Slot>, label: &str) {
    h.get_all_by_label(label)
        .last()
        .unwrap_or_else(|| panic!("no {label:?} button; shown:\n{}", shown(h)))
        .click();
    h.step();
}

/// Click Connect, wait for the passphrase dialog, type `pass`, tick
/// "remember" if asked, and press the dialog's Connect.
pub(crate) fn connect_with(h: &mut Harness<'_, Slot>, pass: &str, remember: bool) {
    click(h, "Connect");
    wait_until(h, "the passphrase dialog", |h| {
        shows(h, "Passphrase of your key:")
    });
    let field = h.get_by_label("Passphrase of your key:");
    field.focus();
    field.type_text(pass);
    h.step();
    if remember {
        h.get_by_label("Remember on this PC").click();
        h.step();
    }
    click(h, "Connect");
}

/// A debug build drawing with a software GL renderer is slow to settle.
const SCREENSHOT_BOUND: Duration = Duration::from_secs(90);

/// Decode a PNG into (width, height, RGB(A) pixels, channels).
pub(crate) fn decode(path: &Path) -> (u32, u32, Vec<u8>, usize) {
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
pub(crate) fn screenshot(display: &str, window: &str, out: &Path) -> (f64, usize) {
    let start = Instant::now();
    let mut previous: Option<Vec<u8>> = None;
    loop {
        let mut c = Command::new("import");
        c.stdin(Stdio::null())
            .env("DISPLAY", display)
            .args(["-window", window])
            .arg(format!("png:{}", out.display()));
        let o = c.output().unwrap_or_else(|e| {
            panic!("cannot run import ({e}): install ImageMagick with scripts/deps.sh")
        });
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
            start.elapsed() < SCREENSHOT_BOUND,
            "the window stays blank or keeps changing (sd {sd:.1}, {colours} colours): {}",
            out.display()
        );
        previous = Some(bytes);
        std::thread::sleep(Duration::from_millis(300));
    }
}

pub(crate) fn artifacts_dir() -> PathBuf {
    // target/debug/pra-gui → target/artifacts
    let bin = Path::new(env!("CARGO_BIN_EXE_pra-gui"));
    let target = bin.parent().and_then(Path::parent).unwrap();
    let dir = target.join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
