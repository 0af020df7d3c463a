//! Disconnect on the admin page ends a real gateway session: an employee
//! logged in to a gateway shows on "Live sessions" within 5 s, and the
//! button closes their connection within 5 s, leaving others connected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::gateway::{Gateway, login};
use crate::common::random_ed25519;
use crate::common::web::{Web, flash, row};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disconnect_button_ends_a_live_gateway_session() {
    let gw = Gateway::start_with(|cfg| cfg.gateway_id = Some("gw-web".into())).await;
    let web = Web::over(gw.store.clone()).await;
    let (alice, bob) = (random_ed25519(), random_ed25519());
    gw.approved("alice", &alice);
    gw.approved("bob", &bob);
    let c = login(&gw, "alice", &alice).await;
    let bystander = login(&gw, "bob", &bob).await;

    let mut b = web.signed_in().await;
    let started = Instant::now();
    let id = loop {
        let live = gw.store.list_live_sessions().unwrap();
        if let Some(s) = live.iter().find(|s| s.user == "alice") {
            break s.id;
        }
        assert!(started.elapsed() < LIMIT, "alice's session is not listed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let page = b.page("/admin/sessions").await;
    let r = row(&page, "session", &id.to_string()).unwrap();
    assert!(
        r.contains("alice") && r.contains("gw-web") && r.contains("127.0.0.1:"),
        "{r}"
    );

    let t = Instant::now();
    let page = b
        .act("/admin/sessions/disconnect", &[("id", &id.to_string())])
        .await;
    assert!(flash(&page).unwrap().contains("requested"), "{page}");
    while !c.is_closed() {
        assert!(t.elapsed() < LIMIT, "alice's session is still open");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!("web disconnect ended the session after {:?}", t.elapsed());
    assert!(!bystander.is_closed());
    let e = gw.wait_revoked("alice").await;
    assert_eq!(e.event.detail["reason"], "disconnect_requested");
    let s = gw.store.get_session(id).unwrap().unwrap();
    assert_eq!(s.disconnect_requested_by.as_deref(), Some("web:ops"));
    web.api.stop().await;
    gw.stop().await;
}
