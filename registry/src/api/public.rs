//! Public endpoints: health, key submission, key status.
//!
//! A submission names an account that must already exist (created by an
//! admin with `user add`); anonymous callers cannot create accounts. A
//! disabled account may still submit (the key waits as pending; logins stay
//! refused while the account is disabled).
//!
//! No account probing: the submission is answered the same (`202`,
//! pending) whether the account exists or not, and the per-account cap of
//! pending keys ([`crate::store::MAX_PENDING_PER_USER`], `429
//! too_many_pending`) counts submissions for unknown names the same way.
//! A submission for an unknown name is remembered (audited as
//! `key.submit.unknown_user`) but stores no key. Only the status request,
//! signed with that very key, answers `404 no_such_account` for it: the
//! employee who made a typo learns it (`pra key submit` asks at once),
//! while learning whether a name exists costs a fresh signed submission
//! per name, rate limited per source, capped per name and audited.

use super::AppState;
use super::error::ApiFailure;
use super::extract::JsonBody;
use crate::blocking::blocking;
use crate::error::RegistryError;
use crate::model::{Actor, NewKey};
use crate::validate;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use pra_proto::api::{
    ApiErrorCode, Health, KeyStatus, KeyStatusQuery, KeyStatusReply, KeySubmission,
};
use pra_proto::proof::{self, Action, ProofError};
use pra_proto::sanitize::sanitize;
use std::net::SocketAddr;

/// `GET /api/v1/health`.
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn proof_failure(e: ProofError) -> ApiFailure {
    let message = match e {
        ProofError::Stale { .. } => format!(
            "{e}; check that the PC's clock is right (within {} s)",
            proof::MAX_SKEW_SECS
        ),
        _ => e.to_string(),
    };
    ApiFailure::new(StatusCode::BAD_REQUEST, ApiErrorCode::InvalidProof, message)
}

/// `POST /api/v1/keys`: validate, check the proof of possession, store as
/// pending. `202` with the key's current status, also when the same key was
/// already submitted for the same user (idempotent); `409` when it belongs
/// to another user.
pub async fn submit(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    JsonBody(sub): JsonBody<KeySubmission>,
) -> Result<(StatusCode, Json<KeyStatusReply>), ApiFailure> {
    validate::user_name(&sub.user)?;
    let device = validate::device(&sub.device)?;
    let key = validate::public_key(&sub.public_key)?;
    proof::verify(&key.key, Action::Submit, &sub.user, &sub.proof, unix_now())
        .map_err(proof_failure)?;
    let new = NewKey {
        fingerprint: key.fingerprint.clone(),
        user: sub.user.clone(),
        public_key: key.line,
        algorithm: key.algorithm,
        device,
        status: KeyStatus::Pending,
    };
    let actor = Actor::Submitter(peer.to_string());
    let (fp, user) = (new.fingerprint.clone(), new.user.clone());
    let added = blocking(&app.store, move |s| match s.add_key(new, false, &actor) {
        Err(RegistryError::NotFound(_)) => {
            // No such account: remembered for the key's holder, answered as
            // if it existed.
            s.note_unknown_submission(&fp, &user, &actor)?;
            Ok(None)
        }
        other => other.map(Some),
    })
    .await?;
    let Some((record, created)) = added else {
        tracing::info!(%peer, user = %sanitize(&sub.user, 64), "key submission for an unknown account");
        return Ok((
            StatusCode::ACCEPTED,
            Json(KeyStatusReply {
                fingerprint: key.fingerprint,
                user: sub.user,
                status: KeyStatus::Pending,
            }),
        ));
    };
    tracing::info!(
        %peer,
        user = %record.user,
        fingerprint = %record.fingerprint,
        status = %record.status,
        created,
        "key submission"
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(KeyStatusReply {
            fingerprint: record.fingerprint,
            user: record.user,
            status: record.status,
        }),
    ))
}

/// `POST /api/v1/keys/status`: the holder of a key asks for its status.
/// `200`; `404 no_such_account` for a key lately submitted for an account
/// that does not exist; `404 not_found` for another key the registry does
/// not know; `409` when the key is registered to another user.
pub async fn status(
    State(app): State<AppState>,
    JsonBody(q): JsonBody<KeyStatusQuery>,
) -> Result<Json<KeyStatusReply>, ApiFailure> {
    validate::user_name(&q.user)?;
    let key = validate::public_key(&q.public_key)?;
    proof::verify(&key.key, Action::Status, &q.user, &q.proof, unix_now())
        .map_err(proof_failure)?;
    let (fp, user) = (key.fingerprint.clone(), q.user.clone());
    let (record, unknown_account) = blocking(&app.store, move |s| {
        Ok(match s.get_key(&fp)? {
            Some(k) => (Some(k), false),
            None => (
                None,
                s.unknown_submission(&fp, &user)? && s.get_user(&user)?.is_none(),
            ),
        })
    })
    .await?;
    if unknown_account {
        return Err(ApiFailure::new(
            StatusCode::NOT_FOUND,
            ApiErrorCode::NoSuchAccount,
            // The fix is the client's to say (ERR(10226)).
            format!("the registry has no account named {}", q.user),
        ));
    }
    let record = record.ok_or_else(|| {
        ApiFailure::new(
            StatusCode::NOT_FOUND,
            ApiErrorCode::NotFound,
            format!(
                "the registry does not know key {}; submit it with `pra key submit`",
                key.fingerprint
            ),
        )
    })?;
    if record.user != q.user {
        return Err(ApiFailure::new(
            StatusCode::CONFLICT,
            ApiErrorCode::Conflict,
            format!("key {} is registered to another user", record.fingerprint),
        ));
    }
    Ok(Json(KeyStatusReply {
        fingerprint: record.fingerprint,
        user: record.user,
        status: record.status,
    }))
}
