//! Admin API against a real server on 127.0.0.1:0: bearer auth (401/403),
//! keys, users, rules, audit; bad rule input refused, nothing stored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::event_fields;
use crate::common::{Api, random_ed25519, request};
use serde_json::json;

#[tokio::test]
async fn missing_or_malformed_token_is_401_wrong_token_is_403() {
    let api = Api::start().await;
    let good = api.token("ops");
    for path in [
        "/api/v1/admin/keys",
        "/api/v1/admin/users",
        "/api/v1/admin/rules",
        "/api/v1/admin/audit",
    ] {
        let r = api.get(path, None).await;
        assert_eq!(
            (r.status, r.code()),
            (401, "unauthorized".to_string()),
            "{path}"
        );
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        let r = api.get(path, Some("pra_wrong")).await;
        assert_eq!(
            (r.status, r.code()),
            (403, "forbidden".to_string()),
            "{path}"
        );
        assert_eq!(api.get(path, Some(&good)).await.status, 200, "{path}");
    }
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "bearer"] {
        let req = format!(
            "GET /api/v1/admin/users HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {header}\r\n\r\n"
        );
        let r = common::raw(api.addr, req.as_bytes()).await;
        assert_eq!(
            (r.status, r.code()),
            (401, "unauthorized".to_string()),
            "{header}"
        );
    }
    // a refused change is not made
    let r = api
        .post(
            "/api/v1/admin/users",
            Some("pra_wrong"),
            &json!({"name": "mallory"}),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(api.snapshot().users, 0);
    // token use is recorded
    let t = api
        .store
        .use_token(&pra_registry::api::extract::token_hash(&good))
        .unwrap()
        .unwrap();
    assert!(t.last_used.is_some());
    api.stop().await;
}

#[tokio::test]
async fn users_keys_rules_audit() {
    let api = Api::start().await;
    let t = api.token("ops");
    let t = Some(t.as_str());

    let r = api
        .post("/api/v1/admin/users", t, &json!({"name": "alice"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["enabled"], true);
    let r = api
        .post("/api/v1/admin/users", t, &json!({"name": "alice"}))
        .await;
    assert_eq!((r.status, r.code()), (409, "conflict".to_string()));
    let r = api
        .post("/api/v1/admin/users", t, &json!({"name": "bad name"}))
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_field".to_string()));
    let r = api
        .post("/api/v1/admin/users/alice/disable", t, &json!({}))
        .await;
    assert_eq!(
        (r.status, r.json()["enabled"].as_bool()),
        (200, Some(false))
    );
    let r = api
        .post("/api/v1/admin/users/alice/enable", t, &json!({}))
        .await;
    assert_eq!((r.status, r.json()["enabled"].as_bool()), (200, Some(true)));
    let r = api
        .post("/api/v1/admin/users/nobody/enable", t, &json!({}))
        .await;
    assert_eq!((r.status, r.code()), (404, "not_found".to_string()));
    assert_eq!(
        api.get("/api/v1/admin/users", t).await.json()["users"][0]["name"],
        "alice"
    );

    // keys
    let key = random_ed25519();
    let fp = common::fingerprint(&key);
    api.submit(&key, "alice").await;
    let r = api.get("/api/v1/admin/keys?status=pending", t).await;
    assert_eq!(r.json()["keys"][0]["fingerprint"], fp.as_str());
    assert_eq!(
        api.get("/api/v1/admin/keys?status=approved", t)
            .await
            .json()["keys"],
        json!([])
    );
    let r = api.get("/api/v1/admin/keys?status=bogus", t).await;
    assert_eq!((r.status, r.code()), (400, "invalid_field".to_string()));
    let r = api.get("/api/v1/admin/keys?colour=blue", t).await;
    assert_eq!((r.status, r.code()), (400, "invalid_field".to_string()));
    let r = api
        .post("/api/v1/admin/keys/approve", t, &json!({"fingerprint": fp}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "approved");
    assert_eq!(r.json()["approved_by"], "token:ops");
    assert_eq!(
        api.store.allowed_keys().unwrap(),
        vec![(fp.clone(), "alice".to_string())]
    );
    let r = api
        .post("/api/v1/admin/keys/revoke", t, &json!({"fingerprint": fp}))
        .await;
    assert_eq!(r.json()["status"], "revoked");
    let r = api
        .post("/api/v1/admin/keys/approve", t, &json!({"fingerprint": fp}))
        .await;
    assert_eq!((r.status, r.code()), (409, "conflict".to_string()));
    let r = api
        .post(
            "/api/v1/admin/keys/approve",
            t,
            &json!({"fingerprint": "SHA256:nope"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_field".to_string()));
    let unknown = format!("SHA256:{}", "B".repeat(43));
    let r = api
        .post(
            "/api/v1/admin/keys/approve",
            t,
            &json!({"fingerprint": unknown}),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "not_found".to_string()));

    // rules
    let rule = json!({"user": "alice", "name": "smtp", "local_port": 10025, "target_host": "[::1]", "target_port": 25});
    let r = api.post("/api/v1/admin/rules", t, &rule).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["target_host"], "::1");
    let r = api.get("/api/v1/admin/rules?user=alice", t).await;
    assert_eq!(r.json()["rules"].as_array().unwrap().len(), 1);
    assert_eq!(
        api.get("/api/v1/admin/rules?user=bob", t).await.json()["rules"],
        json!([])
    );
    let r = request(
        api.addr,
        "DELETE",
        "/api/v1/admin/rules/alice/smtp",
        t,
        None,
    )
    .await;
    assert_eq!(r.status, 204);
    let r = request(
        api.addr,
        "DELETE",
        "/api/v1/admin/rules/alice/smtp",
        t,
        None,
    )
    .await;
    assert_eq!((r.status, r.code()), (404, "not_found".to_string()));

    // audit: newest first, filters, paging, actor is the token's name
    let r = api.get("/api/v1/admin/audit?limit=3", t).await;
    let events = r.json()["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["kind"], "rule.remove");
    assert_eq!(events[0]["actor"], "token:ops");
    let before = events[2]["id"].as_i64().unwrap();
    let r = api
        .get(&format!("/api/v1/admin/audit?limit=2&before={before}"), t)
        .await;
    let older = r.json()["events"].as_array().unwrap().clone();
    assert!(older.iter().all(|e| e["id"].as_i64().unwrap() < before));
    let r = api.get("/api/v1/admin/audit?kind=key.&user=alice", t).await;
    let kinds = event_fields(&r.json(), "kind");
    assert_eq!(kinds, ["key.revoke", "key.approve", "key.submit"]);
    let r = api.get("/api/v1/admin/audit?limit=abc", t).await;
    assert_eq!((r.status, r.code()), (400, "invalid_field".to_string()));
    api.stop().await;
}

#[tokio::test]
async fn every_bad_rule_is_refused_and_nothing_is_stored() {
    let api = Api::start().await;
    let t = api.token("ops");
    let t = Some(t.as_str());
    api.post("/api/v1/admin/users", t, &json!({"name": "alice"}))
        .await;
    let ok = json!({"user": "alice", "name": "smtp", "local_port": 10025, "target_host": "mail.corp", "target_port": 25});
    assert_eq!(api.post("/api/v1/admin/rules", t, &ok).await.status, 201);
    let before = api.snapshot();
    let with = |k: &str, v: serde_json::Value| {
        let mut r = json!({"user": "alice", "name": "imap", "local_port": 10143, "target_host": "mail.corp", "target_port": 143});
        r[k] = v;
        r
    };
    #[rustfmt::skip]
    let cases = [
        ("local port 0", "local_port", json!(0), 400, "invalid_field", "local port"),
        ("local port 65536", "local_port", json!(65536), 400, "invalid_field", "local port"),
        ("local port -5", "local_port", json!(-5), 400, "invalid_field", "local port"),
        ("target port 0", "target_port", json!(0), 400, "invalid_field", "target port"),
        ("target port 70000", "target_port", json!(70000), 400, "invalid_field", "target port"),
        ("empty host", "target_host", json!(""), 400, "invalid_field", "target host"),
        ("over-long host", "target_host", json!("a.".repeat(127) + "corp"), 400, "invalid_field", "target host"),
        ("host with space", "target_host", json!("mail corp"), 400, "invalid_field", "target host"),
        ("host with NUL", "target_host", json!("mail\u{0}corp"), 400, "invalid_field", "target host"),
        ("host with newline", "target_host", json!("mail\ncorp"), 400, "invalid_field", "target host"),
        ("unknown user", "user", json!("nobody"), 404, "not_found", "no user named nobody"),
        ("duplicate name", "name", json!("smtp"), 409, "conflict", "already has a rule named smtp"),
        ("duplicate local port", "local_port", json!(10025), 409, "conflict", "already uses local port 10025"),
        ("port as text", "local_port", json!("10143"), 400, "bad_json", "invalid type"),
        ("unknown field", "comment", json!("x"), 400, "bad_json", "unknown field"),
    ];
    for (what, field, value, status, code, word) in cases {
        let r = api
            .post("/api/v1/admin/rules", t, &with(field, value))
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (status, code),
            "{what}: {}",
            r.text()
        );
        assert!(
            r.json()["message"].as_str().unwrap().contains(word),
            "{what}: {}",
            r.text()
        );
        assert_eq!(api.snapshot(), before, "{what}: something was stored");
    }
    api.stop().await;
}
