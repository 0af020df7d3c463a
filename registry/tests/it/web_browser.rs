//! The admin page in a real headless browser (Debian's `chromium`, driven
//! through `chromedriver` over WebDriver): sign in with a token, see a key
//! submitted through the public API, approve it, see it approved. Saves
//! screenshots to `target/artifacts/admin-pending.png` and
//! `target/artifacts/admin-approve.png`.
//!
//! The browser reaches nothing but 127.0.0.1: every other address goes to
//! a dead proxy and host names do not resolve. Without chromium and
//! chromedriver the test fails (it does not skip): `scripts/deps.sh`
//! installs them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::web::{Web, device};
use pra_proto::api::KeyStatus;
use pra_registry::model::Actor;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long the browser may take for a page (generous: the machine may be
/// busy with other tests).
const PAGE_BOUND: Duration = Duration::from_secs(30);
/// W3C WebDriver's key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn require(path: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: the admin page's browser test needs Debian's chromium and \
         chromium-driver; run scripts/deps.sh (apt-get install chromium chromium-driver)"
    );
}

/// `chromedriver` on a free loopback port (it picks it: `--port=0`).
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        require(CHROMIUM);
        require(CHROMEDRIVER);
        let mut child = Command::new(CHROMEDRIVER)
            .args(["--port=0", "--allowed-ips=127.0.0.1"])
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start chromedriver");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    let port: u16 = rest.trim_end_matches('.').trim().parse().unwrap();
                    let _ = tx.send(port);
                }
            }
        });
        let port = match rx.recv_timeout(PAGE_BOUND) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                panic!("chromedriver did not say which port it listens on");
            }
        };
        Driver { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebDriver session: a small JSON-over-HTTP client.
struct Browser {
    agent: ureq::Agent,
    base: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// The browser's cookie `name` (as the driver describes it).
    fn cookie(&self, name: &str) -> Value {
        let cookies = self.call("GET", "/cookie", None);
        let found = cookies
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name);
        found
            .cloned()
            .unwrap_or_else(|| panic!("no {name} cookie: {cookies}"))
    }

    /// Open `SITE/admin` signed out: the sign-in form; sign in with `token`.
    fn sign_in(&self, site: &str, token: &str) {
        self.go(&format!("{site}/admin"));
        assert_eq!(self.url(), format!("{site}/admin/login"));
        let field = self.wait_for("input#token");
        self.type_into(&field, token);
        let submit = self.wait_for("form.login button[type=submit]");
        self.click(&submit);
    }

    fn open(driver: &Driver) -> Browser {
        Browser::open_with(driver, &[])
    }

    /// A session whose chromium gets `extra` arguments after the usual ones.
    fn open_with(driver: &Driver, extra: &[String]) -> Browser {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let profile = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-quic".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-extensions".into(),
            "--disable-default-apps".into(),
            "--disable-domain-reliability".into(),
            "--disable-client-side-phishing-detection".into(),
            "--no-default-browser-check".into(),
            "--no-pings".into(),
            "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication".into(),
            // Nothing but loopback: other addresses go to a dead proxy
            // (Chrome never proxies loopback), and names do not resolve.
            "--proxy-server=http://127.0.0.1:9".into(),
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1".into(),
            "--window-size=1440,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        args.extend_from_slice(extra);
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
                }
            }
        });
        let base = format!("http://127.0.0.1:{}", driver.port);
        let mut b = Browser {
            agent,
            base,
            _profile: profile,
        };
        let v = b.call("POST", "/session", Some(caps));
        let id = v["sessionId"].as_str().unwrap_or_else(|| panic!("{v}"));
        b.base = format!("{}/session/{id}", b.base);
        b
    }

    /// One WebDriver command: its `value`, or the error answer.
    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let resp = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, Some(b)) => self.agent.post(&url).send_json(&b),
            (_, None) => self.agent.post(&url).send_json(json!({})),
        };
        let mut resp = resp.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status();
        let v: Value = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_json()
            .unwrap();
        if status.is_success() {
            Ok(v["value"].clone())
        } else {
            Err(format!("{method} {path}: {status} {v}"))
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Wait (within [`PAGE_BOUND`]) until an element matching `css` shows
    /// `want` (a click's navigation may still be on its way: the old page,
    /// or elements that went stale with it, are waited out).
    fn wait_text(&self, css: &str, want: &str) -> String {
        let start = Instant::now();
        let mut last = String::new();
        loop {
            if let Some(e) = self.find(css) {
                match self.try_call("GET", &format!("/element/{e}/text"), None) {
                    Ok(t) if t.as_str() == Some(want) => return e,
                    Ok(t) => last = t.to_string(),
                    Err(err) => last = err,
                }
            }
            assert!(
                start.elapsed() < PAGE_BOUND,
                "{css} did not show {want:?} (last: {last}) on {}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn go(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    fn url(&self) -> String {
        self.call("GET", "/url", None).as_str().unwrap().to_string()
    }

    fn find(&self, css: &str) -> Option<String> {
        let url = format!("{}/element", self.base);
        let mut resp = self
            .agent
            .post(&url)
            .send_json(json!({ "using": "css selector", "value": css }))
            .unwrap();
        let ok = resp.status().is_success();
        let v: Value = resp.body_mut().read_json().unwrap();
        ok.then(|| {
            v["value"][ELEMENT]
                .as_str()
                .unwrap_or_else(|| panic!("{css}: {v}"))
                .to_string()
        })
    }

    /// Wait (within [`PAGE_BOUND`]) for an element to appear.
    fn wait_for(&self, css: &str) -> String {
        let start = Instant::now();
        loop {
            if let Some(e) = self.find(css) {
                return e;
            }
            assert!(
                start.elapsed() < PAGE_BOUND,
                "{css} did not appear on {}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn text(&self, element: &str) -> String {
        self.call("GET", &format!("/element/{element}/text"), None)
            .as_str()
            .unwrap()
            .to_string()
    }

    fn type_into(&self, element: &str, text: &str) {
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn click(&self, element: &str) {
        self.call("POST", &format!("/element/{element}/click"), None);
    }

    fn script(&self, js: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": js, "args": [] })),
        )
    }

    fn screenshot(&self, path: &Path) {
        use base64::Engine as _;
        let b64 = self.call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
    }

    fn close(self) {
        self.call("DELETE", "", None);
    }
}

/// `target/artifacts/` (beside the integration tests' `target/tmp`).
fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("artifacts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_approves_a_pending_key_in_a_real_browser() {
    let web = Web::start().await;
    let cli = Actor::Cli("test".into());
    for u in ["alice", "bob"] {
        web.api.store.add_user(u, &cli).unwrap();
    }
    // some context for the screenshot: an approved key, and the key to approve
    let other = web
        .submit_new(
            "bob",
            device(
                "PC-BOB",
                "Windows 11 Pro / HP EliteBook 840 G8 / Intel i5-1145G7",
                "7d41c2e09a5b33f1",
            ),
        )
        .await;
    web.api
        .store
        .set_key_status(&other, KeyStatus::Approved, &cli)
        .unwrap();
    let fp = web
        .submit_new(
            "alice",
            device(
                "PC-ALICE",
                "Debian 12 / Dell Latitude 5520 / Intel i7-1185G7",
                "c0ffee12d00d4e57",
            ),
        )
        .await;
    let site = format!("http://{}", web.addr());
    let token = web.token.clone();
    let store = web.api.store.clone();
    let fp2 = fp.clone();

    tokio::task::spawn_blocking(move || {
        let fp = fp2;
        let driver = Driver::start();
        let b = Browser::open(&driver);

        // the browser cannot leave the machine: other addresses go to the
        // dead proxy on 127.0.0.1:9 (nothing is sent anywhere else)
        let away = b.try_call(
            "POST",
            "/url",
            Some(json!({ "url": "http://203.0.113.7/" })),
        );
        let err = away.expect_err("a non-loopback address must not load");
        assert!(err.contains("ERR_PROXY_CONNECTION_FAILED"), "{err}");

        // not signed in: the page sends us to the sign-in form
        b.sign_in(&site, &token);

        // the pending page, with the key submitted through the API
        b.wait_text("main h1", "Pending keys");
        assert_eq!(b.url(), format!("{site}/admin"), "no token in any URL");
        let row_css = format!("tr[data-fingerprint=\"{fp}\"]");
        let row = b.wait_for(&row_css);
        let text = b.text(&row);
        for want in ["alice", "PC-ALICE", "Debian 12 / Dell Latitude 5520", &fp] {
            assert!(text.contains(want), "{want} not in {text:?}");
        }
        // the stylesheet was allowed by the CSP and applied
        let bg = b.script(
            "return getComputedStyle(document.querySelector('header.top')).backgroundColor;",
        );
        assert_eq!(bg, "rgb(22, 32, 44)");
        // the session cookie is HttpOnly and SameSite=Strict
        let session = b.cookie("pra_admin");
        assert_eq!(session["httpOnly"], true);
        assert_eq!(session["sameSite"], "Strict");
        assert!(
            b.script("return document.cookie;")
                .as_str()
                .unwrap()
                .is_empty()
        );
        b.screenshot(&artifacts().join("admin-pending.png"));

        // approve
        let approve = b.wait_for(&format!(
            "{row_css} form[action=\"/admin/keys/approve\"] button"
        ));
        b.click(&approve);
        b.wait_text("p.flash", &format!("Key {fp} of alice approved."));
        assert!(b.find(&row_css).is_none(), "no longer pending");

        // and see it approved on the key list
        b.go(&format!("{site}/admin/keys?status=approved"));
        b.wait_text("main h1", "All keys");
        let row = b.wait_for(&row_css);
        let text = b.text(&row);
        assert!(text.contains("approved by web:ops"), "{text:?}");
        b.screenshot(&artifacts().join("admin-approve.png"));
        b.close();
    })
    .await
    .unwrap();

    let k = store.get_key(&fp).unwrap().unwrap();
    assert_eq!(k.status, KeyStatus::Approved);
    assert_eq!(k.approved_by.as_deref(), Some("web:ops"));
    web.api.stop().await;
}

/// `serve --tls-cert --tls-key` (the binary) on 127.0.0.1:0 with a leaf for
/// 127.0.0.1 signed by a CA made here: the child, the API's address and the
/// base64 SHA-256 of the leaf's SubjectPublicKeyInfo (what chromium's
/// `--ignore-certificate-errors-spki-list` pins).
fn serve_https(env: &crate::common::TestEnv) -> (Child, std::net::SocketAddr, String) {
    use base64::Engine as _;
    use sha2::Digest as _;
    let leaf = pra_testkit::tls::Ca::new("PRA browser test CA").leaf(&["127.0.0.1"]);
    let spki = base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(leaf.key.public_key_der()));
    let cert = env.file("api.crt", &leaf.pem);
    let key = env.file("api.key", leaf.key_pem());
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let extra = ["--tls-cert", cert, "--tls-key", key];
    let (child, seen) = env.serve(&extra, Stdio::null(), &["api"]);
    let api = seen.addr("api");
    (child, api, spki)
}

/// Issue 18: the same sign-in over `serve --tls-cert/--tls-key`. Chromium
/// trusts exactly the test certificate's key
/// (`--ignore-certificate-errors-spki-list=<its SPKI hash>`, not a blanket
/// `--ignore-certificate-errors`); the page signs in and the session cookie
/// is `__Host-pra_admin` with Secure (and HttpOnly, SameSite=Strict);
/// without the pin the certificate is refused. Screenshot: `target/artifacts/admin-https.png`.
#[test]
fn admin_signs_in_over_https_in_a_real_browser() {
    let env = crate::common::TestEnv::new();
    let token = env
        .ok(&["token", "create", "--name", "ops"])
        .trim()
        .to_string();
    let (mut child, api, spki) = serve_https(&env);
    let site = format!("https://127.0.0.1:{}", api.port());
    let result = std::panic::catch_unwind(|| {
        let driver = Driver::start();
        let b = Browser::open_with(
            &driver,
            &[format!("--ignore-certificate-errors-spki-list={spki}")],
        );
        b.sign_in(&site, &token);
        b.wait_text("main h1", "Pending keys");
        assert_eq!(b.url(), format!("{site}/admin"));
        assert_eq!(b.script("return window.isSecureContext;"), true);
        let cookies = b.call("GET", "/cookie", None);
        let session = b.cookie("__Host-pra_admin");
        assert_eq!(session["secure"], true, "{session}");
        assert_eq!(session["httpOnly"], true, "{session}");
        assert_eq!(session["sameSite"], "Strict", "{session}");
        assert_eq!(session["path"], "/", "{session}");
        assert!(
            !cookies
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["name"] == "pra_admin"),
            "{cookies}"
        );
        b.screenshot(&artifacts().join("admin-https.png"));
        b.close();

        // without the pin the same chromium refuses the test certificate
        // (so the pin, not a leniency, is what lets the page load)
        let b = Browser::open(&driver);
        match b.try_call(
            "POST",
            "/url",
            Some(json!({ "url": format!("{site}/admin") })),
        ) {
            Err(e) => {
                assert!(e.contains("ERR_CERT"), "{e}");
                eprintln!("without the pin: {e:.160}");
            }
            Ok(_) => assert!(
                b.find("input#token").is_none(),
                "the sign-in form loaded without the pin"
            ),
        }
        b.close();
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
