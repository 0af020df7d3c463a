//! Admin page live sessions: each live session as its gateway reported it
//! (user, source, gateway, since, bytes); Disconnect asks its gateway to
//! end it, as `web:<token>`, audited; a session that is gone is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::AuditOf;
use crate::common::web::{Web, device, flash, open_session, row};
use pra_registry::model::Actor;

#[tokio::test]
async fn live_sessions_are_listed_and_disconnected() {
    let web = Web::start().await;
    let store = web.api.store.clone();
    store.add_user("alice", &Actor::Cli("test".into())).unwrap();
    let fp = web.submit_new("alice", device("PC-A", "d", "t")).await;
    let mut b = web.signed_in().await;
    assert!(
        b.page("/admin/sessions")
            .await
            .contains("Nobody is connected.")
    );

    let id = open_session(store.as_ref(), "alice", &fp, "10.20.30.40:51234");
    let ended = open_session(store.as_ref(), "alice", &fp, "10.20.30.41:51235");
    store
        .session_close(
            pra_registry::model::SessionProgress {
                id: ended,
                bytes_up: 1,
                bytes_down: 1,
            },
            pra_registry::model::now(),
            "client closed",
        )
        .unwrap();

    let page = b.page("/admin/sessions").await;
    let r = row(&page, "session", &id.to_string()).expect("live session row");
    for want in [
        "alice",
        "10.20.30.40:51234",
        "gw-test:10022",
        "1 h 5 min ago",
        "connected for 1 h 5 min",
        "↑ 1.5 KiB",
        "↓ 20.0 MiB",
        &fp,
        "Disconnect",
    ] {
        assert!(r.contains(want), "{want} missing from {r}");
    }
    assert!(
        row(&page, "session", &ended.to_string()).is_none(),
        "ended sessions are not live"
    );
    assert!(page.contains("aria-current=\"page\">Live sessions"));

    let page = b
        .act("/admin/sessions/disconnect", &[("id", &id.to_string())])
        .await;
    assert_eq!(
        flash(&page).unwrap(),
        "Disconnect of alice's session from 10.20.30.40:51234 requested: gateway \
         gw-test:10022 ends it within seconds."
    );
    let s = store.get_session(id).unwrap().unwrap();
    assert_eq!(s.disconnect_requested_by.as_deref(), Some("web:ops"));
    // until its gateway ends it, the row says so instead of offering the button again
    let r = row(&page, "session", &id.to_string()).unwrap();
    assert!(r.contains("disconnect asked by web:ops"), "{r}");
    assert!(!r.contains("/admin/sessions/disconnect"), "{r}");
    // the gateway asks for its requests: this one is there
    assert_eq!(
        store.disconnect_requests("gw-test:10022").unwrap(),
        vec![id]
    );

    let audit = store.audit_of("session.disconnect");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].event.actor, "web:ops");
    assert_eq!(audit[0].event.user.as_deref(), Some("alice"));

    // an ended session, an unknown one, garbage: refused, nothing changes
    let before = web.api.snapshot();
    for bad in [ended.to_string(), "999999".into(), "x".into(), "".into()] {
        let page = b.act("/admin/sessions/disconnect", &[("id", &bad)]).await;
        assert!(page.contains("class=\"flash error\""), "{bad}");
        let msg = flash(&page).unwrap();
        assert!(
            msg.contains("no longer live") || msg.contains("not a session number"),
            "{bad}: {msg}"
        );
    }
    assert_eq!(web.api.snapshot(), before);
    web.api.stop().await;
}
