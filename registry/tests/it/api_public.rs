//! Public API against a real server on 127.0.0.1:0: health, key
//! submission (202 pending, idempotent, 404/409), key status, and every bad
//! key refused with its code and nothing stored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::{Api, ed25519, fingerprint, line, random_ed25519, submission, unix_now};
use pra_proto::api::{KeyStatusQuery, KeyStatusReply};
use pra_proto::proof::{self, Action};
use pra_registry::model::Actor;
use serde_json::json;

fn admin() -> Actor {
    Actor::Cli("test".into())
}

#[tokio::test]
async fn health_answers_ok() {
    let api = Api::start().await;
    let r = api.get("/api/v1/health", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
    assert_eq!(r.header("content-type"), Some("application/json"));
    api.stop().await;
}

#[tokio::test]
async fn submission_is_pending_idempotent_and_audited() {
    let api = Api::with_users(&["alice"]).await;
    let key = random_ed25519();
    let body = serde_json::to_value(submission(&key, "alice")).unwrap();
    let r = api.post("/api/v1/keys", None, &body).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let reply: KeyStatusReply = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(reply.fingerprint, fingerprint(&key));
    assert_eq!(reply.user, "alice");
    assert_eq!(reply.status.as_str(), "pending");

    let stored = api.store.get_key(&reply.fingerprint).unwrap().unwrap();
    assert_eq!(stored.public_key, line(&key));
    assert_eq!(stored.device.computer, "PC-01");
    let snap = api.snapshot();

    // the same key again: same answer, nothing new
    let r = api.post("/api/v1/keys", None, &body).await;
    assert_eq!(r.status, 202);
    assert_eq!(r.json()["status"], "pending");
    assert_eq!(api.snapshot(), snap);

    // after approval a resubmission reports the current status
    api.store
        .set_key_status(
            &reply.fingerprint,
            pra_proto::api::KeyStatus::Approved,
            &admin(),
        )
        .unwrap();
    let r = api.post("/api/v1/keys", None, &body).await;
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (202, Some("approved"))
    );

    let audit = api.store.audit(&Default::default()).unwrap();
    let submit = audit.iter().find(|e| e.event.kind == "key.submit").unwrap();
    assert!(submit.event.actor.starts_with("submitter:127.0.0.1:"));
    assert!(
        submit
            .event
            .source
            .as_deref()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    api.stop().await;
}

#[tokio::test]
async fn unknown_account_stores_nothing_and_other_users_key_is_409() {
    let api = Api::with_users(&["alice", "bob"]).await;
    let key = random_ed25519();
    let r = api.submit(&key, "alcie").await;
    // answered like a known account (see api_submit_probing.rs), nothing stored
    assert_eq!(r.status, 202);
    assert_eq!(r.json()["status"], "pending");
    assert_eq!((api.snapshot().keys, api.snapshot().users), (0, 2));

    let r = api.submit(&key, "alice").await;
    assert_eq!(r.status, 202);
    let snap = api.snapshot();
    let r = api.submit(&key, "bob").await;
    assert_eq!((r.status, r.code()), (409, "conflict".to_string()));
    assert_eq!(api.snapshot(), snap);
    api.stop().await;
}

#[tokio::test]
async fn a_disabled_account_may_submit_but_stays_unable_to_log_in() {
    let api = Api::with_users(&["alice"]).await;
    api.store
        .set_user_enabled("alice", false, &admin())
        .unwrap();
    let key = random_ed25519();
    let r = api.submit(&key, "alice").await;
    assert_eq!(r.status, 202);
    assert!(api.store.allowed_keys().unwrap().is_empty());
    api.stop().await;
}

#[tokio::test]
async fn proofs_must_verify() {
    let api = Api::with_users(&["alice"]).await;
    let key = random_ed25519();
    let other = random_ed25519();
    let now = unix_now();
    let cases = [
        (
            "stale",
            proof::sign(&key, Action::Submit, "alice", now - 3600).unwrap(),
            "stale",
        ),
        (
            "future",
            proof::sign(&key, Action::Submit, "alice", now + 3600).unwrap(),
            "stale",
        ),
        (
            "wrong action",
            proof::sign(&key, Action::Status, "alice", now).unwrap(),
            "does not match",
        ),
        (
            "wrong user",
            proof::sign(&key, Action::Submit, "bob", now).unwrap(),
            "does not match",
        ),
        (
            "other key",
            proof::sign(&other, Action::Submit, "alice", now).unwrap(),
            "does not match",
        ),
        (
            "garbage",
            pra_proto::proof::Proof {
                time: now,
                signature: "nope".into(),
            },
            "malformed",
        ),
    ];
    for (what, p, word) in cases {
        let mut sub = submission(&key, "alice");
        sub.proof = p;
        let r = api
            .post("/api/v1/keys", None, &serde_json::to_value(sub).unwrap())
            .await;
        assert_eq!(
            (r.status, r.code()),
            (400, "invalid_proof".to_string()),
            "{what}"
        );
        assert!(
            r.json()["message"].as_str().unwrap().contains(word),
            "{what}: {}",
            r.text()
        );
    }
    let mut body = serde_json::to_value(submission(&key, "alice")).unwrap();
    body.as_object_mut().unwrap().remove("proof");
    let r = api.post("/api/v1/keys", None, &body).await;
    assert_eq!((r.status, r.code()), (400, "bad_json".to_string()));
    assert!(r.text().contains("missing field `proof`"));
    assert_eq!(api.snapshot().keys, 0);
    api.stop().await;
}

#[tokio::test]
async fn status_of_own_key() {
    let api = Api::with_users(&["alice", "bob"]).await;
    let key = random_ed25519();
    let query = |user: &str, action: Action| {
        serde_json::to_value(KeyStatusQuery {
            user: user.into(),
            public_key: line(&key),
            proof: proof::sign(&key, action, user, unix_now()).unwrap(),
        })
        .unwrap()
    };
    let r = api
        .post("/api/v1/keys/status", None, &query("alice", Action::Status))
        .await;
    assert_eq!((r.status, r.code()), (404, "not_found".to_string()));
    api.submit(&key, "alice").await;
    let r = api
        .post("/api/v1/keys/status", None, &query("alice", Action::Status))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "pending");
    assert_eq!(r.json()["fingerprint"], fingerprint(&key).as_str());
    let r = api
        .post("/api/v1/keys/status", None, &query("bob", Action::Status))
        .await;
    assert_eq!((r.status, r.code()), (409, "conflict".to_string()));
    let r = api
        .post("/api/v1/keys/status", None, &query("alice", Action::Submit))
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_proof".to_string()));
    api.stop().await;
}

#[tokio::test]
async fn every_bad_key_is_refused_with_its_code_and_nothing_is_stored() {
    let api = Api::start_unlimited().await;
    api.store.add_user("alice", &admin()).unwrap();
    let before = api.snapshot();
    // a valid proof from some key: the key text is refused before the proof matters
    let signer = ed25519(1);
    let cases = common::bad_keys(api.dir.path());
    assert!(cases.len() >= 10);
    for (what, text, code) in cases {
        let mut sub = submission(&signer, "alice");
        sub.public_key = text.clone();
        let r = api
            .post("/api/v1/keys", None, &serde_json::to_value(sub).unwrap())
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, code),
            "{what}: {}",
            r.text()
        );
        if code == "private_key_refused" {
            for l in text.lines().filter(|l| !l.starts_with("-----")) {
                assert!(!r.text().contains(l), "{what}: echoed");
            }
        }
        assert_eq!(api.snapshot(), before, "{what}: something was stored");
    }
    // bad user names and device fields
    for (what, patch) in [
        ("user name", json!({"user": "al ice"})),
        ("empty user", json!({"user": ""})),
        (
            "device with escape",
            json!({"device": {"computer": "PC\u{1b}[2J"}}),
        ),
        (
            "long description",
            json!({"device": {"computer": "PC", "description": "d".repeat(1025)}}),
        ),
    ] {
        let mut body = serde_json::to_value(submission(&signer, "alice")).unwrap();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = api.post("/api/v1/keys", None, &body).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "invalid_field".to_string()),
            "{what}: {}",
            r.text()
        );
        assert!(!r.text().contains('\u{1b}'));
        assert_eq!(api.snapshot(), before, "{what}");
    }
    api.stop().await;
}

#[tokio::test]
async fn strong_rsa_key_with_proof_is_accepted() {
    let api = Api::with_users(&["rsa"]).await;
    let (path, _) = common::ssh_keygen_rsa(api.dir.path(), 3072);
    let key = ssh_key::PrivateKey::read_openssh_file(&path).unwrap();
    let r = api.submit(&key, "rsa").await;
    assert_eq!(r.status, 202, "{}", r.text());
    api.stop().await;
}
