//! Helpers of the app's tests: a temp client home with a key, a real gateway
//! (the registry's `gateway::run` over SQLite in a temp folder) on
//! 127.0.0.1:0, echo targets, and the app in an egui_kittest harness.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::NodeT;
pub use egui_kittest::kittest::Queryable;
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
use pra_registry::store::sqlite::SqliteStore;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// The passphrase of the test keys.
pub const PASS: &str = "correct horse battery staple";

/// Generous bound for anything the UI waits for.
pub const BOUND: Duration = Duration::from_secs(30);

/// A client home in a temp folder.
pub struct TestHome {
    pub dir: tempfile::TempDir,
    pub home: Home,
}

impl TestHome {
    pub fn new() -> TestHome {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("home"));
        TestHome { dir, home }
    }

    /// Generate the key of `user` (protected by [`PASS`]); returns its
    /// OpenSSH public-key line.
    pub fn keygen(&self, user: &str) -> pra_client::keystore::KeyInfo {
        pra_client::keystore::generate(&self.home, user, &Passphrase::new(PASS), false).unwrap()
    }

    /// `pra server set ADDRESS [--host-key PIN]`.
    pub fn server_set(&self, address: &str, pin: Option<&str>) {
        pra_client::commands::server::apply(&self.home, address, pin).unwrap();
    }
}

/// Timers for tests: quick retries.
pub fn quick_timing() -> Timing {
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

/// A rule's local port: rules name fixed ports, so the test picks one below
/// the ephemeral range (where the OS hands out none by itself), spread per
/// process, checked free. A port taken by someone else in between makes the
/// test fail loudly, never pass wrongly.
pub fn rule_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    if NEXT.load(Ordering::Relaxed) == 0 {
        // A range apart from the client tests' (20000–30000).
        let spread = (std::process::id() % 400) as u16 * 20;
        let _ = NEXT.compare_exchange(0, 12000 + spread, Ordering::Relaxed, Ordering::Relaxed);
    }
    loop {
        let p = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(p < 20000, "no free rule port");
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// A real gateway on 127.0.0.1:0 over a SQLite registry in a temp folder,
/// on a runtime of its own (the UI test drives the app on the test thread).
pub struct TestGateway {
    pub rt: tokio::runtime::Runtime,
    pub addr: SocketAddr,
    pub store: Arc<SqliteStore>,
    pub fingerprint: String,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

fn admin() -> Actor {
    Actor::Cli("test".into())
}

impl TestGateway {
    pub fn start() -> TestGateway {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store = Arc::new(SqliteStore::open(&data).unwrap());
        let host_key = hostkey::load_or_create(&data).unwrap();
        let fingerprint = host_key.fingerprint();
        let mut cfg = GatewayConfig::new(host_key);
        cfg.auth_rejection_time = Duration::from_millis(100);
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let dyn_store: Arc<dyn Store> = store.clone();
        rt.spawn(gateway::run(listener, dyn_store, cfg, async move {
            let _ = rx.await;
        }));
        TestGateway {
            rt,
            addr,
            store,
            fingerprint,
            _dir: dir,
            stop: Some(tx),
        }
    }

    /// Register the key of `home` as approved for its user.
    pub fn approve(&self, key: &pra_client::keystore::KeyInfo) {
        let valid = pra_registry::validate::public_key(&key.meta.public_key).unwrap();
        self.store
            .add_key(
                NewKey {
                    fingerprint: valid.fingerprint,
                    user: key.meta.user.clone(),
                    public_key: valid.line,
                    algorithm: valid.algorithm,
                    device: key.meta.device(),
                    status: KeyStatus::Approved,
                },
                true,
                &admin(),
            )
            .unwrap();
    }

    pub fn add_rule(&self, user: &str, name: &str, local_port: u16, target: SocketAddr) {
        self.store
            .add_rule(
                RuleRecord {
                    user: user.into(),
                    name: name.into(),
                    local_port,
                    target_host: target.ip().to_string(),
                    target_port: target.port(),
                },
                &admin(),
            )
            .unwrap();
    }

    /// The registry's HTTP API on 127.0.0.1:0 over the same store; returns
    /// its base URL.
    pub fn api(&self) -> String {
        let l = self
            .rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = l.local_addr().unwrap();
        let store: Arc<dyn Store> = self.store.clone();
        self.rt.spawn(pra_registry::api::serve(
            l,
            store,
            pra_registry::api::ApiConfig::default(),
            std::future::pending(),
        ));
        format!("http://{addr}")
    }

    /// An account allowed to submit keys.
    pub fn add_user(&self, name: &str) {
        self.store.add_user(name, &admin()).unwrap();
    }

    /// The registry's status of the key `fp`.
    pub fn key_status(&self, fp: &str) -> Option<KeyStatus> {
        self.store.get_key(fp).unwrap().map(|k| k.status)
    }

    /// Approve the key `fp`.
    pub fn approve_fp(&self, fp: &str) {
        self.store
            .set_key_status(fp, KeyStatus::Approved, &admin())
            .unwrap();
    }

    /// An echo server on 127.0.0.1:0 on the gateway's runtime.
    pub fn echo_server(&self) -> SocketAddr {
        let l = self
            .rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = l.local_addr().unwrap();
        self.rt.spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.into_split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    let _ = w.shutdown().await;
                });
            }
        });
        addr
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Send `msg` to 127.0.0.1:`port` and read the echo (blocking, bounded).
pub fn echo_roundtrip(port: u16, msg: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(BOUND)).unwrap();
    s.write_all(msg).unwrap();
    let mut buf = vec![0u8; msg.len()];
    s.read_exact(&mut buf).unwrap();
    buf
}

/// The app, created on the harness's first frame (it needs the context).
pub struct Slot {
    opts: Option<AppOptions>,
    pub app: Option<PraApp>,
}

impl Slot {
    pub fn app(&self) -> &PraApp {
        self.app.as_ref().unwrap()
    }
}

/// Options for a test app: English, no tray, the given credential store.
pub fn options(home: &TestHome, store: Arc<dyn SecretStore>) -> AppOptions {
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
pub fn harness(opts: AppOptions) -> Harness<'static, Slot> {
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
pub fn app(home: &TestHome) -> Harness<'static, Slot> {
    harness(options(home, Arc::new(MemoryStore::new())))
}

/// Step the UI until `pred` holds (panics after [`BOUND`] with what is shown).
pub fn wait_until(
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
pub fn shows(h: &Harness<'_, Slot>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

/// The text of a node: a label's value, a widget's label.
pub fn text_of(n: &egui_kittest::Node<'_>) -> String {
    let a = n.accesskit_node();
    let t = if a.role() == egui::accesskit::Role::Label {
        a.value()
    } else {
        a.label()
    };
    t.unwrap_or_default()
}

/// The text of the one node whose text contains `part`.
pub fn text_containing(h: &Harness<'_, Slot>, part: &str) -> String {
    text_of(&h.get_by_label_contains(part))
}

/// Every text in the window, one per line (for failure messages).
pub fn shown(h: &Harness<'_, Slot>) -> String {
    h.query_all_by(|_| true)
        .map(|n| text_of(&n))
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Open the menu `menu` and click its item `item`.
pub fn menu(h: &mut Harness<'_, Slot>, menu: &str, item: &str) {
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
pub fn type_into(h: &mut Harness<'_, Slot>, label: &str, text: &str) {
    wait_until(h, &format!("a field {label:?}"), |h| {
        h.query_by_label(label).is_some()
    });
    h.get_by_label(label).set_text_value_accesskit(text);
    h.step();
}

/// Click the last button labelled `label` (a dialog's, when one is open).
pub fn click(h: &mut Harness<'_, Slot>, label: &str) {
    h.get_all_by_label(label)
        .last()
        .unwrap_or_else(|| panic!("no {label:?} button; shown:\n{}", shown(h)))
        .click();
    h.step();
}

/// Click Connect, wait for the passphrase dialog, type `pass`, tick
/// "remember" if asked, and press the dialog's Connect.
pub fn connect_with(h: &mut Harness<'_, Slot>, pass: &str, remember: bool) {
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
