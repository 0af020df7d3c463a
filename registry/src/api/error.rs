//! The one error type of the HTTP API: a status, a stable code, a message.
//! Rendered as `{"code": "...", "message": "..."}`.

use crate::error::RegistryError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pra_proto::api::{ApiError, ApiErrorCode};
use pra_proto::sanitize::sanitize;

/// A refused or failed API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: ApiErrorCode,
    /// Human explanation, already sanitized.
    pub message: String,
    /// Ask hyper to close the connection after the answer (the body was
    /// not read, or the client is misbehaving).
    pub close: bool,
}

impl ApiFailure {
    /// A failure with a status, code and message (sanitized here).
    pub fn new(status: StatusCode, code: ApiErrorCode, message: impl AsRef<str>) -> Self {
        ApiFailure {
            status,
            code,
            message: sanitize(message.as_ref(), 1024),
            close: false,
        }
    }

    /// Close the connection after answering.
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    /// 400 `bad_json`.
    pub fn bad_json(message: impl AsRef<str>) -> Self {
        ApiFailure::new(StatusCode::BAD_REQUEST, ApiErrorCode::BadJson, message)
    }

    /// 400 `invalid_field`.
    pub fn invalid(message: impl AsRef<str>) -> Self {
        ApiFailure::new(StatusCode::BAD_REQUEST, ApiErrorCode::InvalidField, message)
    }

    /// 413 `payload_too_large`.
    pub fn too_large(limit: usize) -> Self {
        ApiFailure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ApiErrorCode::PayloadTooLarge,
            format!("the body is larger than {limit} bytes"),
        )
        .closing()
    }

    /// 404 `not_found` for an unknown path.
    pub fn no_route() -> Self {
        ApiFailure::new(
            StatusCode::NOT_FOUND,
            ApiErrorCode::NotFound,
            "no such API endpoint",
        )
    }

    /// 500 `internal`; the details go to the log, not to the client.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "API request failed internally");
        ApiFailure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ApiErrorCode::Internal,
            "the registry failed internally; nothing was changed",
        )
    }
}

impl From<RegistryError> for ApiFailure {
    fn from(e: RegistryError) -> Self {
        let status = match &e {
            RegistryError::Invalid { .. } => StatusCode::BAD_REQUEST,
            RegistryError::Conflict(_) => StatusCode::CONFLICT,
            RegistryError::NotFound(_) => StatusCode::NOT_FOUND,
            RegistryError::TooManyPending(_) => StatusCode::TOO_MANY_REQUESTS,
            RegistryError::Database(_)
            | RegistryError::HostKey { .. }
            | RegistryError::Gateway(_) => return ApiFailure::internal(e),
        };
        ApiFailure::new(status, e.code(), e.to_string())
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            Json(ApiError {
                code: self.code,
                message: self.message,
            }),
        )
            .into_response();
        if self.close {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_errors_map_to_status_and_code() {
        for (e, status, code) in [
            (
                RegistryError::invalid("local port", "0"),
                StatusCode::BAD_REQUEST,
                ApiErrorCode::InvalidField,
            ),
            (
                RegistryError::Conflict("x".into()),
                StatusCode::CONFLICT,
                ApiErrorCode::Conflict,
            ),
            (
                RegistryError::NotFound("x".into()),
                StatusCode::NOT_FOUND,
                ApiErrorCode::NotFound,
            ),
            (
                RegistryError::Database("disk I/O error at /secret/path".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
                ApiErrorCode::Internal,
            ),
        ] {
            let f = ApiFailure::from(e);
            assert_eq!((f.status, f.code), (status, code));
            assert!(!f.message.contains("/secret/path"));
        }
        let f = ApiFailure::invalid("bad \x1b[31m");
        assert!(!f.message.contains('\x1b'));
    }
}
