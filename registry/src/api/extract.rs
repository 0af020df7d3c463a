//! Extractors whose refusals are API errors (`{code, message}`), not axum's
//! plain-text rejections.

use super::AppState;
use super::error::ApiFailure;
use crate::model::TokenRecord;
use crate::token::BearerToken;
/// The token hash at its old path (tests name it here).
pub use crate::token::token_hash;
use crate::validate;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use pra_proto::api::ApiErrorCode;
use pra_proto::sanitize::sanitize;
use serde::de::DeserializeOwned;

/// A JSON body: at most [`super::MAX_BODY`] bytes (413 otherwise), never a
/// private key (refused before parsing, so no parser message can quote
/// it), and valid JSON for `T` (400 `bad_json` otherwise).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiFailure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiFailure::too_large(super::MAX_BODY)
            } else {
                ApiFailure::bad_json("the request body could not be read").closing()
            }
        })?;
        if validate::looks_private(&bytes) {
            return Err(validate::private_key_refused().into());
        }
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            ApiFailure::bad_json(format!(
                "the body is not valid JSON for this request: {}",
                sanitize(&e.to_string(), 200)
            ))
        })
    }
}

/// Query parameters; a bad one is a 400 `invalid_field`.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| ApiFailure::invalid(format!("bad query parameters: {}", e.body_text())))
    }
}

/// Path parameters; a bad one is a 400 `invalid_field`.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| ApiPath(p))
            .map_err(|e| ApiFailure::invalid(format!("bad path: {}", e.body_text())))
    }
}

/// An authenticated admin request: `Authorization: Bearer TOKEN` with a
/// token the store knows. Missing/malformed → 401, unknown → 403.
#[derive(Debug)]
pub struct Admin(pub TokenRecord);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiFailure;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        let Some(token) = BearerToken::from_header(header) else {
            return Err(ApiFailure::new(
                StatusCode::UNAUTHORIZED,
                ApiErrorCode::Unauthorized,
                "admin routes need `Authorization: Bearer TOKEN` (create one with \
                 `pra-registry token create --name NAME`)",
            ));
        };
        let hash = token.hash();
        match crate::blocking::blocking(&state.store, move |s| s.use_token(&hash)).await? {
            Some(record) => Ok(Admin(record)),
            None => {
                tracing::warn!("admin request with an unknown token refused");
                Err(ApiFailure::new(
                    StatusCode::FORBIDDEN,
                    ApiErrorCode::Forbidden,
                    "the token is not valid (unknown, revoked or expired)",
                ))
            }
        }
    }
}
