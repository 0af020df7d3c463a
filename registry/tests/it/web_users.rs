//! Admin page users: add (messages next to the field for a bad or taken
//! name, nothing stored), disable and enable, all audited as `web:<token>`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::web::{Web, field_error, flash, row, value_of};

#[tokio::test]
async fn add_disable_enable_users() {
    let web = Web::start().await;
    let mut b = web.signed_in().await;
    assert!(b.page("/admin/users").await.contains("No user yet."));

    let page = b.act("/admin/users", &[("name", " alice ")]).await;
    assert!(flash(&page).unwrap().starts_with("User alice added."));
    let r = row(&page, "user", "alice").unwrap();
    assert!(r.contains(">enabled<") && r.contains("Disable"), "{r}");
    assert!(web.api.store.get_user("alice").unwrap().unwrap().enabled);

    let page = b.act("/admin/users/disable", &[("name", "alice")]).await;
    assert!(flash(&page).unwrap().starts_with("User alice disabled"));
    assert!(row(&page, "user", "alice").unwrap().contains(">disabled<"));
    assert!(!web.api.store.get_user("alice").unwrap().unwrap().enabled);

    let page = b.act("/admin/users/enable", &[("name", "alice")]).await;
    assert_eq!(flash(&page).unwrap(), "User alice enabled.");
    assert!(web.api.store.get_user("alice").unwrap().unwrap().enabled);

    let page = b.act("/admin/users/disable", &[("name", "nobody")]).await;
    assert!(page.contains("class=\"flash error\""));
    assert!(flash(&page).unwrap().contains("no user named nobody"));

    web.assert_by_ops("user.", 3);
    web.api.stop().await;
}

#[tokio::test]
async fn bad_or_taken_names_are_shown_next_to_the_field() {
    let web = Web::start().await;
    let mut b = web.signed_in().await;
    b.act("/admin/users", &[("name", "alice")]).await;
    let before = web.api.snapshot();
    for (name, want) in [
        ("", "it is empty"),
        ("bad name", "is not allowed"),
        ("-x", "is not allowed"),
        ("alice", "a user named alice already exists"),
    ] {
        let csrf = b.csrf().await;
        let r = b
            .post("/admin/users", &[("csrf", &csrf), ("name", name)])
            .await;
        assert_eq!(r.status, 400, "{name:?}");
        let html = r.text();
        let msg = field_error(&html, "name").unwrap_or_else(|| panic!("{html}"));
        assert!(msg.contains(want), "{name:?}: {msg}");
        // the typed value is kept in the field, marked invalid
        assert_eq!(value_of(&html, "name").as_deref(), Some(name.trim()));
        assert!(html.contains("aria-invalid=\"true\""));
    }
    assert_eq!(web.api.snapshot(), before);
    web.api.stop().await;
}
