//! Enrollment logins ([`pra_proto::enroll`]): user `pra-enroll`, password
//! `ID:SECRET` of an invite, then one `exec pra-enroll JSON` that stores
//! the key. Such a connection can do nothing else: no session is
//! registered, no rules are sent, no forwards are opened.

use super::{Shared, blocking};
use crate::error::RegistryError;
use crate::model::{Actor, InviteRefusal, NewKey};
use crate::validate;
use pra_proto::api::KeyStatus;
use pra_proto::enroll::{ENROLL_COMMAND, EnrollRefusal, EnrollReply, EnrollRequest, MAX_REQUEST};
use pra_proto::invite::InviteSecret;
use pra_proto::proof::{self, Action};
use std::net::SocketAddr;
use std::sync::Arc;

/// An invite's id and secret from the password (`ID:SECRET`).
#[derive(Clone)]
pub struct Credentials {
    /// The invite's id.
    pub id: String,
    secret: InviteSecret,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("id", &self.id).finish()
    }
}

/// Split the password; `None` if it cannot be an invite's.
pub fn credentials(password: &str) -> Option<Credentials> {
    let (id, secret) = password.split_once(':')?;
    let ok = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_graphic())
    };
    (ok(id, 64) && ok(secret, 128)).then(|| Credentials {
        id: id.to_string(),
        secret: InviteSecret::new(secret.to_string()),
    })
}

/// The exec request's JSON, if the command is `pra-enroll JSON`.
pub fn request(data: &[u8]) -> Option<Result<EnrollRequest, ()>> {
    let rest = data.strip_prefix(ENROLL_COMMAND.as_bytes())?;
    let json = rest.strip_prefix(b" ")?;
    if data.len() > MAX_REQUEST {
        return Some(Err(()));
    }
    Some(serde_json::from_slice(json).map_err(|_| ()))
}

/// What redeeming gave: the reply and whether it counts as a failed login
/// (for the source's penalties).
pub struct Outcome {
    /// Sent to the client (`None`: the id or secret was wrong; the
    /// connection is closed without an answer, as a refused login).
    pub reply: Option<EnrollReply>,
    /// A failed login: wrong id or secret, or a wrong proof.
    pub failed: bool,
}

fn unknown(peer: SocketAddr, creds: &Credentials) -> Outcome {
    tracing::info!(source = %peer, invite = %pra_proto::sanitize::sanitize(&creds.id, 64), "enrollment refused: unknown invite or wrong secret");
    Outcome {
        reply: None,
        failed: true,
    }
}

/// Check the request and redeem the invite.
pub async fn redeem(
    shared: &Arc<Shared>,
    peer: SocketAddr,
    creds: &Credentials,
    req: Result<EnrollRequest, ()>,
) -> Outcome {
    let refused = |reason| Outcome {
        reply: Some(EnrollReply::Refused { reason }),
        failed: false,
    };
    let Ok(req) = req else {
        return refused(EnrollRefusal::Invalid);
    };
    let (Ok(device), Ok(key)) = (
        validate::device(&req.device),
        validate::public_key(&req.public_key),
    ) else {
        return refused(EnrollRefusal::Invalid);
    };
    let new = NewKey {
        fingerprint: key.fingerprint.clone(),
        user: String::new(),
        public_key: key.line.clone(),
        algorithm: key.algorithm.clone(),
        device,
        status: KeyStatus::Pending,
    };
    // The proof names the invite's user: read it from the invite list.
    let (id, hash) = (creds.id.clone(), creds.secret.hash());
    let actor = Actor::Gateway(shared.gateway_id.clone());
    let lookup = id.clone();
    let user = blocking(&shared.store, move |s| {
        Ok(s.list_invites()?
            .into_iter()
            .find(|i| i.id == lookup)
            .map(|i| i.user))
    })
    .await;
    let user = match user {
        Ok(Some(user)) => user,
        Ok(None) => return unknown(peer, creds),
        Err(_) => return refused(EnrollRefusal::Unavailable),
    };
    let now = crate::model::now().max(0) as u64;
    if proof::verify(&key.key, Action::Submit, &user, &req.proof, now).is_err() {
        // Counted as a failed login: a caller without the secret learns
        // nothing faster this way than by guessing it.
        return Outcome {
            reply: Some(EnrollReply::Refused {
                reason: EnrollRefusal::Invalid,
            }),
            failed: true,
        };
    }
    let result = blocking(&shared.store, move |s| {
        s.redeem_invite(&id, &hash, new, &actor)
    })
    .await;
    match result {
        Ok(Ok(record)) => {
            tracing::info!(source = %peer, user = %record.user, fingerprint = %record.fingerprint, status = %record.status, "key enrolled with an invite");
            Outcome {
                reply: Some(EnrollReply::Enrolled {
                    fingerprint: record.fingerprint,
                    user: record.user,
                    status: record.status,
                }),
                failed: false,
            }
        }
        Ok(Err(InviteRefusal::Unknown)) => unknown(peer, creds),
        Ok(Err(InviteRefusal::Used)) => refused(EnrollRefusal::Used),
        Ok(Err(InviteRefusal::Revoked)) => refused(EnrollRefusal::Revoked),
        Ok(Err(InviteRefusal::Expired)) => refused(EnrollRefusal::Expired),
        Err(RegistryError::Conflict(_)) => refused(EnrollRefusal::KeyExists),
        Err(RegistryError::Invalid { .. }) => refused(EnrollRefusal::Invalid),
        Err(_) => refused(EnrollRefusal::Unavailable),
    }
}
