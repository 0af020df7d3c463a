//! Admin page forgery refusals: every action without the session's CSRF
//! token, with a wrong one or another session's, or posted from another
//! site (`Sec-Fetch-Site`, `Origin`) is refused with 403 and changes
//! nothing; a signed-out POST changes nothing; GET never changes anything
//! (actions answer 405 to GET, pages with action-like parameters only show).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::web::{Browser, Fetch, PAGES, Web, device, form_body, open_session};
use pra_registry::model::{Actor, NewInvite, RuleRecord};
use pra_registry::web::WebConfig;

/// Every action with fields that would succeed given the right token.
fn actions(fp: &str, session: i64) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    vec![
        ("/admin/keys/approve", vec![("fingerprint", fp.to_string())]),
        ("/admin/keys/revoke", vec![("fingerprint", fp.to_string())]),
        ("/admin/users", vec![("name", "mallory".into())]),
        ("/admin/users/disable", vec![("name", "alice".into())]),
        ("/admin/users/enable", vec![("name", "bob".into())]),
        (
            "/admin/rules",
            vec![
                ("user", "alice".into()),
                ("name", "evil".into()),
                ("local_port", "4444".into()),
                ("target", "evil.example:22".into()),
            ],
        ),
        (
            "/admin/rules/remove",
            vec![("user", "alice".into()), ("name", "mail".into())],
        ),
        (
            "/admin/sessions/disconnect",
            vec![("id", session.to_string())],
        ),
        (
            "/admin/invites",
            vec![
                ("user", "alice".into()),
                ("gateways", "vpn.example.com".into()),
                ("expires", "1d".into()),
                ("approve", "yes".into()),
            ],
        ),
        ("/admin/invites/revoke", vec![("id", "feed01".into())]),
        ("/admin/logout", vec![]),
    ]
}

async fn setup() -> (Web, String, i64) {
    let web = Web::start_with(WebConfig {
        host_key: Some("SHA256:csrf-test-host-key".into()),
        ..WebConfig::default()
    })
    .await;
    let cli = Actor::Cli("test".into());
    let s = &web.api.store;
    s.add_user("alice", &cli).unwrap();
    s.add_invite(
        &NewInvite {
            id: "feed01".into(),
            user: "alice".into(),
            secret_hash: "0".repeat(64),
            gateways: vec!["vpn.example.com:10022".into()],
            approve: false,
            expires_at: pra_registry::model::now() + 3600,
        },
        &cli,
    )
    .unwrap();
    s.add_user("bob", &cli).unwrap();
    s.set_user_enabled("bob", false, &cli).unwrap();
    s.add_rule(
        RuleRecord {
            user: "alice".into(),
            name: "mail".into(),
            local_port: 2525,
            target_host: "mail.corp".into(),
            target_port: 25,
        },
        &cli,
    )
    .unwrap();
    let fp = web.submit_new("alice", device("PC", "d", "t")).await;
    let session = open_session(s.as_ref(), "alice", &fp, "10.9.8.7:50000");
    (web, fp, session)
}

#[tokio::test]
async fn actions_without_the_right_csrf_token_are_refused() {
    let (web, fp, session) = setup().await;
    let mut b = web.signed_in().await;
    let mut other = web.signed_in().await;
    let theirs = other.csrf().await;
    let before = web.api.snapshot();
    for (path, fields) in actions(&fp, session) {
        for token in [None, Some(""), Some("forged"), Some(theirs.as_str())] {
            let mut all: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            if let Some(t) = token {
                all.push(("csrf", t));
            }
            let r = b.post(path, &all).await;
            assert_eq!(r.status, 403, "{path} with {token:?}: {}", r.text());
            assert!(r.text().contains("nothing was changed"), "{}", r.text());
        }
    }
    assert_eq!(web.api.snapshot(), before);
    // still signed in (the logout attempts were refused too)
    assert_eq!(b.get("/admin").await.status, 200);
    web.api.stop().await;
}

#[tokio::test]
async fn cross_site_posts_are_refused_even_with_the_token() {
    let (web, fp, session) = setup().await;
    let mut b = web.signed_in().await;
    let csrf = b.csrf().await;
    let before = web.api.snapshot();
    for (path, fields) in actions(&fp, session) {
        let mut all: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.push(("csrf", &csrf));
        let body = form_body(&all);
        for site in [Fetch::CrossSite, Fetch::ForeignOrigin] {
            let r = b.send("POST", path, Some(&body), site, &[]).await;
            assert_eq!(r.status, 403, "{path} {site:?}");
            assert!(r.text().contains("came from another site"));
        }
        for (name, value) in [("Sec-Fetch-Site", "same-site"), ("Sec-Fetch-Site", "none")] {
            let r = b
                .send("POST", path, Some(&body), Fetch::Bare, &[(name, value)])
                .await;
            assert_eq!(r.status, 403, "{path} {name}: {value}");
        }
    }
    assert_eq!(web.api.snapshot(), before);
    assert_eq!(b.get("/admin").await.status, 200);
    web.api.stop().await;
}

#[tokio::test]
async fn signed_out_posts_change_nothing() {
    let (web, fp, session) = setup().await;
    let mut b = Browser::new(web.addr());
    let before = web.api.snapshot();
    for (path, fields) in actions(&fp, session) {
        let mut all: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.push(("csrf", "x"));
        let r = b.post(path, &all).await;
        assert_eq!(r.status, 303, "{path}");
        assert_eq!(r.header("location"), Some("/admin/login"));
    }
    assert_eq!(web.api.snapshot(), before);
    web.api.stop().await;
}

#[tokio::test]
async fn get_never_changes_anything() {
    let (web, fp, session) = setup().await;
    let mut b = web.signed_in().await;
    let before = web.api.snapshot();
    for (path, fields) in actions(&fp, session) {
        let query = form_body(
            &fields
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        );
        for method in ["GET", "HEAD"] {
            let r = b
                .send(
                    method,
                    &format!("{path}?{query}"),
                    None,
                    Fetch::SameOrigin,
                    &[],
                )
                .await;
            // "/admin/users" and "/admin/rules" are also pages: they show, and do nothing else
            assert!(
                r.status == 405 || r.status == 200,
                "{method} {path}: {}",
                r.status
            );
        }
    }
    for path in PAGES {
        for q in [
            "",
            "?status=approved&user=alice&fingerprint=x&name=bob&before=1&q=a",
        ] {
            let r = b.get(&format!("{path}{q}")).await;
            assert!(
                r.status == 200 || r.status == 400,
                "{path}{q}: {}",
                r.status
            );
        }
    }
    assert_eq!(web.api.snapshot(), before);
    assert_eq!(b.get("/admin").await.status, 200, "still signed in");
    web.api.stop().await;
}
