//! Key hand-over with an invite on the gateway's SSH port: user
//! `pra-enroll`, password `ID:SECRET`, one `exec pra-enroll JSON`. The
//! connection does nothing else; refusals store nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::gateway::*;
use common::{device, random_ed25519};
use pra_proto::api::KeyStatus;
use pra_proto::enroll::{ENROLL_COMMAND, ENROLL_USER, EnrollRefusal, EnrollReply, EnrollRequest};
use pra_proto::invite::InviteSecret;
use pra_proto::proof::{self, Action};
use pra_registry::model::{NewInvite, now};
use pra_registry::store::Store;
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

/// Enroll `key`: the reply, or `None` when the connection was closed
/// without one (wrong id or secret).
async fn enroll(
    gw: &Gateway,
    id: &str,
    secret: &str,
    key: &PrivateKey,
    user: &str,
) -> Option<EnrollReply> {
    let c = enroll_login(gw, &format!("{id}:{secret}")).await;
    let mut ch = c.channel_open_session().await.unwrap();
    ch.exec(true, request(key, user)).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while let Some(msg) = ch.wait().await {
            match msg {
                russh::ChannelMsg::Data { data } => out.extend_from_slice(&data),
                russh::ChannelMsg::Close | russh::ChannelMsg::Failure => break,
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    if out.is_empty() {
        return None;
    }
    Some(serde_json::from_slice(&out).unwrap())
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
    let reply = enroll(&gw, "a1", approve.expose(), &other, "alice")
        .await
        .unwrap();
    assert_eq!(
        reply,
        EnrollReply::Refused {
            reason: EnrollRefusal::Used
        }
    );
    // revoked
    gw.store.revoke_invite("b2", &admin()).unwrap();
    let reply = enroll(&gw, "b2", pending.expose(), &other, "alice")
        .await
        .unwrap();
    assert_eq!(
        reply,
        EnrollReply::Refused {
            reason: EnrollRefusal::Revoked
        }
    );
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
    assert!(
        matches!(
            reply,
            EnrollReply::Enrolled {
                status: KeyStatus::Pending,
                ..
            }
        ),
        "{reply:?}"
    );

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
