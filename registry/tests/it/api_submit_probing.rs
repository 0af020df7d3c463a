//! Pending-key spam and account probing through the public submission:
//! at most 5 pending keys per account (429 `too_many_pending`); the answer
//! is the same for unknown and known accounts (also the cap); only the
//! status request signed with the submitted key says `no_such_account`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::AuditOf;
use crate::common::{Api, line, random_ed25519, unix_now};
use pra_proto::api::KeyStatusQuery;
use pra_proto::proof::{self, Action};
use pra_registry::model::Actor;
use pra_registry::store::MAX_PENDING_PER_USER;
use ssh_key::PrivateKey;

fn admin() -> Actor {
    Actor::Cli("root".into())
}

async fn submit(api: &Api, key: &PrivateKey, user: &str) -> common::Resp {
    api.submit(key, user).await
}

async fn status(api: &Api, key: &PrivateKey, user: &str) -> common::Resp {
    let q = KeyStatusQuery {
        user: user.into(),
        public_key: line(key),
        proof: proof::sign(key, Action::Status, user, unix_now()).unwrap(),
    };
    api.post(
        "/api/v1/keys/status",
        None,
        &serde_json::to_value(q).unwrap(),
    )
    .await
}

/// What a prober sees of a submission: status, headers that matter, body
/// with the key's own fingerprint taken out.
fn seen(r: &common::Resp, key: &PrivateKey) -> (u16, String) {
    (r.status, r.text().replace(&common::fingerprint(key), "FP"))
}

#[tokio::test]
async fn at_most_5_pending_keys_per_account_then_429() {
    assert_eq!(MAX_PENDING_PER_USER, 5);
    let api = Api::start_unlimited().await;
    api.store.add_user("alice", &admin()).unwrap();
    let keys: Vec<PrivateKey> = (0..7).map(|_| random_ed25519()).collect();
    let mut statuses = Vec::new();
    for k in &keys[..6] {
        statuses.push(submit(&api, k, "alice").await);
    }
    assert_eq!(
        statuses.iter().map(|r| r.status).collect::<Vec<_>>(),
        [202, 202, 202, 202, 202, 429]
    );
    let r = &statuses[5];
    assert_eq!(r.code(), "too_many_pending");
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("already has 5 keys waiting for approval"),
        "{}",
        r.text()
    );
    assert_eq!(api.store.list_keys(None).unwrap().len(), 5);
    // re-sending a pending key is still answered (idempotent)
    assert_eq!(submit(&api, &keys[0], "alice").await.status, 202);
    // an admin decision makes room; admin imports are not capped
    let fp = common::fingerprint(&keys[0]);
    api.store
        .set_key_status(&fp, pra_proto::api::KeyStatus::Revoked, &admin())
        .unwrap();
    assert_eq!(submit(&api, &keys[5], "alice").await.status, 202);
    assert_eq!(submit(&api, &keys[6], "alice").await.status, 429);
    api.stop().await;
}

#[tokio::test]
async fn unknown_and_known_accounts_are_answered_alike() {
    let api = Api::start_unlimited().await;
    api.store.add_user("alice", &admin()).unwrap();
    for n in 0..6 {
        let (k1, k2) = (random_ed25519(), random_ed25519());
        let known = submit(&api, &k1, "alice").await;
        let unknown = submit(&api, &k2, "alcie").await;
        let (a, b) = (seen(&known, &k1), seen(&unknown, &k2));
        assert_eq!(
            a.clone(),
            (b.0, b.1.replace("alcie", "alice")),
            "submission {n}"
        );
        assert_eq!(known.header("content-type"), unknown.header("content-type"));
    }
    // the cap hit the unknown name at the same count; nothing was stored for it
    assert_eq!(api.store.list_keys(None).unwrap().len(), 5);
    assert_eq!(api.store.list_users().unwrap().len(), 1);
    let events = api.store.audit_of("key.submit.unknown_user");
    assert_eq!(events.len(), 5);
    assert_eq!(events[0].event.user.as_deref(), Some("alcie"));
    assert!(events[0].event.actor.starts_with("submitter:127.0.0.1:"));
    api.stop().await;
}

#[tokio::test]
async fn only_the_submitted_keys_holder_learns_there_is_no_such_account() {
    let api = Api::start_unlimited().await;
    api.store.add_user("alice", &admin()).unwrap();
    let typo = random_ed25519();
    assert_eq!(submit(&api, &typo, "alcie").await.status, 202);
    let r = status(&api, &typo, "alcie").await;
    assert_eq!((r.status, r.code()), (404, "no_such_account".to_string()));
    assert!(r.text().contains("no account named alcie"), "{}", r.text());

    // a key that was never submitted learns nothing: both names look alike
    let fresh = random_ed25519();
    let a = status(&api, &fresh, "alice").await;
    let b = status(&api, &fresh, "bobby").await;
    assert_eq!((a.status, a.code()), (404, "not_found".to_string()));
    assert_eq!((b.status, b.code()), (404, "not_found".to_string()));
    // nor does another key asking about the typo's name
    let r = status(&api, &fresh, "alcie").await;
    assert_eq!(r.code(), "not_found");
    // a forged proof gets nothing
    let mut q = serde_json::to_value(KeyStatusQuery {
        user: "alcie".into(),
        public_key: line(&typo),
        proof: proof::sign(&fresh, Action::Status, "alcie", unix_now()).unwrap(),
    })
    .unwrap();
    let r = api.post("/api/v1/keys/status", None, &q).await;
    assert_eq!(r.code(), "invalid_proof");
    q["proof"] = serde_json::json!("");
    assert_eq!(
        api.post("/api/v1/keys/status", None, &q).await.code(),
        "bad_json"
    );
    // once the admin creates the account, it is an ordinary unknown key
    api.store.add_user("alcie", &admin()).unwrap();
    assert_eq!(status(&api, &typo, "alcie").await.code(), "not_found");
    assert_eq!(submit(&api, &typo, "alcie").await.status, 202);
    assert_eq!(status(&api, &typo, "alcie").await.status, 200);
    api.stop().await;
}
