//! Admin page output: hostile text submitted through the public API (a
//! device description with `<script>`) is shown escaped, never as markup;
//! every answer carries the security headers; the stylesheet is served
//! from the page itself; unknown pages are HTML 404s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::web::{Browser, PAGES, Web, device, row};
use pra_registry::model::Actor;

const SCRIPT: &str = "<script>alert(document.cookie)</script>";
const ATTR: &str = "\"><img src=x onerror=alert(1)>";

#[tokio::test]
async fn hostile_device_text_is_escaped() {
    let web = Web::start().await;
    web.api
        .store
        .add_user("alice", &Actor::Cli("test".into()))
        .unwrap();
    let fp = web
        .submit_new(
            "alice",
            pra_proto::api::Device {
                computer: format!("PC{ATTR}"),
                os_user: format!("u{SCRIPT}"),
                description: format!("Linux {SCRIPT} & <b>bold</b>"),
                tag: format!("t{ATTR}"),
            },
        )
        .await;
    // a second key with the same hostile tag: the duplicate note repeats the text
    web.submit_new(
        "alice",
        device(&format!("PC2{SCRIPT}"), "other", &format!("t{ATTR}")),
    )
    .await;
    let mut b = web.signed_in().await;
    for path in ["/admin", "/admin/keys", "/admin/audit"] {
        let html = b.page(path).await;
        for bad in ["<script", "<img", "<b>bold"] {
            assert!(!html.contains(bad), "{path} contains {bad}");
        }
        if path != "/admin/audit" {
            let r = row(&html, "fingerprint", &fp).unwrap();
            assert!(
                r.contains("Linux &lt;script&gt;alert(document.cookie)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"),
                "{r}"
            );
            assert!(
                r.contains("PC&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"),
                "{r}"
            );
        } else {
            // the submission's audit entry names the computer
            assert!(html.contains("computer=PC&quot;&gt;&lt;img"), "{html}");
        }
    }
    web.api.stop().await;
}

fn assert_security_headers(r: &common::Resp, what: &str) {
    assert_eq!(
        r.header("content-security-policy"),
        Some(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'"
        ),
        "{what}"
    );
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
}

#[tokio::test]
async fn every_answer_has_the_security_headers() {
    let web = Web::start().await;
    let mut anon = Browser::new(web.addr());
    for path in [
        "/admin",
        "/admin/login",
        "/admin/nope",
        "/admin/static/admin.css",
    ] {
        let r = anon.get(path).await;
        assert_security_headers(&r, path);
    }
    let mut b = web.signed_in().await;
    for path in PAGES {
        let r = b.get(path).await;
        assert_eq!(r.status, 200);
        assert_security_headers(&r, path);
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        let html = r.text();
        assert!(html.starts_with("<!DOCTYPE html>"));
        // nothing loads from elsewhere, and there is no script at all
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{path}"
        );
        assert!(!html.contains("<script"), "{path}");
        assert!(html.contains("<link rel=\"stylesheet\" href=\"/admin/static/admin.css\">"));
    }
    // refusals have them too
    let r = b.post("/admin/keys/approve", &[]).await;
    assert_eq!(r.status, 403);
    assert_security_headers(&r, "403");
    let r = b.get("/admin/keys/approve").await;
    assert_eq!(r.status, 405);
    assert_security_headers(&r, "405");

    let css = anon.get("/admin/static/admin.css").await;
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert!(css.text().contains("font:"));
    assert!(
        !css.text().contains("url("),
        "no external resources in the stylesheet"
    );

    let r = anon.get("/admin/nope").await;
    assert_eq!(r.status, 404);
    assert!(r.text().contains("There is no such page"));
    // the API next door is untouched by the page
    let r = anon.get("/api/v1/health").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
    web.api.stop().await;
}
