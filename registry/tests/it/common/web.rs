//! Helpers for the admin web page's tests: the API (with the page) on
//! 127.0.0.1:0 with a manual clock, a tiny cookie-keeping browser over raw
//! HTTP/1.1, form encoding, and reading values out of the HTML.

use super::{Api, Resp, raw, unix_now};
use pra_proto::api::{Device, KeySubmission};
use pra_proto::proof::{self, Action};
use pra_registry::api::ApiConfig;
use pra_registry::api::limit::RateLimit;
use pra_registry::model::{NewSession, SessionProgress};
use pra_registry::store::Store;
use pra_registry::web::{Clock, WebConfig};
use ssh_key::PrivateKey;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// The API with the admin page, a manual clock and an admin token `ops`.
pub(crate) struct Web {
    pub api: Api,
    pub clock: Clock,
    pub token: String,
}

impl Web {
    pub(crate) async fn start() -> Web {
        Web::start_with(WebConfig::default()).await
    }

    /// With these page settings (the clock is replaced by a manual one).
    pub(crate) async fn start_with(web: WebConfig) -> Web {
        let clock = Clock::manual();
        let lots = RateLimit {
            burst: 100_000,
            refill_every: Duration::from_millis(1),
            max_sources: 16,
        };
        let api = Api::start_with(ApiConfig {
            submit_limit: lots,
            status_limit: lots,
            web: WebConfig {
                clock: clock.clone(),
                ..web
            },
            ..ApiConfig::default()
        })
        .await;
        let token = api.token("ops");
        Web { api, clock, token }
    }

    /// With these API settings (the page's clock is replaced by a manual one).
    pub(crate) async fn start_api(config: ApiConfig) -> Web {
        let clock = Clock::manual();
        let api = Api::start_with(ApiConfig {
            web: WebConfig {
                clock: clock.clone(),
                ..config.web.clone()
            },
            ..config
        })
        .await;
        let token = api.token("ops");
        Web { api, clock, token }
    }

    /// The API with the page over an existing store (e.g. a test gateway's).
    pub(crate) async fn over(store: std::sync::Arc<Store>) -> Web {
        Web::over_with(store, WebConfig::default()).await
    }

    /// The API with the page over a test gateway's store, making invites
    /// for that gateway's host key.
    pub(crate) async fn over_gateway(gw: &super::gateway::Gateway) -> Web {
        let web = WebConfig {
            host_key: Some(gw.fingerprint()),
            ..WebConfig::default()
        };
        Web::over_with(gw.store.clone(), web).await
    }

    /// Over an existing store with these page settings (the clock is
    /// replaced by a manual one).
    pub(crate) async fn over_with(store: std::sync::Arc<Store>, web: WebConfig) -> Web {
        let clock = Clock::manual();
        let config = ApiConfig {
            web: WebConfig {
                clock: clock.clone(),
                ..web
            },
            ..ApiConfig::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(pra_registry::api::serve(
            listener,
            store.clone(),
            config,
            async move {
                let _ = rx.await;
            },
        ));
        let api = Api {
            addr,
            store,
            stop: Some(tx),
            task: Some(task),
            dir: tempfile::tempdir().unwrap(),
        };
        let token = api.token("ops");
        Web { api, clock, token }
    }

    /// (kind, actor) of the audit events whose kind starts with `prefix`.
    pub(crate) fn actors(&self, prefix: &str) -> Vec<(String, String)> {
        self.api
            .store
            .audit(&pra_registry::model::AuditQuery {
                kind_prefix: Some(prefix.into()),
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .map(|e| (e.event.kind, e.event.actor))
            .collect()
    }

    /// Exactly `n` audit events whose kind starts with `prefix`, all by the
    /// page's admin (`web:ops`).
    pub(crate) fn assert_by_ops(&self, prefix: &str, n: usize) {
        let actors = self.actors(prefix);
        assert_eq!(actors.len(), n, "{actors:?}");
        assert!(actors.iter().all(|(_, a)| a == "web:ops"), "{actors:?}");
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.api.addr
    }

    /// A browser signed in with the `ops` token.
    pub(crate) async fn signed_in(&self) -> Browser {
        let mut b = Browser::new(self.addr());
        let r = b.sign_in(&self.token).await;
        assert_eq!(r.status, 303, "sign-in failed: {}", r.text());
        assert_eq!(r.header("location"), Some("/admin"));
        b
    }

    /// [`Web::submit`] with a new key; its fingerprint.
    pub(crate) async fn submit_new(&self, user: &str, device: Device) -> String {
        self.submit(&super::random_ed25519(), user, device).await
    }

    /// Submit `key` for `user` through the public API, with this device.
    pub(crate) async fn submit(&self, key: &PrivateKey, user: &str, device: Device) -> String {
        let sub = KeySubmission {
            user: user.into(),
            public_key: super::line(key),
            device,
            proof: proof::sign(key, Action::Submit, user, unix_now()).unwrap(),
        };
        let r = self
            .api
            .post("/api/v1/keys", None, &serde_json::to_value(&sub).unwrap())
            .await;
        assert_eq!(r.status, 202, "{}", r.text());
        r.json()["fingerprint"].as_str().unwrap().to_string()
    }
}

/// A device description.
pub(crate) fn device(computer: &str, description: &str, tag: &str) -> Device {
    Device {
        computer: computer.into(),
        os_user: "emp".into(),
        description: description.into(),
        tag: tag.into(),
    }
}

/// Percent-encode for `application/x-www-form-urlencoded`.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub(crate) fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// How a request presents itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fetch {
    /// What a browser sends for the page's own forms.
    SameOrigin,
    /// A form on another site posting here.
    CrossSite,
    /// `Origin` of another site, no `Sec-Fetch-Site` (older browsers).
    ForeignOrigin,
    /// Neither header (scripts, curl).
    Bare,
}

/// Cookies and raw requests, like a browser that follows nothing.
pub(crate) struct Browser {
    pub addr: SocketAddr,
    pub cookies: BTreeMap<String, String>,
    /// Extra headers on every request (e.g. `X-Forwarded-Proto`).
    pub extra: Vec<(String, String)>,
}

impl Browser {
    pub(crate) fn new(addr: SocketAddr) -> Browser {
        Browser {
            addr,
            cookies: BTreeMap::new(),
            extra: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        if self.cookies.is_empty() {
            return String::new();
        }
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("Cookie: {}\r\n", pairs.join("; "))
    }

    fn keep_cookies(&mut self, r: &Resp) {
        for (k, v) in &r.headers {
            if !k.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let first = v.split(';').next().unwrap();
            let (name, value) = first.split_once('=').unwrap();
            if v.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
    }

    pub(crate) async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
        site: Fetch,
        headers: &[(&str, &str)],
    ) -> Resp {
        let addr = self.addr;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{}",
            self.cookie_header()
        );
        match site {
            Fetch::SameOrigin => {
                req.push_str(&format!(
                    "Sec-Fetch-Site: same-origin\r\nOrigin: http://{addr}\r\n"
                ));
            }
            Fetch::CrossSite => {
                req.push_str("Sec-Fetch-Site: cross-site\r\nOrigin: http://evil.example\r\n")
            }
            Fetch::ForeignOrigin => req.push_str("Origin: http://evil.example\r\n"),
            Fetch::Bare => {}
        }
        for (k, v) in self.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())) {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(b) = body {
            req.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        req.push_str("\r\n");
        if let Some(b) = body {
            req.push_str(b);
        }
        let r = raw(addr, req.as_bytes()).await;
        self.keep_cookies(&r);
        r
    }

    pub(crate) async fn get(&mut self, path: &str) -> Resp {
        self.send("GET", path, None, Fetch::SameOrigin, &[]).await
    }

    /// POST a form as the page's own forms are posted.
    pub(crate) async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Resp {
        self.send(
            "POST",
            path,
            Some(&form_body(fields)),
            Fetch::SameOrigin,
            &[],
        )
        .await
    }

    /// Sign in: fetch the form (its double-submit cookie), post the token.
    pub(crate) async fn sign_in(&mut self, token: &str) -> Resp {
        let form = self.get("/admin/login").await;
        assert_eq!(form.status, 200, "{}", form.text());
        let csrf = csrf(&form.text());
        self.post("/admin/login", &[("csrf", &csrf), ("token", token)])
            .await
    }

    /// GET a page that must answer 200; its HTML.
    pub(crate) async fn page(&mut self, path: &str) -> String {
        let r = self.get(path).await;
        assert_eq!(r.status, 200, "GET {path}: {} {}", r.status, r.text());
        r.text()
    }

    /// The CSRF token of the signed-in session (read from a page).
    pub(crate) async fn csrf(&mut self) -> String {
        csrf(&self.page("/admin/users").await)
    }

    /// POST an action with the session's CSRF token; must answer 303.
    /// Returns the page it redirects to.
    pub(crate) async fn act(&mut self, path: &str, fields: &[(&str, &str)]) -> String {
        let token = self.csrf().await;
        let mut all = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        let r = self.post(path, &all).await;
        assert_eq!(r.status, 303, "POST {path}: {} {}", r.status, r.text());
        let to = r.header("location").unwrap().to_string();
        self.page(&to).await
    }
}

/// The value of the first `name="csrf"` field.
pub(crate) fn csrf(html: &str) -> String {
    value_of(html, "csrf").unwrap_or_else(|| panic!("no csrf field in {html}"))
}

/// The value of the first input named `name`.
pub(crate) fn value_of(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle)? + needle.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// The table row whose `data-ATTR` is `value` (from `<tr` to `</tr>`).
pub(crate) fn row<'a>(html: &'a str, attr: &str, value: &str) -> Option<&'a str> {
    let needle = format!("<tr data-{attr}=\"{value}\"");
    let start = html.find(&needle)?;
    let end = html[start..].find("</tr>")? + start;
    Some(&html[start..end])
}

/// The one-time message shown on a page (`<p class="flash…">…</p>`).
pub(crate) fn flash(html: &str) -> Option<String> {
    let start = html.find("<p class=\"flash")?;
    let text_start = html[start..].find('>')? + start + 1;
    let end = html[text_start..].find("</p>")? + text_start;
    Some(html[text_start..end].to_string())
}

/// The message next to form field `name`.
pub(crate) fn field_error(html: &str, name: &str) -> Option<String> {
    let needle = format!("id=\"err-{name}\">");
    let start = html.find(&needle)? + needle.len();
    let end = html[start..].find("</span>")? + start;
    Some(html[start..end].to_string())
}

/// Every page a signed-in admin can GET.
pub(crate) const PAGES: [&str; 7] = [
    "/admin",
    "/admin/keys",
    "/admin/users",
    "/admin/rules",
    "/admin/invites",
    "/admin/sessions",
    "/admin/audit",
];

/// A live gateway session as a gateway registers it; returns its id.
pub(crate) fn open_session(store: &Store, user: &str, fingerprint: &str, source: &str) -> i64 {
    let now = pra_registry::model::now();
    let id = store
        .session_open(&NewSession {
            gateway: "gw-test:10022".into(),
            user: user.into(),
            fingerprint: fingerprint.into(),
            source: source.into(),
            started_at: now - 3900,
        })
        .unwrap();
    store
        .session_progress(
            now,
            &[SessionProgress {
                id,
                bytes_up: 1536,
                bytes_down: 20 * 1024 * 1024,
            }],
        )
        .unwrap();
    id
}
