//! Admin page rules: add (each validation message next to its field, the
//! typed values kept, nothing stored), list per user, remove; audited as
//! `web:<token>`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::web::{Web, field_error, flash, row};
use pra_registry::model::Actor;

fn setup(web: &Web) {
    for n in ["alice", "bob"] {
        web.api
            .store
            .add_user(n, &Actor::Cli("test".into()))
            .unwrap();
    }
}

/// The form of alice's rule `mail` (127.0.0.1:2525 to mail.corp:25).
const MAIL_RULE: [(&str, &str); 4] = [
    ("user", "alice"),
    ("name", "mail"),
    ("local_port", "2525"),
    ("target", "mail.corp:25"),
];

#[tokio::test]
async fn add_list_remove_rules() {
    let web = Web::start().await;
    setup(&web);
    let mut b = web.signed_in().await;
    let page = b.act("/admin/rules", &MAIL_RULE).await;
    assert_eq!(
        flash(&page).unwrap(),
        "Rule mail added for alice: 127.0.0.1:2525 → mail.corp:25. It is used at their next connect."
    );
    let r = row(&page, "rule", "alice/mail").unwrap();
    assert!(
        r.contains("127.0.0.1:2525") && r.contains("mail.corp:25"),
        "{r}"
    );
    b.act(
        "/admin/rules",
        &[
            ("user", "bob"),
            ("name", "db"),
            ("local_port", "5432"),
            ("target", "[2001:db8::5]:5432"),
        ],
    )
    .await;
    let rules = web.api.store.list_rules(None).unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[1].target_host, "2001:db8::5");

    // per-user view
    let alice = b.page("/admin/rules?user=alice").await;
    assert!(row(&alice, "rule", "alice/mail").is_some());
    assert!(row(&alice, "rule", "bob/db").is_none());
    let all = b.page("/admin/rules").await;
    let bob = row(&all, "rule", "bob/db").unwrap();
    assert!(bob.contains("[2001:db8::5]:5432"), "{bob}");

    let page = b
        .act(
            "/admin/rules/remove",
            &[
                ("user", "alice"),
                ("name", "mail"),
                ("back", "/admin/rules?user=alice"),
            ],
        )
        .await;
    assert_eq!(flash(&page).unwrap(), "Rule mail of alice removed.");
    assert!(page.contains("No rule."));
    assert_eq!(web.api.store.list_rules(Some("alice")).unwrap().len(), 0);
    let page = b
        .act(
            "/admin/rules/remove",
            &[("user", "alice"), ("name", "mail")],
        )
        .await;
    assert!(page.contains("class=\"flash error\""));

    web.assert_by_ops("rule.", 3);
    web.api.stop().await;
}

#[tokio::test]
async fn validation_messages_sit_next_to_their_fields() {
    let web = Web::start().await;
    setup(&web);
    let mut b = web.signed_in().await;
    b.act("/admin/rules", &MAIL_RULE).await;
    let before = web.api.snapshot();
    // (user, name, local port, target) → [(field, part of its message)]
    type Case = ([&'static str; 4], Vec<(&'static str, &'static str)>);
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        (["", "", "", ""], vec![("user", "choose whose rule"), ("name", "it is empty"), ("local_port", "is not a port number"), ("target", "it is empty")]),
        (["carol", "x", "1", "h:1"], vec![("user", "no such user")]),
        (["alice", "bad name!", "1", "h:1"], vec![("name", "is not allowed")]),
        (["alice", "x", "0", "h:1"], vec![("local_port", "outside 1–65535")]),
        (["alice", "x", "65536", "h:1"], vec![("local_port", "outside 1–65535")]),
        (["alice", "x", "http", "h:1"], vec![("local_port", "is not a port number")]),
        (["alice", "x", "1", "mail.corp"], vec![("target", "HOST:PORT")]),
        (["alice", "x", "1", "mail.corp:0"], vec![("target", "outside 1–65535")]),
        (["alice", "x", "1", "bad host:25"], vec![("target", "spaces")]),
        (["alice", "x", "1", "::1:25"], vec![("target", "brackets")]),
        (["alice", "mail", "1", "h:1"], vec![("name", "alice already has a rule named mail")]),
        (["alice", "x", "2525", "h:1"], vec![("local_port", "port 2525 is already used by alice's rule mail")]),
    ];
    for ([user, name, local, target], want) in cases {
        let csrf = b.csrf().await;
        let r = b
            .post(
                "/admin/rules",
                &[
                    ("csrf", &csrf),
                    ("user", user),
                    ("name", name),
                    ("local_port", local),
                    ("target", target),
                ],
            )
            .await;
        assert_eq!(r.status, 400, "{user} {name} {local} {target}");
        let html = r.text();
        for field in ["user", "name", "local_port", "target"] {
            let got = field_error(&html, field);
            match want.iter().find(|(f, _)| *f == field) {
                Some((_, part)) => {
                    let msg = got.unwrap_or_else(|| panic!("no message for {field}: {html}"));
                    assert!(msg.contains(part), "{field}: {msg:?} lacks {part:?}");
                }
                None => assert!(got.is_none(), "{field}: unexpected {got:?}"),
            }
        }
        // what was typed stays in the form
        if !target.is_empty() {
            assert!(
                html.contains(&format!("name=\"target\" value=\"{target}\"")),
                "{html}"
            );
        }
    }
    // a bob rule with the same name and port as alice's is fine
    b.act(
        "/admin/rules",
        &[
            ("user", "bob"),
            ("name", "mail"),
            ("local_port", "2525"),
            ("target", "mail.corp:25"),
        ],
    )
    .await;
    let mut after = web.api.snapshot();
    after.rules -= 1;
    after.audit -= 1;
    after.revision -= 1;
    assert_eq!(after, before);
    web.api.stop().await;
}
