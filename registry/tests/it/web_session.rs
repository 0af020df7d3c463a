//! Admin page sessions end: after 30 min idle, 8 h after sign-in however
//! busy, and at sign-out (which needs the CSRF token and is audited); an
//! ended session's cookie is useless afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::AuditOf;
use crate::common::web::{Browser, Web, flash};
use std::time::Duration;

const MIN: Duration = Duration::from_secs(60);

async fn assert_ended(b: &mut Browser) {
    let r = b.get("/admin").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/admin/login?m=ended"));
    // the stale cookie is deleted
    let set = r.header("set-cookie").unwrap();
    assert!(
        set.starts_with("pra_admin=;") && set.contains("Max-Age=0"),
        "{set}"
    );
    assert!(!b.cookies.contains_key("pra_admin"));
    let page = b.page("/admin/login?m=ended").await;
    assert!(flash(&page).unwrap().contains("Your session has ended"));
}

#[tokio::test]
async fn idle_sessions_end_after_30_minutes() {
    let web = Web::start().await;
    let mut b = web.signed_in().await;
    web.clock.advance(29 * MIN);
    b.page("/admin/keys").await;
    web.clock.advance(29 * MIN);
    b.page("/admin/users").await;
    let cookie = b.cookies["pra_admin"].clone();
    web.clock.advance(30 * MIN);
    assert_ended(&mut b).await;
    // the same cookie replayed later stays refused
    let mut replay = Browser::new(web.addr());
    replay.cookies.insert("pra_admin".into(), cookie);
    assert_eq!(replay.get("/admin").await.status, 303);
    web.api.stop().await;
}

#[tokio::test]
async fn busy_sessions_end_8_hours_after_sign_in() {
    let web = Web::start().await;
    let mut b = web.signed_in().await;
    for _ in 0..(8 * 3) {
        web.clock.advance(20 * MIN - Duration::from_secs(1));
        b.page("/admin").await;
    }
    // 7 h 59 min 36 s in: still live; past 8 h: ended
    web.clock.advance(MIN);
    assert_ended(&mut b).await;
    // signing in again gives a new session
    let r = b.sign_in(&web.token).await;
    assert_eq!(r.status, 303);
    b.page("/admin").await;
    web.api.stop().await;
}

#[tokio::test]
async fn sign_out_ends_the_session_and_needs_the_csrf_token() {
    let web = Web::start().await;
    let mut b = web.signed_in().await;
    let mut other = web.signed_in().await;
    let cookie = b.cookies["pra_admin"].clone();
    assert_ne!(cookie, other.cookies["pra_admin"]);

    // without the token, or with another session's: refused, still signed in
    let theirs = other.csrf().await;
    for fields in [
        vec![],
        vec![("csrf", "nope")],
        vec![("csrf", theirs.as_str())],
    ] {
        let r = b.post("/admin/logout", &fields).await;
        assert_eq!(r.status, 403, "{fields:?}");
        assert_eq!(b.get("/admin").await.status, 200);
    }

    let token = b.csrf().await;
    let r = b.post("/admin/logout", &[("csrf", &token)]).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/admin/login?m=out"));
    assert!(!b.cookies.contains_key("pra_admin"));
    let page = b.page("/admin/login?m=out").await;
    assert_eq!(flash(&page).unwrap(), "Signed out.");
    assert_eq!(b.get("/admin").await.status, 303);

    // the old cookie is dead; the other session lives on
    let mut replay = Browser::new(web.addr());
    replay.cookies.insert("pra_admin".into(), cookie);
    let r = replay.get("/admin").await;
    assert_eq!(r.header("location"), Some("/admin/login?m=ended"));
    assert_eq!(other.get("/admin").await.status, 200);

    let logouts: Vec<String> = web
        .api
        .store
        .audit_of("web.logout")
        .into_iter()
        .map(|e| e.event.actor)
        .collect();
    assert_eq!(logouts, ["web:ops"]);
    web.api.stop().await;
}

#[tokio::test]
async fn signing_in_again_replaces_the_browser_s_session() {
    let web = Web::start().await;
    let mut b = web.signed_in().await;
    let first = b.cookies["pra_admin"].clone();
    let r = b.sign_in(&web.token).await;
    assert_eq!(r.status, 303);
    let second = b.cookies["pra_admin"].clone();
    assert_ne!(first, second, "a new id at every sign-in");
    assert_eq!(b.get("/admin").await.status, 200);
    let mut replay = Browser::new(web.addr());
    replay.cookies.insert("pra_admin".into(), first);
    assert_eq!(
        replay.get("/admin").await.header("location"),
        Some("/admin/login?m=ended")
    );
    web.api.stop().await;
}
