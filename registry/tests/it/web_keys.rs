//! Admin page keys: a key submitted through the public API shows on the
//! pending page (user, computer, device, fingerprint, when); Approve,
//! Reject and Revoke change it as `web:<token>` (audited); the key list's
//! filters; keys claiming the same device are flagged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::AuditOf;
use crate::common::random_ed25519;
use crate::common::web::{Web, device, flash, row};
use pra_proto::api::KeyStatus;
use pra_registry::model::Actor;

/// The admin page with these accounts.
async fn web_with(names: &[&str]) -> Web {
    let web = Web::start().await;
    add_users(&web, names);
    web
}

fn add_users(web: &Web, names: &[&str]) {
    for n in names {
        web.api
            .store
            .add_user(n, &Actor::Cli("test".into()))
            .unwrap();
    }
}

#[tokio::test]
async fn pending_key_is_shown_then_approved() {
    let web = Web::start().await;
    add_users(&web, &["alice"]);
    let mut b = web.signed_in().await;
    let page = b.page("/admin").await;
    assert!(page.contains("No key is waiting for approval."));

    let key = random_ed25519();
    let fp = web
        .submit(
            &key,
            "alice",
            device("PC-ALICE", "Linux 6.1 / Dell 5520 / i7", "a1b2"),
        )
        .await;
    let page = b.page("/admin").await;
    let r = row(&page, "fingerprint", &fp).expect("pending row");
    for want in [
        "alice",
        "PC-ALICE",
        "Linux 6.1 / Dell 5520 / i7",
        &fp,
        "just now",
        "UTC",
    ] {
        assert!(r.contains(want), "{want} missing from {r}");
    }
    assert!(r.contains("Approve") && r.contains("Reject"));
    // the menu badge counts it
    assert!(page.contains("<span class=\"badge\">1</span>"));

    let after = b
        .act(
            "/admin/keys/approve",
            &[("fingerprint", &fp), ("back", "/admin")],
        )
        .await;
    assert_eq!(
        flash(&after).unwrap(),
        format!("Key {fp} of alice approved.")
    );
    assert!(
        row(&after, "fingerprint", &fp).is_none(),
        "no longer pending"
    );
    let k = web.api.store.get_key(&fp).unwrap().unwrap();
    assert_eq!(k.status, KeyStatus::Approved);
    assert_eq!(k.approved_by.as_deref(), Some("web:ops"));

    let all = b.page("/admin/keys").await;
    let r = row(&all, "fingerprint", &fp).unwrap();
    assert!(
        r.contains("status approved") && r.contains("approved by web:ops"),
        "{r}"
    );

    let events = web.api.store.audit_of("key.");
    let approve = events
        .iter()
        .find(|e| e.event.kind == "key.approve")
        .unwrap();
    assert_eq!(approve.event.actor, "web:ops");
    assert_eq!(approve.event.fingerprint.as_deref(), Some(fp.as_str()));
    web.api.stop().await;
}

#[tokio::test]
async fn reject_revoke_and_refusals() {
    let web = web_with(&["alice", "bob"]).await;
    let a = web.submit_new("alice", device("PC-A", "d-a", "")).await;
    let b_fp = web.submit_new("bob", device("PC-B", "d-b", "")).await;
    let mut b = web.signed_in().await;

    let page = b.act("/admin/keys/revoke", &[("fingerprint", &a)]).await;
    assert_eq!(flash(&page).unwrap(), format!("Key {a} of alice rejected."));
    let k = web.api.store.get_key(&a).unwrap().unwrap();
    assert_eq!(
        (k.status, k.revoked_by.as_deref()),
        (KeyStatus::Revoked, Some("web:ops"))
    );

    // a revoked key cannot be approved: the refusal is shown, nothing changes
    let page = b.act("/admin/keys/approve", &[("fingerprint", &a)]).await;
    let msg = flash(&page).unwrap();
    assert!(page.contains("class=\"flash error\""), "{msg}");
    assert!(msg.contains("revoked"), "{msg}");
    assert_eq!(
        web.api.store.get_key(&a).unwrap().unwrap().status,
        KeyStatus::Revoked
    );

    // approve, then revoke ("revoked", not "rejected")
    b.act("/admin/keys/approve", &[("fingerprint", &b_fp)])
        .await;
    let page = b
        .act(
            "/admin/keys/revoke",
            &[
                ("fingerprint", &b_fp),
                ("back", "/admin/keys?status=revoked"),
            ],
        )
        .await;
    assert_eq!(flash(&page).unwrap(), format!("Key {b_fp} of bob revoked."));
    // `back` brought us to the filtered list
    assert!(row(&page, "fingerprint", &b_fp).is_some());
    assert!(page.contains("<option value=\"revoked\" selected>"));

    // malformed and unknown fingerprints, a `back` that leaves the site
    let page = b
        .act(
            "/admin/keys/approve",
            &[
                ("fingerprint", "SHA256:nope"),
                ("back", "https://evil.example/"),
            ],
        )
        .await;
    assert!(flash(&page).unwrap().contains("Invalid fingerprint"));
    assert!(page.contains("<h1>Pending keys</h1>"));
    let unknown = format!("SHA256:{}", "A".repeat(43));
    let page = b
        .act("/admin/keys/approve", &[("fingerprint", &unknown)])
        .await;
    assert!(page.contains("class=\"flash error\""));
    web.api.stop().await;
}

#[tokio::test]
async fn key_list_filters_by_status_and_user() {
    let web = web_with(&["alice", "bob"]).await;
    let a1 = web.submit_new("alice", device("A1", "x", "")).await;
    let a2 = web.submit_new("alice", device("A2", "y", "")).await;
    let b1 = web.submit_new("bob", device("B1", "z", "")).await;
    let mut b = web.signed_in().await;
    b.act("/admin/keys/approve", &[("fingerprint", &a2)]).await;

    let shown = |html: &str| -> Vec<bool> {
        [&a1, &a2, &b1]
            .iter()
            .map(|fp| row(html, "fingerprint", fp).is_some())
            .collect()
    };
    for (query, want) in [
        ("", [true, true, true]),
        ("?status=", [true, true, true]),
        ("?status=pending", [true, false, true]),
        ("?status=approved", [false, true, false]),
        ("?status=revoked", [false, false, false]),
        ("?user=alice", [true, true, false]),
        ("?user=bob&status=pending", [false, false, true]),
        ("?user=carol", [false, false, false]),
    ] {
        let html = b.page(&format!("/admin/keys{query}")).await;
        assert_eq!(shown(&html), want, "{query}");
    }
    assert_eq!(b.get("/admin/keys?status=lost").await.status, 400);
    web.api.stop().await;
}

#[tokio::test]
async fn keys_claiming_the_same_device_are_flagged() {
    let web = Web::start().await;
    add_users(&web, &["alice", "bob", "carol"]);
    // bob's PC is a clone of alice's disk image: same tag and description
    let a = web
        .submit_new(
            "alice",
            device("PC-1", "Windows 11 / HP 840 G8 / i5", "cafe0001"),
        )
        .await;
    let b_fp = web
        .submit_new(
            "bob",
            device("PC-1", "Windows 11 / HP 840 G8 / i5", "cafe0001"),
        )
        .await;
    let c = web
        .submit_new("carol", device("PC-3", "Linux / ThinkPad", "beef0003"))
        .await;
    let mut b = web.signed_in().await;
    for path in ["/admin", "/admin/keys"] {
        let html = b.page(path).await;
        let ra = row(&html, "fingerprint", &a).unwrap();
        assert!(ra.contains("Same device tag as another user's key"), "{ra}");
        assert!(ra.contains("Same device description"), "{ra}");
        // Page and admin guide agree: a shared tag is suspicious, a shared
        // description alone is common in a uniform fleet.
        assert!(ra.contains("cloned disk image or a shared PC"), "{ra}");
        assert!(ra.contains("common in a uniform fleet"), "{ra}");
        assert!(ra.contains(&b_fp) && ra.contains("bob"), "{ra}");
        let rb = row(&html, "fingerprint", &b_fp).unwrap();
        assert!(rb.contains(&a), "{rb}");
        let rc = row(&html, "fingerprint", &c).unwrap();
        assert!(!rc.contains("Same device"), "{rc}");
    }
    // once bob's key is rejected, alice's is no longer flagged
    b.act("/admin/keys/revoke", &[("fingerprint", &b_fp)]).await;
    let html = b.page("/admin").await;
    assert!(
        !row(&html, "fingerprint", &a)
            .unwrap()
            .contains("Same device")
    );
    web.api.stop().await;
}
