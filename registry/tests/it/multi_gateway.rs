//! Several gateways, one registry: two `pra-registry serve` processes on one
//! PostgreSQL database (the throwaway server of `common/pg.rs`), sharing a
//! host key. A key approved through one gateway's API logs in on the other;
//! the live-sessions list shows both gateways' sessions; a revocation made
//! by a third process (the admin CLI) ends the key's sessions on every
//! gateway within 5 s; a disconnect asked through one gateway's API ends a
//! session served by the other. An admin page sign-in made on one gateway
//! works on the other, and a sign-out on one ends it on both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::event_fields;
use crate::common::fleet;
use crate::common::pg;

use crate::common::gateway::{echo_server, echo_through, exec, forward, pattern};
use crate::common::web::{Browser, flash};
use crate::common::{Resp, line, random_ed25519, request};
use fleet::{Serve, admin, closed_within, eventually, registry, try_login};
use pra_registry::gateway::hostkey::HOST_KEY_FILE;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(5);

fn sessions(url: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_str(&admin(url, &["session", "list", "--json"])).unwrap();
    v["sessions"].as_array().unwrap().clone()
}

/// POST `body` to the admin API on `api` with `token`, insisting on 200.
async fn post_ok(
    api: std::net::SocketAddr,
    path: &str,
    token: &str,
    body: &serde_json::Value,
) -> Resp {
    let body = body.to_string();
    let r = request(api, "POST", path, Some(token), Some(body.as_bytes())).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_approvals_sessions_and_revocations() {
    let t_test = Instant::now();
    let Some((_, url)) = pg::fresh() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));

    // One host key for every gateway: made on A, copied to B.
    let out = registry(&url, &data_a).arg("hostkey").output().unwrap();
    assert!(out.status.success());
    std::fs::create_dir_all(&data_b).unwrap();
    std::fs::copy(data_a.join(HOST_KEY_FILE), data_b.join(HOST_KEY_FILE)).unwrap();
    let a = Serve::start(&url, &data_a, "gw-a");
    let b = Serve::start(&url, &data_b, "gw-b");
    assert_eq!(a.host_key, b.host_key);
    assert_eq!(a.host_key, String::from_utf8_lossy(&out.stdout).trim());
    let t_started = t_test.elapsed();

    // Admin work through the CLI and gateway A's API.
    let echo = echo_server().await;
    let alice = random_ed25519();
    let bob = random_ed25519();
    let keys = tempfile::tempdir().unwrap();
    let alice_file = keys.path().join("alice.pub");
    std::fs::write(&alice_file, line(&alice)).unwrap();
    let bob_file = keys.path().join("bob.pub");
    std::fs::write(&bob_file, line(&bob)).unwrap();
    admin(&url, &["user", "add", "alice"]);
    admin(
        &url,
        &[
            "key",
            "import",
            alice_file.to_str().unwrap(),
            "--user",
            "alice",
        ],
    );
    admin(
        &url,
        &[
            "key",
            "import",
            bob_file.to_str().unwrap(),
            "--user",
            "bob",
            "--approve",
        ],
    );
    let target = format!("127.0.0.1:{}", echo.port());
    admin(
        &url,
        &[
            "rule", "add", "--user", "alice", "--name", "echo", "--local", "15000", "--target",
            &target,
        ],
    );
    let token = admin(&url, &["token", "create", "--name", "ops"])
        .trim()
        .to_owned();
    let fp = common::fingerprint(&alice);

    // Pending: refused on both.
    assert!(
        try_login(b.ssh, &b.host_key, "alice", &alice)
            .await
            .is_err()
    );
    post_ok(
        a.api,
        "/api/v1/admin/keys/approve",
        &token,
        &serde_json::json!({ "fingerprint": fp }),
    )
    .await;

    // Approved through A, used on B (and on A).
    let on_b = try_login(b.ssh, &b.host_key, "alice", &alice)
        .await
        .unwrap_or_else(|_| panic!("alice could not log in on gateway B"));
    let on_a = try_login(a.ssh, &a.host_key, "alice", &alice)
        .await
        .unwrap_or_else(|_| panic!("alice could not log in on gateway A"));
    let bystander = try_login(a.ssh, &a.host_key, "bob", &bob)
        .await
        .unwrap_or_else(|_| panic!("bob could not log in on gateway A"));
    let (rules, status, _) = exec(&on_b, pra_proto::RULES_COMMAND).await;
    assert_eq!(status, Some(0));
    assert!(String::from_utf8_lossy(&rules).contains("\"echo\""));
    let f = forward(&on_b, "127.0.0.1", u32::from(echo.port()))
        .await
        .unwrap();
    let data = pattern(256 * 1024, 7);
    assert_eq!(echo_through(f, data.clone()).await, data);

    // Every gateway's sessions in one list, with who, where and since when.
    let live = eventually(LIMIT, "three live sessions", || {
        let s = sessions(&url);
        (s.len() == 3).then_some(s)
    })
    .await;
    let mut seen: Vec<(String, String)> = live
        .iter()
        .map(|s| {
            (
                s["gateway"].as_str().unwrap().to_owned(),
                s["user"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("gw-a".to_owned(), "alice".to_owned()),
            ("gw-a".to_owned(), "bob".to_owned()),
            ("gw-b".to_owned(), "alice".to_owned())
        ]
    );
    assert!(live.iter().all(|s| s["started_at"].as_i64().unwrap() > 0));
    assert!(live.iter().any(|s| s["fingerprint"] == fp.as_str()));
    let text = admin(&url, &["session", "list"]);
    assert!(text.contains("gw-a") && text.contains("gw-b"), "{text}");
    // "last seen" is kept whichever gateway the key used
    eventually(LIMIT, "alice's key shows a last login", || {
        let keys: serde_json::Value =
            serde_json::from_str(&admin(&url, &["key", "list", "--json"])).unwrap();
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["fingerprint"] == fp.as_str())
            .and_then(|k| k["last_seen"].as_i64())
    })
    .await;

    // Revoke from a third process: alice's sessions end on both gateways.
    let t = Instant::now();
    admin(&url, &["key", "revoke", &fp]);
    let committed = t.elapsed();
    let took_b = closed_within(&on_b, t, Duration::from_secs(15)).await;
    let took_a = closed_within(&on_a, t, Duration::from_secs(15)).await;
    eprintln!(
        "revocation across gateways: CLI committed after {committed:?}; session on gw-b \
         closed after {took_b:?}, on gw-a after {took_a:?} (from the CLI's start)"
    );
    assert!(took_b < LIMIT && took_a < LIMIT, "{took_b:?} {took_a:?}");
    assert!(!bystander.is_closed(), "bob's session must stay");
    assert!(
        try_login(a.ssh, &a.host_key, "alice", &alice)
            .await
            .is_err()
    );

    let audit: serde_json::Value = serde_json::from_str(&admin(
        &url,
        &[
            "audit",
            "--kind",
            "session.revoked",
            "--json",
            "--limit",
            "10",
        ],
    ))
    .unwrap();
    let actors = event_fields(&audit, "actor");
    assert!(
        actors.iter().any(|a| a == "gateway:gw-a") && actors.iter().any(|a| a == "gateway:gw-b"),
        "{actors:?}"
    );
    let live = eventually(LIMIT, "only bob's session left", || {
        let s = sessions(&url);
        (s.len() == 1).then_some(s)
    })
    .await;
    assert_eq!(live[0]["user"], "bob");
    assert_eq!(live[0]["gateway"], "gw-a");

    // Disconnect bob's session (served by A) through B's API.
    let id = live[0]["id"].as_i64().unwrap();
    let t = Instant::now();
    let body = serde_json::json!({ "id": id });
    let path = "/api/v1/admin/sessions/disconnect";
    let r = post_ok(b.api, path, &token, &body).await;
    assert_eq!(r.json()["disconnect_requested_by"], "token:ops");
    let took = closed_within(&bystander, t, Duration::from_secs(15)).await;
    eprintln!("disconnect through gw-b's API ended the session on gw-a after {took:?}");
    assert!(took < LIMIT, "{took:?}");
    let r = request(b.api, "GET", "/api/v1/admin/sessions", Some(&token), None).await;
    assert_eq!(r.status, 200);
    let left = eventually(LIMIT, "no live session", || {
        let s = sessions(&url);
        s.is_empty().then_some(())
    });
    left.await;
    let body = body.to_string();
    let again = request(a.api, "POST", path, Some(&token), Some(body.as_bytes())).await;
    assert_eq!(again.status, 404, "{}", again.text());

    // Nothing logged the database password.
    for g in [&a, &b] {
        assert!(!g.stderr().contains(pg::PASSWORD));
    }
    a.stop();
    b.stop();
    eprintln!(
        "multi-gateway test: two gateways up after {t_started:?}, whole test {:?}",
        t_test.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_page_sessions_work_on_every_gateway() {
    let Some((_, url)) = pg::fresh() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = Serve::start(&url, &dir.path().join("a"), "gw-a");
    let b = Serve::start(&url, &dir.path().join("b"), "gw-b");
    let token = admin(&url, &["token", "create", "--name", "ops"])
        .trim()
        .to_owned();

    // Signed in on A; the same cookie works on B (no sticky sessions).
    let mut on_a = Browser::new(a.api);
    let r = on_a.sign_in(&token).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/admin"));
    let cookie = on_a.cookies["pra_admin"].clone();
    let mut on_b = Browser::new(b.api);
    on_b.cookies.insert("pra_admin".into(), cookie.clone());
    assert!(on_b.page("/admin/users").await.contains("Users"));
    // A message left by a change on B shows on A's next page.
    let csrf = on_b.csrf().await;
    let r = on_b
        .post("/admin/users", &[("csrf", &csrf), ("name", "carol")])
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let page = on_a.page("/admin/users").await;
    assert!(
        flash(&page).unwrap().starts_with("User carol added."),
        "{page}"
    );

    // Only the cookie's SHA-256 is in the database, never the cookie.
    let db = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    let dump = pg::Postgres::shared().psql(db, "SELECT * FROM web_sessions");
    assert!(!dump.contains(&cookie), "{dump}");
    let hash = pg::Postgres::shared().psql(db, "SELECT id_hash FROM web_sessions");
    assert_eq!(hash.len(), 64, "{hash}");

    // Signed out on A: B refuses the cookie too.
    let csrf = on_a.csrf().await;
    let r = on_a.post("/admin/logout", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/admin/login?m=out"));
    let r = on_b.get("/admin/users").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/admin/login?m=ended"));
    a.stop();
    b.stop();
}
