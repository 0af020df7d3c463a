//! Key hand-over with an invite on the gateway's SSH port: user
//! `pra-enroll`, password `ID:SECRET`, one `exec pra-enroll JSON`. The
//! connection does nothing else; refusals store nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::gateway::*;
use crate::common::{device, random_ed25519};
use pra_proto::api::KeyStatus;
use pra_proto::enroll::{ENROLL_COMMAND, ENROLL_USER, EnrollRefusal, EnrollReply, EnrollRequest};
use pra_proto::invite::InviteSecret;
use pra_proto::proof::{self, Action};
use pra_registry::model::{NewInvite, now};
use ssh_key::PrivateKey;

fn invite(gw: &Gateway, id: &str, user: &str, approve: bool) -> InviteSecret {
    let secret = InviteSecret::new(format!("secret-of-{id}-0123456789"));
    gw.store
        .add_invite(
            &NewInvite {
                id: id.into(),
                user: user.into(),
                secret_hash: secret.hash(),
                gateways: vec![gw.addr.to_string()],
                approve,
                expires_at: now() + 600,
            },
            &admin(),
        )
        .unwrap();
    secret
}

fn request(key: &PrivateKey, user: &str) -> String {
    let time = now() as u64;
    let req = EnrollRequest {
        public_key: key.public_key().to_openssh().unwrap(),
        device: device(),
        proof: proof::sign(key, Action::Submit, user, time).unwrap(),
    };
    format!("{ENROLL_COMMAND} {}", serde_json::to_string(&req).unwrap())
}

/// Log in as `pra-enroll`: the connection when the password was accepted.
async fn enroll_login(gw: &Gateway, password: &str) -> Client {
    let mut c = connect(gw).await;
    let ok = c
        .authenticate_password(ENROLL_USER, password)
        .await
        .unwrap()
        .success();
    assert!(
        ok,
        "enrollment login accepted (the secret is checked with the key)"
    );
    c
}

/// Whether `reply` is an enrollment that left the key `status`.
pub(crate) fn enrolled(reply: Option<&EnrollReply>, status: KeyStatus) -> bool {
    matches!(reply, Some(EnrollReply::Enrolled { status: s, .. }) if *s == status)
}

/// Enroll `key`: the reply, or `None` when the connection was closed
/// without one (wrong id or secret). Also used by `web_invites`.
pub(crate) async fn enroll(
    gw: &Gateway,
    id: &str,
    secret: &str,
    key: &PrivateKey,
    user: &str,
) -> Option<EnrollReply> {
    let c = enroll_login(gw, &format!("{id}:{secret}")).await;
    ask(&c, key, user, std::time::Duration::from_secs(20)).await
}

/// Send the enrollment request for `key` on a new channel: the reply, or
/// `None` when the channel closed without one.
async fn ask(
    c: &Client,
    key: &PrivateKey,
    user: &str,
    within: std::time::Duration,
) -> Option<EnrollReply> {
    let mut ch = c.channel_open_session().await.unwrap();
    ch.exec(true, request(key, user)).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(within, async {
        while let Some(msg) = ch.wait().await {
            match msg {
                russh::ChannelMsg::Data { data } => out.extend_from_slice(&data),
                russh::ChannelMsg::Close | russh::ChannelMsg::Failure => break,
                _ => {}
            }
        }
    })
    .await
    .expect("answer or close within bound");
    (!out.is_empty()).then(|| serde_json::from_slice(&out).unwrap())
}

/// The reply refusing an enrollment for `reason`.
fn refused(reason: EnrollRefusal) -> EnrollReply {
    EnrollReply::Refused { reason }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_enrolls_a_key_once_and_refusals_store_nothing() {
    let gw = Gateway::start().await;
    gw.add_user("alice");
    gw.add_rule("alice", "web", 18080, "127.0.0.1", 9);
    let approve = invite(&gw, "a1", "alice", true);
    let pending = invite(&gw, "b2", "alice", false);
    let key = random_ed25519();

    // approved at once: the key logs in and gets its rules
    let reply = enroll(&gw, "a1", approve.expose(), &key, "alice")
        .await
        .unwrap();
    let fp = pra_proto::fingerprint(key.public_key());
    assert_eq!(
        reply,
        EnrollReply::Enrolled {
            fingerprint: fp.clone(),
            user: "alice".into(),
            status: KeyStatus::Approved
        }
    );
    let c = login(&gw, "alice", &key).await;
    let (out, status, _) = exec(&c, pra_proto::RULES_COMMAND).await;
    assert_eq!(status, Some(0));
    assert!(String::from_utf8_lossy(&out).contains("\"web\""));
    assert_eq!(gw.audit("key.enroll").len(), 1);

    // once only
    let other = random_ed25519();
    let reply = enroll(&gw, "a1", approve.expose(), &other, "alice").await;
    assert_eq!(reply, Some(refused(EnrollRefusal::Used)));
    // revoked
    gw.store.revoke_invite("b2", &admin()).unwrap();
    let reply = enroll(&gw, "b2", pending.expose(), &other, "alice").await;
    assert_eq!(reply, Some(refused(EnrollRefusal::Revoked)));
    // a wrong secret: closed without an answer, audited
    assert_eq!(enroll(&gw, "a1", "guess", &other, "alice").await, None);
    gw.wait_audit("login.refused", |e| {
        e.event.detail["reason"] == "enroll_refused"
    })
    .await;
    // a proof for another user: invalid
    let c3 = invite(&gw, "c3", "alice", false);
    let reply = enroll(&gw, "c3", c3.expose(), &other, "bob").await.unwrap();
    assert_eq!(
        reply,
        EnrollReply::Refused {
            reason: EnrollRefusal::Invalid
        }
    );
    assert_eq!(gw.store.list_keys(None).unwrap().len(), 1);
    // pending
    let reply = enroll(&gw, "c3", c3.expose(), &other, "alice")
        .await
        .unwrap();
    assert!(enrolled(Some(&reply), KeyStatus::Pending), "{reply:?}");

    // nothing else on an enrollment connection: no forwards, no rules
    let d4 = invite(&gw, "d4", "alice", true);
    let c = enroll_login(&gw, &format!("d4:{}", d4.expose())).await;
    assert!(
        c.channel_open_direct_tcpip("127.0.0.1", 9, "127.0.0.1", 1)
            .await
            .is_err()
    );
    let (_, _, failed) = exec(&c, pra_proto::RULES_COMMAND).await;
    assert!(failed, "pra-rules refused on an enrollment connection");
    gw.stop().await;
}

/// One enrollment from the loopback address `source`: how long the password
/// step took (the source's penalty is waited out there) and the reply
/// (`None`: closed without one, as for a wrong id or secret).
async fn enroll_from(
    gw: &Gateway,
    source: std::net::IpAddr,
    password: &str,
    key: &PrivateKey,
    user: &str,
) -> (std::time::Duration, Option<EnrollReply>) {
    let mut c = connect_from(gw, source).await;
    let started = std::time::Instant::now();
    let ok = tokio::time::timeout(
        crate::common::BOUND,
        c.authenticate_password(ENROLL_USER, password),
    )
    .await
    .expect("password step within bound")
    .unwrap()
    .success();
    let waited = started.elapsed();
    assert!(
        ok,
        "enrollment login accepted (the secret is checked later)"
    );
    (waited, ask(&c, key, user, crate::common::BOUND).await)
}

/// A flood of wrong invite secrets (issue 17): each is refused as a wrong
/// password is (closed without an answer) and stores nothing; the source's
/// failed logins grow its penalty as for refused keys (the same
/// [`PenaltyPolicy`] schedule, waited out before the password is
/// accepted), the refusals are aggregated in the audit log (as for refused
/// keys: `login.refused`, reason `enroll_refused`), and afterwards
/// the right secret still enrolls: from the flooded address after the
/// capped penalty (slowed, never locked out), from another address at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_wrong_secrets_is_refused_slowed_and_stores_nothing() {
    use pra_registry::gateway::limits::PenaltyPolicy;
    use std::net::IpAddr;
    use std::time::Duration;

    // Shorter than shipped (1 s doubling to 10 s) so the test stays quick;
    // the same code path. Admission caps as shipped (10 per source).
    let penalty = PenaltyPolicy {
        free_failures: 3,
        base: Duration::from_millis(25),
        max: Duration::from_millis(100),
        ..PenaltyPolicy::default()
    };
    let gw = Gateway::start_with(|cfg| cfg.penalty = penalty).await;
    gw.add_user("alice");
    let target = invite(&gw, "f1", "alice", true);
    let spare = invite(&gw, "f2", "alice", true);
    let flooder: IpAddr = "127.0.0.7".parse().unwrap();
    let intruder = std::sync::Arc::new(random_ed25519());

    // One after another: each attempt waits the penalty its predecessors
    // earned (free ones first, then doubling up to the cap).
    const SEQUENTIAL: u32 = 10;
    for i in 0..SEQUENTIAL {
        let (waited, reply) = enroll_from(
            &gw,
            flooder,
            &format!("f1:wrong-secret-{i}"),
            &intruder,
            "alice",
        )
        .await;
        assert_eq!(reply, None, "attempt {i}: closed without an answer");
        assert!(
            waited >= penalty.delay(i),
            "attempt {i} held back {waited:?}, less than {:?}",
            penalty.delay(i)
        );
    }
    assert_eq!(penalty.delay(SEQUENTIAL - 1), penalty.max);

    // Then in parallel (8 at once, below the per-source cap): wrong secrets
    // for the real invite and unknown invite ids.
    const PARALLEL: u32 = 64;
    const WORKERS: u32 = 8;
    let gw = std::sync::Arc::new(gw);
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let (gw, intruder) = (gw.clone(), intruder.clone());
        tasks.push(tokio::spawn(async move {
            let mut shortest = Duration::MAX;
            for i in (w..PARALLEL).step_by(WORKERS as usize) {
                let password = if i % 2 == 0 {
                    format!("f1:flood-{i}")
                } else {
                    format!("nosuch{i}:flood-{i}")
                };
                let (waited, reply) =
                    enroll_from(&gw, flooder, &password, &intruder, "alice").await;
                assert_eq!(reply, None, "flood attempt {i}: closed without an answer");
                shortest = shortest.min(waited);
            }
            shortest
        }));
    }
    for t in tasks {
        let shortest = t.await.unwrap();
        // every flood attempt waited the capped penalty
        assert!(
            shortest >= penalty.max,
            "a flood attempt waited {shortest:?}"
        );
    }
    let total = SEQUENTIAL + PARALLEL;
    eprintln!(
        "{PARALLEL} wrong secrets ({WORKERS} at once) refused in {:?}",
        started.elapsed()
    );

    // Nothing stored: no key, the invite still outstanding.
    assert!(gw.store.list_keys(None).unwrap().is_empty());
    let f1 = gw
        .store
        .list_invites()
        .unwrap()
        .into_iter()
        .find(|i| i.id == "f1")
        .unwrap();
    assert_eq!((f1.used_at, f1.used_fingerprint.clone()), (None, None));
    assert_eq!(f1.state(now()), "outstanding");
    assert!(gw.audit("key.enroll").is_empty());

    // The right secret still works: from the flooded address after the
    // capped penalty, ...
    let key = random_ed25519();
    let (waited, reply) = enroll_from(
        &gw,
        flooder,
        &format!("f1:{}", target.expose()),
        &key,
        "alice",
    )
    .await;
    assert!(waited >= penalty.max, "held back {waited:?}");
    assert_eq!(
        reply,
        Some(EnrollReply::Enrolled {
            fingerprint: pra_proto::fingerprint(key.public_key()),
            user: "alice".into(),
            status: KeyStatus::Approved
        })
    );
    // ... and from an address without failures.
    let other = random_ed25519();
    let (_, reply) = enroll_from(
        &gw,
        "127.0.0.9".parse().unwrap(),
        &format!("f2:{}", spare.expose()),
        &other,
        "alice",
    )
    .await;
    assert!(enrolled(reply.as_ref(), KeyStatus::Approved), "{reply:?}");
    assert_eq!(gw.store.list_keys(None).unwrap().len(), 2);

    // Audited, aggregated (the shipped policy: per source and minute the
    // first 10 one by one, the rest in one summary, written at the latest
    // when the gateway stops): together every attempt.
    let store = gw.store.clone();
    let gw = std::sync::Arc::into_inner(gw).unwrap();
    gw.stop().await;
    let refused: Vec<_> = store
        .audit(&pra_registry::model::AuditQuery {
            kind_prefix: Some("login.refused".into()),
            limit: 1000,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.event
                .source
                .as_deref()
                .is_some_and(|s| s.starts_with("127.0.0.7"))
        })
        .collect();
    let (summaries, single): (Vec<_>, Vec<_>) = refused
        .iter()
        .partition(|e| e.event.detail["aggregated"] == true);
    assert_eq!(single.len(), 10, "{single:#?}");
    for e in &single {
        assert_eq!(e.event.detail["reason"], "enroll_refused", "{e:?}");
        assert_eq!(e.event.user.as_deref(), Some(ENROLL_USER));
    }
    assert_eq!(summaries.len(), 1, "{summaries:#?}");
    let summary = &summaries[0].event.detail;
    assert_eq!(summary["count"], total - 10, "{summary}");
    assert_eq!(
        summary["reasons"]["enroll_refused"],
        total - 10,
        "{summary}"
    );
}
