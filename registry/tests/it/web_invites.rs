//! Admin page invites: made on the page as `pra-registry invite create`
//! makes them (same string, same audit events, actor `web:<token>`), the
//! string shown once in the answer to the form and nowhere after (not on a
//! reload, not in a redirect, not in the data folder); listed, also by the
//! CLI; revoked from the page; refused without the CSRF token; bad fields
//! shown next to the field with nothing stored; the invite enrolls a key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::AuditOf;
use crate::common::Resp;
use crate::common::gateway::Gateway;
use crate::common::web::{Browser, Web, field_error, flash, row};
use crate::common::{TestEnv, random_ed25519};
use crate::gateway_enroll::{enroll, enrolled};
use pra_proto::api::KeyStatus;
use pra_proto::invite::Invite;

/// The text of `<code id="new-invite">…</code>`, if the page has one.
fn new_invite(html: &str) -> Option<String> {
    let open = "<code id=\"new-invite\">";
    let start = html.find(open)? + open.len();
    let end = html[start..].find("</code>")? + start;
    Some(html[start..end].to_string())
}

/// Run the CLI on the gateway's data folder (off the runtime's threads).
async fn cli(env: &TestEnv, args: &[&str]) -> String {
    let mut cmd = env.command();
    cmd.args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Whether a file of the data folder holds `needle`. Searched by another
/// process (`grep`): opening and closing the database files here would drop
/// this process's SQLite locks on them (POSIX lock semantics).
fn found_in(dir: &std::path::Path, needle: &str) -> bool {
    let files = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_file())
        .count();
    assert!(files > 0, "no files in {}", dir.display());
    let status = std::process::Command::new("grep")
        .args(["-rqF", "--", needle])
        .arg(dir)
        .status()
        .unwrap();
    match status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("grep failed: {other:?}"),
    }
}

/// The page's "create an invite" form for alice: the answer.
async fn create(b: &mut Browser, gateways: &str, expires: &str, approve: bool) -> Resp {
    let csrf = b.csrf().await;
    let mut fields = vec![
        ("csrf", csrf.as_str()),
        ("user", "alice"),
        ("gateways", gateways),
        ("expires", expires),
    ];
    if approve {
        fields.push(("approve", "yes"));
    }
    b.post("/admin/invites", &fields).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_are_made_shown_once_listed_revoked_and_audited_on_the_page() {
    let env = TestEnv::new();
    cli(&env, &["user", "add", "alice"]).await;
    let gw = Gateway::start_in(&env.data(), |_| {}).await;
    let web = Web::over_gateway(&gw).await;
    let mut b = web.signed_in().await;
    let page = b.page("/admin/invites").await;
    assert!(page.contains("No invite yet."), "{page}");
    assert!(page.contains("name=\"expires\" value=\"7d\""), "{page}");

    // without the session's CSRF token: refused, nothing stored
    let before = web.api.snapshot();
    let fields = [
        ("user", "alice"),
        ("gateways", "vpn.example.com"),
        ("expires", "2d"),
        ("approve", "yes"),
    ];
    for token in [None, Some("forged")] {
        let mut all = fields.to_vec();
        if let Some(t) = token {
            all.push(("csrf", t));
        }
        let r = b.post("/admin/invites", &all).await;
        assert_eq!(r.status, 403, "{token:?}: {}", r.text());
        assert!(!r.text().contains("pra-invite:"));
    }
    assert_eq!(web.api.snapshot(), before);

    // bad fields: a message next to each, nothing stored
    for (field, value, name, want) in [
        ("user", "nobody", "user", "there is no user named nobody"),
        ("user", "bad name", "user", "is not allowed"),
        ("expires", "forever", "expires", "not a number with a unit"),
        ("expires", "5s", "expires", "between 1 minute and 10 years"),
        ("gateways", "vpn.example.com h:0", "gateways", "HOST:PORT"),
        ("gateways", "bad_host!", "gateways", "HOST:PORT"),
    ] {
        let csrf = b.csrf().await;
        let mut all: Vec<(&str, &str)> = fields
            .iter()
            .copied()
            .filter(|(k, _)| *k != field)
            .collect();
        all.push((field, value));
        all.push(("csrf", &csrf));
        let r = b.post("/admin/invites", &all).await;
        assert_eq!(r.status, 400, "{field}={value}: {}", r.text());
        let html = r.text();
        let msg = field_error(&html, name).unwrap_or_else(|| panic!("{html}"));
        assert!(msg.contains(want), "{field}={value}: {msg}");
        assert!(!html.contains("pra-invite:"));
    }
    assert_eq!(web.api.snapshot(), before);

    // made: the answer itself shows the string, once, not cached, no redirect
    let gateways = format!("{}, vpn.example.com", gw.addr);
    let r = create(&mut b, &gateways, "2d", true).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("location"), None);
    let html = r.text();
    let text = new_invite(&html).unwrap_or_else(|| panic!("{html}"));
    assert!(text.starts_with("pra-invite:"), "{text}");
    assert_eq!(html.matches(&text).count(), 1, "shown exactly once");
    assert!(html.contains("shown only this once"), "{html}");
    let invite = Invite::decode(&text).unwrap();
    assert_eq!(invite.user, "alice");
    assert_eq!(
        invite.gateways,
        [gw.addr.to_string(), "vpn.example.com:10022".to_string()]
    );
    assert_eq!(invite.host_key, gw.fingerprint());
    assert_eq!(invite.host_key, cli(&env, &["hostkey"]).await.trim());
    let left = invite.expires_at - pra_registry::model::now();
    assert!((2 * 86_400 - 60..=2 * 86_400).contains(&left), "{left}");
    let secret = invite.secret.expose().to_string();
    for (k, v) in &r.headers {
        assert!(!v.contains(&secret), "header {k} holds the secret");
    }

    // a reload shows the invite, never its string
    let page = b.page("/admin/invites").await;
    assert!(!page.contains("pra-invite:") && !page.contains(&secret));
    let tr = row(&page, "invite", &invite.id).unwrap_or_else(|| panic!("{page}"));
    assert!(
        tr.contains("alice")
            && tr.contains("outstanding")
            && tr.contains(">yes<")
            && tr.contains("vpn.example.com:10022")
            && tr.contains("Revoke"),
        "{tr}"
    );
    for path in crate::common::web::PAGES {
        assert!(!b.page(path).await.contains(&secret), "{path}");
    }
    // only the secret's hash is kept (sessions included)
    assert!(!found_in(&env.data(), &secret));
    assert!(found_in(&env.data(), &invite.secret.hash()));

    // the CLI lists it (never its secret)
    let list = cli(&env, &["invite", "list", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&list).unwrap();
    let invites = json["invites"].as_array().unwrap();
    assert_eq!(invites.len(), 1, "{list}");
    assert_eq!(invites[0]["id"], invite.id.as_str());
    assert_eq!(invites[0]["approve"], true);
    assert_eq!(invites[0]["created_by"], "web:ops");
    assert!(!list.contains(&secret));
    let table = cli(&env, &["invite", "list"]).await;
    assert!(
        table.contains(&invite.id) && table.contains("outstanding"),
        "{table}"
    );

    // it enrolls a key, approved at once
    let key = random_ed25519();
    let reply = enroll(&gw, &invite.id, &secret, &key, "alice")
        .await
        .unwrap();
    assert!(enrolled(Some(&reply), KeyStatus::Approved), "{reply:?}");
    let page = b.page("/admin/invites").await;
    let tr = row(&page, "invite", &invite.id).unwrap();
    assert!(tr.contains(">used<") && !tr.contains("Revoke"), "{tr}");

    // a second one, revoked from the page
    let r = create(&mut b, "vpn.example.com", "1h", false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let second = Invite::decode(&new_invite(&r.text()).unwrap()).unwrap();
    assert!(r.text().contains("waits on the Pending keys page"));
    let page = b.act("/admin/invites/revoke", &[("id", &second.id)]).await;
    assert_eq!(
        flash(&page).unwrap(),
        format!(
            "Invite {} of alice revoked: it is refused from now on.",
            second.id
        )
    );
    let tr = row(&page, "invite", &second.id).unwrap();
    assert!(tr.contains(">revoked<") && tr.contains(">no<"), "{tr}");
    let table = cli(&env, &["invite", "list"]).await;
    let line = table
        .lines()
        .find(|l| l.contains(&second.id))
        .unwrap_or_else(|| panic!("{} not in {table}", second.id));
    assert!(line.contains("revoked"), "{table}");
    // again, or a used one: refused with a message
    for id in [second.id.as_str(), invite.id.as_str(), "feedbeef"] {
        let page = b.act("/admin/invites/revoke", &[("id", id)]).await;
        assert!(page.contains("class=\"flash error\""), "{id}: {page}");
    }
    // revoking without the token is refused too
    let before = web.api.snapshot();
    let r = b.post("/admin/invites/revoke", &[("id", &second.id)]).await;
    assert_eq!(r.status, 403);
    assert_eq!(web.api.snapshot(), before);

    // audited as the CLI audits, by the signed-in admin, without secrets
    let events: Vec<(String, String, Option<String>, String)> = web
        .api
        .store
        .audit_of("invite.")
        .into_iter()
        .rev()
        .map(|e| {
            (
                e.event.kind,
                e.event.actor,
                e.event.user,
                e.event.detail.to_string(),
            )
        })
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        kinds,
        ["invite.create", "invite.create", "invite.revoke"],
        "{events:?}"
    );
    for (kind, actor, user, detail) in &events {
        assert_eq!(actor, "web:ops", "{kind}");
        assert_eq!(user.as_deref(), Some("alice"), "{kind}");
        assert!(!detail.contains(&secret) && !detail.contains(second.secret.expose()));
    }
    assert!(events[0].3.contains(&invite.id) && events[2].3.contains(&second.id));
    let audit = cli(&env, &["audit"]).await;
    assert!(audit.contains("invite.create") && audit.contains("invite.revoke"));
    assert!(!audit.contains(&secret));
    web.api.stop().await;
    gw.stop().await;
}

#[tokio::test]
async fn without_a_gateway_host_key_the_page_makes_no_invites() {
    let web = Web::start().await;
    web.api
        .store
        .add_user("alice", &crate::common::gateway::admin())
        .unwrap();
    let mut b = web.signed_in().await;
    let page = b.page("/admin/invites").await;
    assert!(page.contains("pra-registry invite create"), "{page}");
    assert!(!page.contains("action=\"/admin/invites\""), "{page}");
    let before = web.api.snapshot();
    let csrf = b.csrf().await;
    let r = b
        .post(
            "/admin/invites",
            &[("csrf", &csrf), ("user", "alice"), ("expires", "1d")],
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(web.api.snapshot(), before);
    web.api.stop().await;
}
