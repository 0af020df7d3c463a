//! Admin page sign-in: pages need a session; a good token signs in (cookie
//! attributes, audit), a bad one does not; the token never goes in a URL;
//! the sign-in form's own CSRF token and the cross-site refusal; `Secure`
//! `__Host-` cookies behind a TLS proxy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::Resp;
use crate::common::web::{Browser, Fetch, PAGES, Web, csrf, flash, form_body};
use pra_registry::model::AuditQuery;

fn audit_kinds(web: &Web) -> Vec<(String, String, Option<String>)> {
    web.api
        .store
        .audit(&AuditQuery::default())
        .unwrap()
        .into_iter()
        .map(|e| (e.event.kind, e.event.actor, e.event.source))
        .collect()
}

/// The sign-in form posted from the page's own origin.
async fn post_login(b: &mut Browser, body: &str) -> Resp {
    b.send("POST", "/admin/login", Some(body), Fetch::SameOrigin, &[])
        .await
}

#[tokio::test]
async fn pages_need_a_session_and_a_good_token_gives_one() {
    let web = Web::start().await;
    let mut b = Browser::new(web.addr());
    for path in PAGES {
        let r = b.get(path).await;
        assert_eq!(r.status, 303, "{path}");
        assert_eq!(r.header("location"), Some("/admin/login"), "{path}");
    }
    // the sign-in form posts the token in the body; the page never puts it in a URL
    let form = b.get("/admin/login").await;
    let html = form.text();
    assert!(html.contains("<form class=\"login\" method=\"post\" action=\"/admin/login\">"));
    assert!(html.contains("type=\"password\" name=\"token\""));
    let login_cookie = form.header("set-cookie").unwrap();
    assert!(login_cookie.starts_with("pra_login="), "{login_cookie}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/admin/login"] {
        assert!(login_cookie.contains(attr), "{login_cookie}");
    }

    let r = b
        .post(
            "/admin/login",
            &[("csrf", &csrf(&html)), ("token", &web.token)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/admin"));
    let set: Vec<&str> = r
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.as_str())
        .collect();
    let session = set.iter().find(|c| c.starts_with("pra_admin=")).unwrap();
    let id = session
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("pra_admin=");
    assert_eq!(id.len(), 43, "256 random bits: {session}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(session.contains(attr), "{session}");
    }
    // plain HTTP: no Secure (the browser would drop it), no Max-Age (ends with the browser)
    assert!(
        !session.contains("Secure") && !session.contains("Max-Age"),
        "{session}"
    );
    assert!(!session.contains(&web.token) && !r.text().contains(&web.token));
    // the sign-in form's cookie is deleted
    assert!(
        set.iter()
            .any(|c| c.starts_with("pra_login=;") && c.contains("Max-Age=0"))
    );

    for path in PAGES {
        let html = b.page(path).await;
        assert!(html.contains("web:ops"), "{path}");
        assert!(!html.contains(&web.token), "{path}");
    }
    let events = audit_kinds(&web);
    assert!(
        events.iter().any(|(k, a, s)| k == "web.login"
            && a == "web:ops"
            && s.as_deref().is_some_and(|s| s.starts_with("127.0.0.1:"))),
        "{events:?}"
    );
    web.api.stop().await;
}

#[tokio::test]
async fn a_wrong_token_does_not_sign_in_and_is_audited() {
    let web = Web::start().await;
    let mut b = Browser::new(web.addr());
    for bad in ["pra_wrong", "", "   ", "has space", &"x".repeat(600)] {
        let r = b.sign_in(bad).await;
        assert_eq!(r.status, 401, "{bad:?}");
        assert!(
            flash(&r.text())
                .unwrap()
                .contains("That token is not valid"),
            "{}",
            r.text()
        );
        assert!(!b.cookies.contains_key("pra_admin"));
        // a fresh form comes with the refusal
        assert!(b.cookies.contains_key("pra_login"));
    }
    assert_eq!(b.get("/admin").await.status, 303);
    let refused = audit_kinds(&web)
        .into_iter()
        .filter(|(k, _, _)| k == "web.login.refused")
        .count();
    assert_eq!(refused, 5);
    // a token in the query string is not a way in
    let r = b.get(&format!("/admin/login?token={}", web.token)).await;
    assert_eq!(r.status, 200);
    assert!(!b.cookies.contains_key("pra_admin"));
    assert_eq!(b.get("/admin").await.status, 303);
    web.api.stop().await;
}

#[tokio::test]
async fn the_sign_in_form_needs_its_own_token_and_the_same_site() {
    let web = Web::start().await;
    let body = |csrf: &str| form_body(&[("csrf", csrf), ("token", &web.token)]);

    // no form cookie at all
    let mut b = Browser::new(web.addr());
    let r = post_login(&mut b, &body("x")).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        flash(&r.text())
            .unwrap()
            .contains("sign-in form had expired")
    );

    // a cookie, but the field does not match it
    let mut b = Browser::new(web.addr());
    let form = b.get("/admin/login").await.text();
    let good = csrf(&form);
    let r = post_login(&mut b, &body("forged")).await;
    assert_eq!(r.status, 403);
    assert!(!b.cookies.contains_key("pra_admin"));

    // cross-site, with a matching pair: refused before anything else
    for site in [Fetch::CrossSite, Fetch::ForeignOrigin] {
        let mut b = Browser::new(web.addr());
        let good = csrf(&b.get("/admin/login").await.text());
        let r = b
            .send("POST", "/admin/login", Some(&body(&good)), site, &[])
            .await;
        assert_eq!(r.status, 403, "{site:?}");
        assert!(r.text().contains("came from another site"));
        assert!(!b.cookies.contains_key("pra_admin"), "{site:?}");
    }

    // a script without Origin headers but with the pair works (the token protects)
    let mut b = Browser::new(web.addr());
    let good2 = csrf(&b.get("/admin/login").await.text());
    let r = b
        .send(
            "POST",
            "/admin/login",
            Some(&body(&good2)),
            Fetch::Bare,
            &[],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(b.cookies.contains_key("pra_admin"));
    assert_ne!(good, good2);
    web.api.stop().await;
}

#[tokio::test]
async fn behind_a_tls_proxy_the_cookie_is_secure_host_prefixed() {
    let web = Web::start().await;
    let mut b = Browser::new(web.addr());
    b.extra.push(("X-Forwarded-Proto".into(), "https".into()));
    let form = b.get("/admin/login").await;
    assert!(
        form.header("set-cookie")
            .unwrap()
            .starts_with("__Host-pra_login=")
    );
    let r = b.sign_in(&web.token).await;
    assert_eq!(r.status, 303);
    let session = r
        .headers
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case("set-cookie") && v.starts_with("__Host-pra_admin="))
        .map(|(_, v)| v.clone())
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(session.contains(attr), "{session}");
    }
    assert!(!session.contains("Domain"));
    assert_eq!(b.get("/admin").await.status, 200);

    // the secure cookie is not accepted over plain HTTP, nor the plain one over HTTPS
    let id = b.cookies["__Host-pra_admin"].clone();
    let mut plain = Browser::new(web.addr());
    plain.cookies.insert("__Host-pra_admin".into(), id.clone());
    assert_eq!(plain.get("/admin").await.status, 303);
    plain.cookies.clear();
    plain.cookies.insert("pra_admin".into(), id.clone());
    assert_eq!(plain.get("/admin").await.status, 303);
    let mut https = Browser::new(web.addr());
    https
        .extra
        .push(("X-Forwarded-Proto".into(), "https".into()));
    https.cookies.insert("pra_admin".into(), id);
    assert_eq!(https.get("/admin").await.status, 303);
    web.api.stop().await;
}
