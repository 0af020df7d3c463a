//! Admin tokens can be listed (never their secrets), revoked and given an
//! expiry: the CLI, the admin API and a web session signed in with the
//! token all see a revocation on their next request; both are audited.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::event_fields;
use crate::common::web::Web;
use crate::common::{Api, Resp, TestEnv};
use pra_registry::api::extract::token_hash;
use pra_registry::model::{Actor, AuditQuery, now};
use pra_registry::store::Store;

#[test]
fn cli_lists_revokes_and_expires_tokens() {
    let env = TestEnv::new();
    let ci = env
        .ok(&["token", "create", "--name", "ci"])
        .trim()
        .to_string();
    let r = env.run(&["token", "create", "--name", "temp", "--expires", "12h"]);
    assert!(r.success(), "{}", r.stderr());
    let temp = r.stdout().trim().to_string();
    assert!(r.stderr().contains("valid until 20"), "{}", r.stderr());

    let list = env.ok(&["token", "list"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    assert!(lines[0].starts_with("NAME"), "{list}");
    assert!(
        lines[1].starts_with("ci ") && lines[1].ends_with("never"),
        "{list}"
    );
    assert!(
        lines[2].starts_with("temp ") && !lines[2].ends_with("never"),
        "{list}"
    );
    assert!(!list.contains(&ci) && !list.contains(&temp));
    assert!(!list.contains(&token_hash(&ci)));

    let j = env.json(&["token", "list", "--json"]);
    let tokens = j["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[0]["name"], "ci");
    assert!(tokens[0]["expires_at"].is_null());
    let exp = tokens[1]["expires_at"].as_i64().unwrap();
    assert!((exp - now() - 12 * 3600).abs() < 60, "{exp}");
    assert!(!j.to_string().contains(&token_hash(&temp)));

    let out = env.ok(&["token", "revoke", "ci"]);
    assert!(out.starts_with("revoked token ci"), "{out}");
    let j = env.json(&["token", "list", "--json"]);
    assert_eq!(j["tokens"].as_array().unwrap().len(), 1);
    let line = env.run(&["token", "revoke", "ci"]).error_line();
    assert!(line.starts_with("ERR(10303) no token named ci"), "{line}");
    for bad in ["5y", "0d", "x", "30"] {
        let line = env
            .run(&["token", "create", "--name", "z", "--expires", bad])
            .error_line();
        assert!(line.starts_with("ERR(10301) invalid --expires"), "{line}");
    }
    let audit = env.json(&["audit", "--json", "--kind", "token"]);
    let kinds = event_fields(&audit, "kind");
    assert_eq!(kinds, ["token.revoke", "token.create", "token.create"]);
    assert_eq!(audit["events"][0]["detail"]["token"], "ci");
    assert!(audit["events"][1]["detail"]["expires_at"].is_i64());
}

/// `POST /api/v1/admin/tokens/revoke` of token `name` with `token`.
async fn revoke(api: &Api, token: &str, name: &str) -> Resp {
    let body = serde_json::json!({ "name": name });
    api.post("/api/v1/admin/tokens/revoke", Some(token), &body)
        .await
}

#[tokio::test]
async fn api_refuses_a_revoked_or_expired_token_on_the_next_request() {
    let api = Api::start().await;
    let ops = api.token("ops");
    let ci = api.token("ci");
    assert_eq!(api.get("/api/v1/admin/users", Some(&ci)).await.status, 200);

    // listed through the API, with last use and never a secret
    let r = api.get("/api/v1/admin/tokens", Some(&ops)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    let names: Vec<&str> = j["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ci", "ops"]);
    assert!(j["tokens"][0]["last_used"].is_i64());
    assert!(!r.text().contains(&ci) && !r.text().contains(&token_hash(&ci)));

    // revoked by another admin through the API: the very next request fails
    let r = revoke(&api, &ops, "ci").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = api.get("/api/v1/admin/users", Some(&ci)).await;
    assert_eq!((r.status, r.code()), (403, "forbidden".to_string()));
    let r = revoke(&api, &ops, "ci").await;
    assert_eq!((r.status, r.code()), (404, "not_found".to_string()));
    let e = &api.store.audit(&AuditQuery::default()).unwrap()[0];
    assert_eq!(
        (e.event.kind.as_str(), e.event.actor.as_str()),
        ("token.revoke", "token:ops")
    );

    // an expired token is refused too (and stays listed until revoked)
    let old = "pra_test_expired_token";
    api.store
        .add_token(
            "old",
            &token_hash(old),
            Some(now() - 1),
            &Actor::Cli("t".into()),
        )
        .unwrap();
    let r = api.get("/api/v1/admin/users", Some(old)).await;
    assert_eq!(r.status, 403);
    assert!(r.text().contains("expired"), "{}", r.text());
    assert_eq!(api.store.list_tokens().unwrap().len(), 2);
    api.stop().await;
}

#[tokio::test]
async fn web_session_signed_in_with_a_revoked_token_ends() {
    let web = Web::start().await;
    let other = web.api.token("other");
    let mut b = web.signed_in().await; // with token `ops`
    let mut o = common::web::Browser::new(web.addr());
    assert_eq!(o.sign_in(&other).await.status, 303);
    assert!(b.page("/admin/keys").await.contains("All keys"));

    // revoked from the CLI's store handle (as another process would)
    let store = Store::sqlite(web.api.dir.path()).unwrap();
    store
        .revoke_token("ops", &Actor::Cli("root".into()))
        .unwrap();
    let r = b.get("/admin/keys").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/admin/login?m=ended"));
    // signing in again with it is refused; the other admin is unaffected
    let r = b.sign_in(&web.token).await;
    assert_eq!(r.status, 401);
    assert_eq!(o.get("/admin/keys").await.status, 200);
    web.api.stop().await;
}
