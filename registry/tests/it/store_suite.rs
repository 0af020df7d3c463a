//! The store test suite, run against both backends: every test below runs
//! once on SQLite (a temp folder) and once on PostgreSQL (a fresh database
//! on the throwaway server of `common/pg.rs`). Same calls, same answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::AuditOf;
use crate::common::pg;

use crate::common::{device, ed25519, fingerprint, line};
use pra_proto::api::KeyStatus;
use pra_registry::error::RegistryError;
use pra_registry::model::*;
use pra_registry::store::{Change, SESSION_STALE_SECS, Store, sqlite};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a test's registry lives; `open` gives another handle on it (as
/// another process would have).
enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Db {
    fn open(&self) -> Arc<Store> {
        match self {
            Db::Sqlite(dir) => Arc::new(Store::sqlite(dir.path()).unwrap()),
            Db::Postgres(url) => Arc::new(Store::postgres(url).unwrap()),
        }
    }
}

fn sqlite() -> Option<Db> {
    Some(Db::Sqlite(tempfile::tempdir().unwrap()))
}

fn postgres() -> Option<Db> {
    if pg::skipped() {
        return None;
    }
    Some(Db::Postgres(pg::Postgres::shared().fresh_db()))
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $( #[test] fn $name() { if let Some(db) = super::sqlite() { super::$name(&db) } } )*
        }
        mod on_postgres {
            $( #[test] fn $name() { if let Some(db) = super::postgres() { super::$name(&db) } } )*
        }
    };
}

suite!(
    users_keys_rules_round_trip_with_audit_and_revision,
    refusals_change_nothing,
    create_user_on_import,
    tokens_are_found_by_hash_and_marked_used,
    tokens_are_listed_revoked_and_expire,
    pending_keys_are_capped_per_account_known_or_not,
    old_audit_events_are_pruned_in_batches,
    a_second_handle_sees_every_change,
    many_threads_share_one_store,
    lists_sort_by_bytes_not_by_locale,
    audit_filters_and_pages,
    last_seen_never_moves_backwards,
    background_writes_are_one_all_or_nothing_group,
    background_writes_open_and_close_live_sessions,
    sessions_are_listed_counted_and_closed,
    stale_sessions_are_hidden_and_ended_at_gateway_restart,
    disconnect_requests_are_audited_and_reach_their_gateway,
    subscribers_hear_changes_from_another_handle,
    invites_are_created_listed_and_revoked_with_audit,
    an_invite_enrolls_one_key_once_and_refusals_store_nothing,
);

fn cli() -> Actor {
    Actor::Cli("root".into())
}

fn new_key(seed: u8, user: &str, status: KeyStatus) -> NewKey {
    let v = pra_registry::validate::public_key(&line(&ed25519(seed))).unwrap();
    NewKey {
        fingerprint: v.fingerprint,
        user: user.into(),
        public_key: v.line,
        algorithm: v.algorithm,
        device: device(),
        status,
    }
}

fn rule(user: &str, name: &str, port: u16, host: &str) -> RuleRecord {
    RuleRecord::new(user, name, port, host, 25)
}

/// The ids of the live sessions.
fn live_ids(s: &Store) -> Vec<i64> {
    s.list_live_sessions()
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect()
}

fn kinds(s: &Store) -> Vec<String> {
    s.audit(&AuditQuery::default())
        .unwrap()
        .into_iter()
        .map(|e| e.event.kind)
        .collect()
}

fn users_keys_rules_round_trip_with_audit_and_revision(db: &Db) {
    let s = db.open();
    assert_eq!(s.revision().unwrap(), 0);
    s.add_user("alice", &cli()).unwrap();
    assert!(matches!(
        s.add_user("alice", &cli()),
        Err(RegistryError::Conflict(_))
    ));
    assert_eq!(s.revision().unwrap(), 1);
    assert_eq!(
        s.get_user("alice").unwrap().map(|u| (u.name, u.enabled)),
        Some(("alice".into(), true))
    );
    assert!(s.get_user("nobody").unwrap().is_none());

    let submitter = Actor::Submitter("10.0.0.1:5000".into());
    let (k, created) = s
        .add_key(new_key(1, "alice", KeyStatus::Pending), false, &submitter)
        .unwrap();
    assert!(created);
    assert_eq!(k.status, KeyStatus::Pending);
    assert_eq!(k.device, device());
    let (again, created) = s
        .add_key(new_key(1, "alice", KeyStatus::Pending), false, &cli())
        .unwrap();
    assert!(!created);
    assert_eq!(again, k);
    assert!(s.allowed_keys().unwrap().is_empty());
    assert_eq!(
        s.list_keys(Some(KeyStatus::Pending)).unwrap(),
        vec![k.clone()]
    );
    assert!(s.list_keys(Some(KeyStatus::Approved)).unwrap().is_empty());

    let k = s
        .set_key_status(&k.fingerprint, KeyStatus::Approved, &cli())
        .unwrap();
    assert_eq!(k.approved_by.as_deref(), Some("cli:root"));
    assert!(k.approved_at.is_some());
    assert_eq!(
        s.allowed_keys().unwrap(),
        vec![(k.fingerprint.clone(), "alice".into())]
    );
    // Same status again: no change, no audit, no revision bump.
    let rev = s.revision().unwrap();
    s.set_key_status(&k.fingerprint, KeyStatus::Approved, &cli())
        .unwrap();
    assert_eq!(s.revision().unwrap(), rev);

    s.set_user_enabled("alice", false, &cli()).unwrap();
    assert!(s.allowed_keys().unwrap().is_empty());
    s.set_user_enabled("alice", true, &cli()).unwrap();

    seen(&s, &k.fingerprint, 1234);
    let facts = s.login_facts("alice", &k.fingerprint).unwrap();
    assert_eq!(facts.key.unwrap().last_seen, Some(1234));
    assert!(facts.user.unwrap().enabled);
    let facts = s.login_facts("bob", "SHA256:none").unwrap();
    assert!(facts.key.is_none() && facts.user.is_none());

    let r = s
        .add_rule(rule("alice", "smtp", 10025, "[::1]"), &cli())
        .unwrap();
    assert_eq!(r.target_host, "::1");
    assert_eq!(s.list_rules(Some("alice")).unwrap(), vec![r.clone()]);
    assert_eq!(s.list_rules(None).unwrap(), vec![r]);
    assert!(s.list_rules(Some("bob")).unwrap().is_empty());
    s.remove_rule("alice", "smtp", &cli()).unwrap();
    assert!(s.list_rules(None).unwrap().is_empty());

    let revoked = s
        .set_key_status(&k.fingerprint, KeyStatus::Revoked, &cli())
        .unwrap();
    assert_eq!(revoked.revoked_by.as_deref(), Some("cli:root"));
    assert!(matches!(
        s.set_key_status(&k.fingerprint, KeyStatus::Approved, &cli()),
        Err(RegistryError::Conflict(_))
    ));
    assert!(matches!(
        s.set_key_status(&k.fingerprint, KeyStatus::Pending, &cli()),
        Err(RegistryError::Invalid { .. })
    ));

    assert_eq!(
        kinds(s.as_ref()),
        [
            "key.revoke",
            "rule.remove",
            "rule.add",
            "user.enable",
            "user.disable",
            "key.approve",
            "key.submit",
            "user.add"
        ]
    );
    // every admin change bumped the revision once; a login did not
    assert_eq!(s.revision().unwrap(), 8);
    let submit = s.audit_of("key.sub");
    assert_eq!(submit.len(), 1);
    assert_eq!(submit[0].event.source.as_deref(), Some("10.0.0.1:5000"));
    assert_eq!(submit[0].event.user.as_deref(), Some("alice"));
    assert_eq!(submit[0].event.detail["status"], "pending");
    assert_eq!(submit[0].event.detail["computer"], "PC-01");
}

fn refusals_change_nothing(db: &Db) {
    let s = db.open();
    s.add_user("alice", &cli()).unwrap();
    s.add_user("bob", &cli()).unwrap();
    s.add_key(new_key(1, "alice", KeyStatus::Pending), false, &cli())
        .unwrap();
    s.add_rule(rule("alice", "smtp", 10025, "mail"), &cli())
        .unwrap();
    let rev = s.revision().unwrap();
    let audit = s.audit(&AuditQuery::default()).unwrap().len();

    let refused = |r: RuleRecord| s.add_rule(r, &cli()).unwrap_err();
    let errors: Vec<RegistryError> = vec![
        s.add_key(new_key(1, "bob", KeyStatus::Pending), false, &cli())
            .unwrap_err(),
        s.add_key(new_key(2, "nobody", KeyStatus::Pending), false, &cli())
            .unwrap_err(),
        s.add_key(new_key(2, "alice", KeyStatus::Revoked), false, &cli())
            .unwrap_err(),
        s.add_key(
            NewKey {
                public_key: line(&ed25519(9)),
                ..new_key(2, "alice", KeyStatus::Pending)
            },
            false,
            &cli(),
        )
        .unwrap_err(),
        refused(rule("alice", "smtp", 10026, "mail")),
        refused(rule("alice", "imap", 10025, "mail")),
        refused(rule("nobody", "imap", 10026, "mail")),
        refused(rule("alice", "imap", 0, "mail")),
        refused(rule("alice", "imap", 10026, "")),
        refused(rule("alice", "imap", 10026, "a b")),
        refused(rule("alice", "imap", 10026, "a\0b")),
        refused(rule("alice", "imap", 10026, &"a".repeat(254))),
        s.remove_rule("alice", "nope", &cli()).unwrap_err(),
        s.set_user_enabled("nobody", false, &cli()).unwrap_err(),
        s.add_user("bad name", &cli()).unwrap_err(),
        s.set_key_status("SHA256:none", KeyStatus::Approved, &cli())
            .unwrap_err(),
        s.add_token("t", "short", None, &cli()).unwrap_err(),
        s.request_disconnect(12345, &cli()).unwrap_err(),
    ];
    assert_eq!(errors.len(), 18);
    assert_eq!(s.revision().unwrap(), rev);
    assert_eq!(s.audit(&AuditQuery::default()).unwrap().len(), audit);
    assert_eq!(s.list_keys(None).unwrap().len(), 1);
    assert_eq!(s.list_rules(None).unwrap().len(), 1);
    assert_eq!(s.list_users().unwrap().len(), 2);
    let conflict = |i: usize| matches!(errors[i], RegistryError::Conflict(_));
    let not_found = |i: usize| matches!(errors[i], RegistryError::NotFound(_));
    let invalid = |i: usize| matches!(errors[i], RegistryError::Invalid { .. });
    assert!(conflict(0) && not_found(1) && invalid(2) && invalid(3));
    assert!(conflict(4) && conflict(5) && not_found(6));
    assert!((7..=11).all(invalid));
    assert!(not_found(12) && not_found(13) && invalid(14) && not_found(15));
    assert!(invalid(16) && not_found(17));
}

fn create_user_on_import(db: &Db) {
    let s = db.open();
    let (k, _) = s
        .add_key(new_key(3, "carol", KeyStatus::Approved), true, &cli())
        .unwrap();
    assert_eq!(k.status, KeyStatus::Approved);
    assert_eq!(k.approved_by.as_deref(), Some("cli:root"));
    assert!(s.get_user("carol").unwrap().unwrap().enabled);
    assert_eq!(s.allowed_keys().unwrap().len(), 1);
    assert_eq!(kinds(s.as_ref()), ["key.import", "user.add"]);
    let add = &s.audit(&AuditQuery::default()).unwrap()[1];
    assert_eq!(add.event.detail["via"], "key.import");
    assert_eq!(s.revision().unwrap(), 2);
}

fn tokens_are_found_by_hash_and_marked_used(db: &Db) {
    let s = db.open();
    let hash = "a".repeat(64);
    let t = s.add_token("ci", &hash, None, &cli()).unwrap();
    assert_eq!(t.last_used, None);
    assert!(matches!(
        s.add_token("ci", &"b".repeat(64), None, &cli()),
        Err(RegistryError::Conflict(_))
    ));
    assert!(s.use_token(&"c".repeat(64)).unwrap().is_none());
    let t = s.use_token(&hash).unwrap().unwrap();
    assert_eq!(t.name, "ci");
    assert!(t.last_used.is_some());
    let e = &s.audit(&AuditQuery::default()).unwrap()[0];
    assert_eq!(e.event.kind, "token.create");
    assert_eq!(e.event.detail["token"], "ci");
    // the hash is never in the audit log
    assert!(!e.event.detail.to_string().contains(&hash));
}

fn tokens_are_listed_revoked_and_expire(db: &Db) {
    let s = db.open();
    let (a, b, c) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
    s.add_token("zeta", &a, None, &cli()).unwrap();
    let later = now() + 3600;
    let t = s.add_token("alpha", &b, Some(later), &cli()).unwrap();
    assert_eq!(t.expires_at, Some(later));
    s.add_token("old", &c, Some(now() - 1), &cli()).unwrap();
    s.use_token(&a).unwrap().unwrap();
    let list = s.list_tokens().unwrap();
    let names: Vec<&str> = list.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["alpha", "old", "zeta"]);
    assert_eq!(list[0].expires_at, Some(later));
    assert!(list[0].last_used.is_none() && list[2].last_used.is_some());
    // expired: refused, never marked used
    assert!(s.use_token(&c).unwrap().is_none());
    assert!(s.use_token(&b).unwrap().is_some());
    // revoked: gone at once, for every handle
    let other = db.open();
    let rev = s.revision().unwrap();
    assert_eq!(other.revoke_token("zeta", &cli()).unwrap().name, "zeta");
    assert!(s.use_token(&a).unwrap().is_none());
    assert!(matches!(
        s.revoke_token("zeta", &cli()),
        Err(RegistryError::NotFound(_))
    ));
    assert_eq!(s.revision().unwrap(), rev + 1);
    assert_eq!(s.list_tokens().unwrap().len(), 2);
    let e = &s.audit(&AuditQuery::default()).unwrap()[0];
    assert_eq!(
        (e.event.kind.as_str(), e.event.actor.as_str()),
        ("token.revoke", "cli:root")
    );
    assert_eq!(e.event.detail["token"], "zeta");
    let created = &s.audit(&AuditQuery::default()).unwrap()[2];
    assert_eq!(created.event.detail["expires_at"], later);
    // the name can be used again
    s.add_token("zeta", &"d".repeat(64), None, &cli()).unwrap();
}

fn pending_keys_are_capped_per_account_known_or_not(db: &Db) {
    let s = db.open();
    s.add_user("alice", &cli()).unwrap();
    let web = Actor::Submitter("192.0.2.1:5000".into());
    for seed in 1..=5 {
        s.add_key(new_key(seed, "alice", KeyStatus::Pending), false, &web)
            .unwrap();
    }
    let sixth = new_key(6, "alice", KeyStatus::Pending);
    assert!(matches!(
        s.add_key(sixth.clone(), false, &web),
        Err(RegistryError::TooManyPending(_))
    ));
    // an admin's import is not capped; a resubmission is answered
    s.add_key(new_key(7, "alice", KeyStatus::Pending), false, &cli())
        .unwrap();
    let (_, created) = s
        .add_key(new_key(1, "alice", KeyStatus::Pending), false, &web)
        .unwrap();
    assert!(!created);
    assert_eq!(s.list_keys(Some(KeyStatus::Pending)).unwrap().len(), 6);

    // unknown names: remembered per (key, name), capped alike, audited
    let fp = |seed| fingerprint(&ed25519(seed));
    assert!(!s.unknown_submission(&fp(10), "alcie").unwrap());
    for seed in 10..15 {
        s.note_unknown_submission(&fp(seed), "alcie", &web).unwrap();
    }
    s.note_unknown_submission(&fp(10), "alcie", &web).unwrap();
    assert!(matches!(
        s.note_unknown_submission(&fp(15), "alcie", &web),
        Err(RegistryError::TooManyPending(_))
    ));
    s.note_unknown_submission(&fp(15), "bobby", &web).unwrap();
    assert!(s.unknown_submission(&fp(10), "alcie").unwrap());
    assert!(!s.unknown_submission(&fp(10), "bobby").unwrap());
    assert!(!s.unknown_submission(&fp(15), "alcie").unwrap());
    assert!(s.get_user("alcie").unwrap().is_none());
    let e = &s.audit(&AuditQuery::default()).unwrap()[0];
    assert_eq!(e.event.kind, "key.submit.unknown_user");
    assert_eq!(
        (e.event.user.as_deref(), e.event.source.as_deref()),
        (Some("bobby"), Some("192.0.2.1:5000"))
    );
    assert!(
        s.note_unknown_submission("nonsense", "alcie", &web)
            .is_err()
    );
}

fn old_audit_events_are_pruned_in_batches(db: &Db) {
    let s = db.open();
    for n in 0..12 {
        s.record(&gateway_event("login.refused", n)).unwrap();
    }
    let t = now();
    // nothing is older than an hour ago
    assert_eq!(s.prune_audit(t - 3600, 5).unwrap(), 0);
    assert_eq!(s.prune_audit(t + 10, 5).unwrap(), 5);
    assert_eq!(s.prune_audit(t + 10, 5).unwrap(), 5);
    let left = s.audit(&AuditQuery::default()).unwrap();
    assert_eq!(left.len(), 2);
    // the oldest went first
    let ns: Vec<_> = left.iter().map(|e| e.event.detail["n"].clone()).collect();
    assert_eq!(ns, [serde_json::json!(11), serde_json::json!(10)]);
    assert_eq!(s.prune_audit(t + 10, 5).unwrap(), 2);
    assert_eq!(s.prune_audit(t + 10, 5).unwrap(), 0);
}

fn a_second_handle_sees_every_change(db: &Db) {
    let a = db.open();
    let b = db.open();
    a.add_user("alice", &cli()).unwrap();
    assert!(b.get_user("alice").unwrap().is_some());
    b.add_user("bob", &cli()).unwrap();
    assert_eq!(a.revision().unwrap(), 2);
    let fp = b
        .add_key(new_key(4, "alice", KeyStatus::Approved), false, &cli())
        .unwrap()
        .0
        .fingerprint;
    assert_eq!(a.allowed_keys().unwrap(), vec![(fp, "alice".into())]);
    drop((a, b));
    let c = db.open();
    assert_eq!(c.list_users().unwrap().len(), 2);
    assert_eq!(c.revision().unwrap(), 3);
}

fn many_threads_share_one_store(db: &Db) {
    let s = db.open();
    let other = db.open();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let s = if i % 2 == 0 { s.clone() } else { other.clone() };
            std::thread::spawn(move || {
                for j in 0..10 {
                    s.add_user(&format!("u{i}-{j}"), &cli()).unwrap();
                    s.revision().unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(s.list_users().unwrap().len(), 80);
    assert_eq!(s.revision().unwrap(), 80);
    assert_eq!(s.audit(&AuditQuery::default()).unwrap().len(), 80);
}

fn lists_sort_by_bytes_not_by_locale(db: &Db) {
    let s = db.open();
    for name in ["bob", "Zed", "alice", "Adam"] {
        s.add_user(name, &cli()).unwrap();
    }
    let names: Vec<String> = s
        .list_users()
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["Adam", "Zed", "alice", "bob"]);
    s.add_rule(rule("bob", "b", 2000, "h"), &cli()).unwrap();
    s.add_rule(rule("Zed", "z", 3000, "h"), &cli()).unwrap();
    s.add_rule(rule("bob", "a", 1000, "h"), &cli()).unwrap();
    let rules: Vec<(String, u16)> = s
        .list_rules(None)
        .unwrap()
        .into_iter()
        .map(|r| (r.user, r.local_port))
        .collect();
    assert_eq!(
        rules,
        [
            ("Zed".into(), 3000),
            ("bob".into(), 1000),
            ("bob".into(), 2000)
        ]
    );
}

fn audit_filters_and_pages(db: &Db) {
    let s = db.open();
    s.add_user("alice", &cli()).unwrap();
    s.add_user("bob", &cli()).unwrap();
    s.record(&AuditEvent {
        kind: "login.refused".into(),
        actor: "gateway:gw1".into(),
        user: Some("mallory".into()),
        fingerprint: Some("SHA256:x".into()),
        source: Some("192.0.2.1:4000".into()),
        detail: serde_json::json!({ "reason": "unknown_key", "n": 3 }),
    })
    .unwrap();
    assert!(matches!(
        s.record(&AuditEvent {
            kind: String::new(),
            actor: "x".into(),
            user: None,
            fingerprint: None,
            source: None,
            detail: serde_json::Value::Null,
        }),
        Err(RegistryError::Invalid { .. })
    ));
    // gateway events do not bump the revision
    assert_eq!(s.revision().unwrap(), 2);
    let all = s.audit(&AuditQuery::default()).unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    let login = s.audit_of("login");
    assert_eq!(login.len(), 1);
    assert_eq!(login[0].event.detail["reason"], "unknown_key");
    assert_eq!(login[0].event.detail["n"], 3);
    assert_eq!(login[0].event.source.as_deref(), Some("192.0.2.1:4000"));
    let bob = s.audit_about("bob");
    assert_eq!(bob.len(), 1);
    assert_eq!(bob[0].event.kind, "user.add");
    let page = s
        .audit(&AuditQuery {
            limit: 2,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.len(), 2);
    let next = s
        .audit(&AuditQuery {
            limit: 2,
            before_id: Some(page[1].id),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].event.user.as_deref(), Some("alice"));
    // no wildcard meaning in the prefix
    assert!(s.audit_of("%").is_empty());
}

fn last_seen_never_moves_backwards(db: &Db) {
    let a = db.open();
    let b = db.open();
    let fp = a
        .add_key(new_key(5, "dave", KeyStatus::Approved), true, &cli())
        .unwrap()
        .0
        .fingerprint;
    assert_eq!(a.get_key(&fp).unwrap().unwrap().last_seen, None);
    seen(&a, &fp, 2000);
    // another gateway, a second late (or with a clock behind)
    seen(&b, &fp, 1990);
    assert_eq!(b.get_key(&fp).unwrap().unwrap().last_seen, Some(2000));
    seen(&b, &fp, 2010);
    assert_eq!(a.get_key(&fp).unwrap().unwrap().last_seen, Some(2010));
    assert_eq!(a.revision().unwrap(), 2, "logins are not admin changes");
}

/// A login of key `fingerprint` at `at`, as the gateway records it.
fn seen(s: &Store, fingerprint: &str, at: Timestamp) {
    s.record_background(&BackgroundWrites {
        last_seen: vec![(fingerprint.to_owned(), at)],
        ..BackgroundWrites::default()
    })
    .unwrap();
}

fn gateway_event(kind: &str, n: u32) -> AuditEvent {
    AuditEvent {
        kind: kind.into(),
        actor: "gateway:gw1".into(),
        user: Some("erin".into()),
        fingerprint: None,
        source: Some("192.0.2.7:5000".into()),
        detail: serde_json::json!({ "n": n }),
    }
}

fn background_writes_are_one_all_or_nothing_group(db: &Db) {
    let s = db.open();
    let fp = s
        .add_key(new_key(6, "erin", KeyStatus::Approved), true, &cli())
        .unwrap()
        .0
        .fingerprint;
    let count = |s: &Store| {
        s.audit(&AuditQuery {
            limit: 1000,
            ..AuditQuery::default()
        })
        .unwrap()
        .len()
    };
    let before = count(&s);
    let revision = s.revision().unwrap();
    // 300 events, in order, and logins of a known and a removed key.
    let group = BackgroundWrites {
        events: (0..300)
            .map(|n| gateway_event("session.start", n))
            .collect(),
        last_seen: vec![
            (fp.clone(), 3000),
            ("SHA256:no-such-key".into(), 3000),
            (fp.clone(), 2990),
        ],
        ..BackgroundWrites::default()
    };
    s.record_background(&group).unwrap();
    let all = s
        .audit(&AuditQuery {
            kind_prefix: Some("session.start".into()),
            limit: 1000,
            ..AuditQuery::default()
        })
        .unwrap();
    let order: Vec<u64> = all
        .iter()
        .rev()
        .map(|e| e.event.detail["n"].as_u64().unwrap())
        .collect();
    assert_eq!(
        order,
        (0..300).collect::<Vec<u64>>(),
        "all events, in order"
    );
    assert_eq!(s.get_key(&fp).unwrap().unwrap().last_seen, Some(3000));
    assert_eq!(s.revision().unwrap(), revision, "not an admin change");
    // One invalid event: nothing of the group is stored.
    let mut bad = BackgroundWrites {
        events: vec![gateway_event("session.end", 1), gateway_event("", 2)],
        last_seen: vec![(fp.clone(), 4000)],
        ..BackgroundWrites::default()
    };
    assert!(matches!(
        s.record_background(&bad),
        Err(RegistryError::Invalid { .. })
    ));
    assert_eq!(count(&s), before + 300);
    assert_eq!(s.get_key(&fp).unwrap().unwrap().last_seen, Some(3000));
    bad.events.pop();
    s.record_background(&bad).unwrap();
    assert_eq!(s.get_key(&fp).unwrap().unwrap().last_seen, Some(4000));
}

/// The gateway's live-session rows go with its grouped background writes:
/// the ids come back in order, the sessions are listed at once, ends are
/// recorded, and an invalid row fails the whole group.
fn background_writes_open_and_close_live_sessions(db: &Db) {
    let gw = db.open();
    let admin = db.open();
    let opened: Vec<NewSession> = (1..=3)
        .map(|n| new_session("gw1:10022", "alice", n))
        .collect();
    let ids = gw
        .record_background(&BackgroundWrites {
            events: vec![gateway_event("session.start", 1)],
            opened: opened.clone(),
            ..BackgroundWrites::default()
        })
        .unwrap();
    assert_eq!(ids.len(), 3);
    let live = admin.list_live_sessions().unwrap();
    for (id, new) in ids.iter().zip(&opened) {
        let row = live.iter().find(|s| s.id == *id).expect("listed");
        assert_eq!(row.fingerprint, new.fingerprint, "ids in the order given");
    }
    // Close one, open another, in one group.
    let end = SessionProgress {
        id: ids[0],
        bytes_up: 70,
        bytes_down: 80,
    };
    let t = now();
    let more = gw
        .record_background(&BackgroundWrites {
            opened: vec![new_session("gw1:10022", "bob", 4)],
            closed: vec![(end, t, "closed".into())],
            ..BackgroundWrites::default()
        })
        .unwrap();
    assert_eq!(more.len(), 1);
    let s = admin.get_session(ids[0]).unwrap().unwrap();
    assert_eq!((s.bytes_up, s.bytes_down), (70, 80));
    assert_eq!(
        (s.ended_at, s.end_reason.as_deref()),
        (Some(t), Some("closed"))
    );
    let mut listed: Vec<i64> = admin
        .list_live_sessions()
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, [ids[1], ids[2], more[0]]);
    // An invalid row: nothing of the group is written.
    let bad = BackgroundWrites {
        opened: vec![NewSession {
            gateway: String::new(),
            ..new_session("x", "alice", 5)
        }],
        closed: vec![(SessionProgress { id: ids[1], ..end }, t, "closed".into())],
        ..BackgroundWrites::default()
    };
    assert!(matches!(
        gw.record_background(&bad),
        Err(RegistryError::Invalid { .. })
    ));
    assert_eq!(admin.get_session(ids[1]).unwrap().unwrap().ended_at, None);
    assert_eq!(admin.list_live_sessions().unwrap().len(), 3);
}

fn new_session(gateway: &str, user: &str, seed: u8) -> NewSession {
    NewSession {
        gateway: gateway.into(),
        user: user.into(),
        fingerprint: fingerprint(&ed25519(seed)),
        source: "198.51.100.7:50000".into(),
        started_at: now(),
    }
}

fn sessions_are_listed_counted_and_closed(db: &Db) {
    let gw1 = db.open();
    let gw2 = db.open();
    let admin = db.open();
    let rev = admin.revision().unwrap();
    let a = gw1
        .session_open(&new_session("gw1:10022", "alice", 1))
        .unwrap();
    let b = gw2
        .session_open(&new_session("gw2:10022", "bob", 2))
        .unwrap();
    assert_ne!(a, b);
    assert!(
        gw1.session_open(&NewSession {
            gateway: String::new(),
            ..new_session("x", "alice", 1)
        })
        .is_err()
    );
    assert!(
        gw1.session_open(&NewSession {
            source: "a\nb".into(),
            ..new_session("x", "alice", 1)
        })
        .is_err()
    );
    let live = admin.list_live_sessions().unwrap();
    assert_eq!(
        live.iter()
            .map(|s| (s.id, s.gateway.as_str(), s.user.as_str()))
            .collect::<Vec<_>>(),
        [(a, "gw1:10022", "alice"), (b, "gw2:10022", "bob")]
    );
    assert_eq!(live[0].fingerprint, fingerprint(&ed25519(1)));
    assert_eq!(live[0].source, "198.51.100.7:50000");
    assert_eq!((live[0].bytes_up, live[0].bytes_down), (0, 0));

    let t = now();
    gw1.session_progress(
        t,
        &[
            SessionProgress {
                id: a,
                bytes_up: 1000,
                bytes_down: u64::MAX,
            },
            SessionProgress {
                id: 999_999,
                bytes_up: 1,
                bytes_down: 1,
            },
        ],
    )
    .unwrap();
    gw1.session_progress(t, &[]).unwrap();
    let s = admin.get_session(a).unwrap().unwrap();
    assert_eq!(s.bytes_up, 1000);
    assert_eq!(s.bytes_down, i64::MAX as u64);
    assert_eq!(s.heartbeat_at, t);

    gw1.session_close(
        SessionProgress {
            id: a,
            bytes_up: 1500,
            bytes_down: 20,
        },
        t + 1,
        "closed",
    )
    .unwrap();
    // closing again or reporting progress after the end changes nothing
    gw1.session_close(
        SessionProgress {
            id: a,
            bytes_up: 1,
            bytes_down: 1,
        },
        t + 5,
        "again",
    )
    .unwrap();
    gw1.session_progress(
        t + 6,
        &[SessionProgress {
            id: a,
            bytes_up: 2,
            bytes_down: 2,
        }],
    )
    .unwrap();
    let s = admin.get_session(a).unwrap().unwrap();
    assert_eq!((s.bytes_up, s.bytes_down), (1500, 20));
    assert_eq!(s.ended_at, Some(t + 1));
    assert_eq!(s.end_reason.as_deref(), Some("closed"));
    let live = live_ids(admin.as_ref());
    assert_eq!(live, [b]);
    assert!(admin.get_session(424_242).unwrap().is_none());
    // session bookkeeping is not an admin change
    assert_eq!(admin.revision().unwrap(), rev);
    assert!(admin.audit(&AuditQuery::default()).unwrap().is_empty());
}

fn stale_sessions_are_hidden_and_ended_at_gateway_restart(db: &Db) {
    let s = db.open();
    let old = s.session_open(&new_session("gw1", "alice", 1)).unwrap();
    let fresh = s.session_open(&new_session("gw1", "alice", 1)).unwrap();
    let other = s.session_open(&new_session("gw2", "bob", 2)).unwrap();
    // gw1 stopped reporting `old` long ago (e.g. it crashed mid-session)
    s.session_progress(
        now() - SESSION_STALE_SECS - 5,
        &[SessionProgress {
            id: old,
            ..Default::default()
        }],
    )
    .unwrap();
    let live = live_ids(s.as_ref());
    assert_eq!(live, [fresh, other]);
    assert!(matches!(
        s.request_disconnect(old, &cli()),
        Err(RegistryError::NotFound(_))
    ));

    // gw1 restarts: whatever it had open is over
    let t = now();
    assert_eq!(
        s.end_gateway_sessions("gw1", t, "gateway_restart").unwrap(),
        2
    );
    assert_eq!(
        s.end_gateway_sessions("gw1", t, "gateway_restart").unwrap(),
        0
    );
    for id in [old, fresh] {
        let r = s.get_session(id).unwrap().unwrap();
        assert_eq!(r.ended_at, Some(t));
        assert_eq!(r.end_reason.as_deref(), Some("gateway_restart"));
    }
    let live = live_ids(s.as_ref());
    assert_eq!(live, [other]);
    // sessions that ended long ago are pruned at a restart
    s.end_gateway_sessions("gw9", t + pra_registry::store::SESSION_KEEP_SECS + 10, "x")
        .unwrap();
    assert!(s.get_session(old).unwrap().is_none());
    assert!(s.get_session(other).unwrap().is_some());
}

fn disconnect_requests_are_audited_and_reach_their_gateway(db: &Db) {
    let gw1 = db.open();
    let admin = db.open();
    let id = gw1.session_open(&new_session("gw1", "alice", 1)).unwrap();
    let other = gw1.session_open(&new_session("gw2", "alice", 1)).unwrap();
    assert!(gw1.disconnect_requests("gw1").unwrap().is_empty());
    let rev = admin.revision().unwrap();
    let token = Actor::Token("helpdesk".into());
    let r = admin.request_disconnect(id, &token).unwrap();
    assert_eq!(r.disconnect_requested_by.as_deref(), Some("token:helpdesk"));
    assert!(r.disconnect_requested_at.is_some());
    assert_eq!(r.ended_at, None);
    assert_eq!(admin.revision().unwrap(), rev + 1);
    // asking twice is one request
    admin.request_disconnect(id, &cli()).unwrap();
    assert_eq!(admin.revision().unwrap(), rev + 1);
    assert_eq!(gw1.disconnect_requests("gw1").unwrap(), [id]);
    assert!(gw1.disconnect_requests("gw2").unwrap().is_empty());
    let e = admin.audit(&AuditQuery::default()).unwrap();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].event.kind, "session.disconnect");
    assert_eq!(e[0].event.actor, "token:helpdesk");
    assert_eq!(e[0].event.user.as_deref(), Some("alice"));
    assert_eq!(e[0].event.source.as_deref(), Some("198.51.100.7:50000"));
    assert_eq!(e[0].event.detail["session"], id);
    assert_eq!(e[0].event.detail["gateway"], "gw1");
    // once the gateway ended it, it is no longer asked for, nor can be
    gw1.session_close(
        SessionProgress {
            id,
            ..Default::default()
        },
        now(),
        "disconnected",
    )
    .unwrap();
    assert!(gw1.disconnect_requests("gw1").unwrap().is_empty());
    assert!(matches!(
        admin.request_disconnect(id, &cli()),
        Err(RegistryError::NotFound(_))
    ));
    assert!(
        admin
            .get_session(other)
            .unwrap()
            .unwrap()
            .disconnect_requested_at
            .is_none()
    );
}

/// Wait (bounded) until the feed shows at least `revision`; how long it took.
fn wait_feed(rx: &mut tokio::sync::watch::Receiver<Change>, revision: i64) -> Duration {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(5),
            rx.wait_for(|c| c.revision >= revision),
        )
        .await
        .expect("the feed shows the change within 5 s")
        .unwrap();
    });
    started.elapsed()
}

fn subscribers_hear_changes_from_another_handle(db: &Db) {
    let gateway = db.open();
    let admin = db.open();
    let mut rx = gateway.subscribe();
    let mut rx2 = gateway.subscribe();
    admin.add_user("alice", &cli()).unwrap();
    wait_feed(&mut rx, 1);
    let c = rx.borrow().clone();
    assert!(c.confirmed.is_some() && c.error.is_none(), "{c:?}");
    let mut worst = Duration::ZERO;
    for i in 0..5 {
        admin.add_user(&format!("u{i}"), &cli()).unwrap();
        worst = worst.max(wait_feed(&mut rx, 2 + i));
    }
    wait_feed(&mut rx2, 6);
    eprintln!("feed latency (worst of 5 changes from another handle): {worst:?}");
    // refused changes and gateway bookkeeping do not move it
    assert!(admin.add_user("alice", &cli()).is_err());
    assert_eq!(gateway.revision().unwrap(), 6);
    assert_eq!(rx.borrow().revision, 6);
}

// --- SQLite only ----------------------------------------------------------------

/// Opening `dir` is refused naming `word`, and the file keeps `contents`.
fn refused_untouched(dir: &Path, contents: Option<&[u8]>, word: &str) {
    let err = Store::sqlite(dir).unwrap_err().to_string();
    assert!(err.contains(word), "{err}");
    assert!(err.contains("left untouched"), "{err}");
    if let Some(c) = contents {
        assert_eq!(std::fs::read(dir.join(sqlite::DB_FILE)).unwrap(), c);
    }
}

#[test]
fn sqlite_refuses_unusable_files_and_leaves_them_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(sqlite::DB_FILE);

    std::fs::write(&path, b"").unwrap();
    refused_untouched(dir.path(), Some(b""), "empty");

    let garbage = b"this is not a database at all, just some text that is long enough".repeat(100);
    std::fs::write(&path, &garbage).unwrap();
    refused_untouched(dir.path(), Some(&garbage), "not a usable SQLite database");

    std::fs::remove_file(&path).unwrap();
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE photos (id INTEGER); INSERT INTO photos VALUES (1);")
            .unwrap();
    }
    let foreign = std::fs::read(&path).unwrap();
    refused_untouched(dir.path(), Some(&foreign), "not a PRA registry");

    std::fs::remove_file(&path).unwrap();
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA application_id = 1234;").unwrap();
    }
    refused_untouched(dir.path(), None, "another program");

    std::fs::remove_file(&path).unwrap();
    {
        drop(Store::sqlite(dir.path()).unwrap());
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA user_version = 99;").unwrap();
    }
    refused_untouched(dir.path(), None, "newer pra-registry");

    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    refused_untouched(dir.path(), None, "not a regular file");
}

#[test]
fn sqlite_refuses_a_damaged_database() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Store::sqlite(dir.path()).unwrap();
        for i in 0..300 {
            s.add_user(&format!("user{i:03}"), &cli()).unwrap();
        }
    }
    let path = dir.path().join(sqlite::DB_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(
        bytes.len() > 4 * 4096,
        "database too small to damage: {}",
        bytes.len()
    );
    let page = 4096;
    for b in &mut bytes[page + 100..3 * page] {
        *b = 0xa5;
    }
    std::fs::write(&path, &bytes).unwrap();
    refused_untouched(dir.path(), Some(&bytes), "");
}

// --- PostgreSQL only ------------------------------------------------------------

/// Gateways starting together on a fresh database: one migrates, all work.
#[test]
fn postgres_concurrent_first_opens_migrate_once() {
    let Some((pg, url)) = pg::fresh() else {
        return;
    };
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || Store::postgres(&url).map(|_| ()))
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
    let db = url.rsplit_once('/').unwrap().1.split('?').next().unwrap();
    assert_eq!(
        pg.psql(db, "SELECT value FROM meta WHERE key = 'schema_version'"),
        sqlite::SCHEMA_VERSION.to_string()
    );
    assert_eq!(
        pg.psql(db, "SELECT value FROM meta WHERE key = 'revision'"),
        "0"
    );
}

/// Another program's database, or a newer schema: refused, left untouched.
#[test]
fn postgres_refuses_foreign_and_newer_databases_and_leaves_them_alone() {
    if pg::skipped() {
        return;
    }
    let pg = pg::Postgres::shared();
    let db_of = |url: &str| {
        url.rsplit_once('/')
            .unwrap()
            .1
            .split('?')
            .next()
            .unwrap()
            .to_owned()
    };
    let foreign = pg.fresh_db();
    pg.psql(
        &db_of(&foreign),
        "CREATE TABLE photos (id int); INSERT INTO photos VALUES (1)",
    );
    let e = Store::postgres(&foreign).unwrap_err().to_string();
    assert!(e.contains("holds 1 table(s) but no PRA registry"), "{e}");
    assert!(e.contains("left untouched"), "{e}");
    assert!(!e.contains(pg::PASSWORD), "{e}");
    assert_eq!(
        pg.psql(
            &db_of(&foreign),
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "1"
    );

    let other = pg.fresh_db();
    pg.psql(&db_of(&other), "CREATE TABLE meta (key text primary key, value bigint); INSERT INTO meta VALUES ('application_id', 42)");
    let e = Store::postgres(&other).unwrap_err().to_string();
    assert!(e.contains("another program's database"), "{e}");

    let newer = pg.fresh_db();
    Store::postgres(&newer)
        .unwrap()
        .add_user("alice", &cli())
        .unwrap();
    pg.psql(
        &db_of(&newer),
        "UPDATE meta SET value = 99 WHERE key = 'schema_version'",
    );
    let e = Store::postgres(&newer).unwrap_err().to_string();
    assert!(e.contains("newer pra-registry (schema 99"), "{e}");
    assert_eq!(pg.psql(&db_of(&newer), "SELECT count(*) FROM users"), "1");
}

/// The feed follows committed changes (the notification carries the
/// committed revision) and never runs ahead of the database.
#[test]
fn postgres_feed_follows_committed_changes() {
    let Some((_, url)) = pg::fresh() else {
        return;
    };
    let s = Store::postgres(&url).unwrap();
    let mut rx = s.subscribe();
    wait_feed(&mut rx, 0);
    s.add_user("alice", &cli()).unwrap();
    wait_feed(&mut rx, 1);
    assert!(s.add_user("alice", &cli()).is_err());
    assert!(s.set_user_enabled("nobody", false, &cli()).is_err());
    assert!(rx.borrow().revision <= s.revision().unwrap());
    s.add_user("bob", &cli()).unwrap();
    wait_feed(&mut rx, 2);
    assert_eq!(rx.borrow().revision, 2);
    assert_eq!(s.revision().unwrap(), 2);
}

fn new_invite(id: &str, user: &str, expires_at: Timestamp) -> NewInvite {
    NewInvite {
        id: id.into(),
        user: user.into(),
        secret_hash: format!("{:0>64}", id),
        gateways: vec!["vpn.example.com:10022".into(), "10.0.0.2:10022".into()],
        approve: id.ends_with('1'),
        expires_at,
    }
}

fn invites_are_created_listed_and_revoked_with_audit(db: &Db) {
    let s = db.open();
    let later = now() + 3600;
    // only for an existing account; a refusal stores nothing
    assert!(matches!(
        s.add_invite(&new_invite("a1", "alice", later), &cli()),
        Err(RegistryError::NotFound(_))
    ));
    assert!(s.list_invites().unwrap().is_empty());
    s.add_user("alice", &cli()).unwrap();
    let rev = s.revision().unwrap();
    let a = s
        .add_invite(&new_invite("a1", "alice", later), &cli())
        .unwrap();
    assert_eq!(
        (
            a.user.as_str(),
            a.approve,
            a.expires_at,
            a.created_by.as_str()
        ),
        ("alice", true, later, "cli:root")
    );
    assert_eq!(a.gateways.len(), 2);
    assert_eq!(a.state(now()), "outstanding");
    assert!(s.revision().unwrap() > rev);
    assert!(matches!(
        s.add_invite(&new_invite("a1", "alice", later), &cli()),
        Err(RegistryError::Conflict(_))
    ));
    let mut bad = new_invite("b2", "alice", later);
    bad.secret_hash = "nothex".into();
    assert!(matches!(
        s.add_invite(&bad, &cli()),
        Err(RegistryError::Invalid { .. })
    ));
    s.add_invite(&new_invite("b2", "alice", now() - 1), &cli())
        .unwrap();
    let list = db.open().list_invites().unwrap();
    assert_eq!(list.len(), 2);
    let b = list.iter().find(|i| i.id == "b2").unwrap();
    assert_eq!((b.approve, b.state(now())), (false, "expired"));

    let e = &s.audit(&AuditQuery::default()).unwrap()[0];
    assert_eq!(
        (e.event.kind.as_str(), e.event.user.as_deref()),
        ("invite.create", Some("alice"))
    );
    assert_eq!(e.event.detail["invite"], "b2");
    assert!(
        !e.event.detail.to_string().contains(&"0".repeat(40)),
        "no hash in the audit"
    );

    let r = s.revoke_invite("a1", &cli()).unwrap();
    assert!(r.revoked_at.is_some());
    assert_eq!(
        s.list_invites()
            .unwrap()
            .iter()
            .find(|i| i.id == "a1")
            .unwrap()
            .state(now()),
        "revoked"
    );
    assert!(matches!(
        s.revoke_invite("a1", &cli()),
        Err(RegistryError::Conflict(_))
    ));
    assert!(matches!(
        s.revoke_invite("zz9", &cli()),
        Err(RegistryError::NotFound(_))
    ));
    let e = &s.audit(&AuditQuery::default()).unwrap()[0];
    assert_eq!(e.event.kind, "invite.revoke");
    assert_eq!(e.event.detail["invite"], "a1");
}

fn an_invite_enrolls_one_key_once_and_refusals_store_nothing(db: &Db) {
    let s = db.open();
    s.add_user("alice", &cli()).unwrap();
    let later = now() + 3600;
    let gw = Actor::Gateway("gw1".into());
    // "a1": approve; "b2": pending; "c3": revoked; "d4": expired
    for (id, exp) in [
        ("a1", later),
        ("b2", later),
        ("c3", later),
        ("d4", now() - 1),
    ] {
        s.add_invite(&new_invite(id, "alice", exp), &cli()).unwrap();
    }
    s.revoke_invite("c3", &cli()).unwrap();
    let hash = |id: &str| format!("{:0>64}", id);
    let keys = |s: &Store| s.list_keys(None).unwrap().len();

    for (id, secret, want) in [
        ("a1", hash("b2"), InviteRefusal::Unknown),
        ("zz", hash("zz"), InviteRefusal::Unknown),
        ("bad id!", hash("a1"), InviteRefusal::Unknown),
        ("c3", hash("c3"), InviteRefusal::Revoked),
        ("d4", hash("d4"), InviteRefusal::Expired),
    ] {
        let got = s
            .redeem_invite(id, &secret, new_key(1, "alice", KeyStatus::Pending), &gw)
            .unwrap();
        assert_eq!(got, Err(want), "{id}");
    }
    assert_eq!(keys(&s), 0);

    // the invite's user and approval count, not what the key claims
    let k = s
        .redeem_invite(
            "a1",
            &hash("a1"),
            new_key(1, "mallory", KeyStatus::Pending),
            &gw,
        )
        .unwrap()
        .unwrap();
    assert_eq!((k.user.as_str(), k.status), ("alice", KeyStatus::Approved));
    let a1 = s
        .list_invites()
        .unwrap()
        .into_iter()
        .find(|i| i.id == "a1")
        .unwrap();
    assert_eq!(a1.used_fingerprint.as_deref(), Some(k.fingerprint.as_str()));
    assert_eq!(a1.state(now()), "used");
    let e = &s.audit(&AuditQuery::default()).unwrap()[0];
    assert_eq!(
        (e.event.kind.as_str(), e.event.actor.as_str()),
        ("key.enroll", "gateway:gw1")
    );
    // once only
    assert_eq!(
        s.redeem_invite(
            "a1",
            &hash("a1"),
            new_key(2, "alice", KeyStatus::Pending),
            &gw
        )
        .unwrap(),
        Err(InviteRefusal::Used)
    );
    // a key registered already: refused, the invite stays usable
    assert!(matches!(
        s.redeem_invite(
            "b2",
            &hash("b2"),
            new_key(1, "alice", KeyStatus::Pending),
            &gw
        ),
        Err(RegistryError::Conflict(_))
    ));
    assert_eq!(keys(&s), 1);
    let k2 = db
        .open()
        .redeem_invite(
            "b2",
            &hash("b2"),
            new_key(2, "alice", KeyStatus::Approved),
            &gw,
        )
        .unwrap()
        .unwrap();
    assert_eq!(k2.status, KeyStatus::Pending);
    assert_eq!(keys(&s), 2);
}
