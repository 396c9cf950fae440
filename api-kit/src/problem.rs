//! The API's error type and its mapping to HTTP: every error leaves as
//! `application/problem+json` (RFC 9457) with a stable `type`. Internal errors are logged
//! here and never shown to the caller.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::{Refusal, RefusalKind, ValidationErrors};
use event_store::{ExecuteError, StoreError};
use serde::Serialize;

/// The base of every problem `type`: `/problems/insufficient-funds`.
pub const PROBLEM_BASE: &str = "/problems/";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401: no token, or one that does not verify.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: authenticated, not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 400: the request cannot be read (malformed JSON, bad header).
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    /// 422: readable, but fields are invalid.
    #[error("{0}")]
    Validation(ValidationErrors),
    /// 409/422/404: a business rule refused the command.
    #[error("{detail}")]
    Refused {
        status: StatusCode,
        code: &'static str,
        detail: String,
    },
    /// 409: a conflict that is not a business rule (duplicate username, busy stream).
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// 412: `If-Match` named a version the aggregate is no longer at.
    #[error("the resource is at version {actual}, not {expected}")]
    PreconditionFailed { expected: u64, actual: u64 },
    /// 413.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: an `Idempotency-Key` reused with a different request.
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    /// 503: a dependency is down; retrying later may help.
    #[error("{0}")]
    Unavailable(String),
    /// 503: a feature this deployment has not configured; the message says what to set.
    #[error("{0}")]
    NotConfigured(String),
    /// 500: a fault of ours. The message is logged, not returned.
    #[error("internal error: {0}")]
    Internal(String),
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [domain::ValidationError]>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) | ApiError::IdempotencyKeyReused => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Refused { status, .. } => *status,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) | ApiError::NotConfigured(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, documented problem code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::BadRequest { code, .. }
            | ApiError::Refused { code, .. }
            | ApiError::Conflict { code, .. } => code,
            ApiError::Validation(_) => "validation",
            ApiError::PreconditionFailed { .. } => "version-mismatch",
            ApiError::PayloadTooLarge(_) => "payload-too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::IdempotencyKeyReused => "idempotency-key-reused",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::NotConfigured(_) => "not-configured",
            ApiError::Internal(_) => "internal",
        }
    }

    /// A business refusal from the domain.
    pub fn refused(refusal: &impl Refusal) -> Self {
        let status = match refusal.kind() {
            RefusalKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            RefusalKind::Conflict => StatusCode::CONFLICT,
            RefusalKind::NotFound => StatusCode::NOT_FOUND,
        };
        ApiError::Refused {
            status,
            code: refusal.code(),
            detail: refusal.to_string(),
        }
    }

    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        ApiError::Validation(ValidationErrors::single(field, message))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            ApiError::Internal(message) => {
                tracing::error!(error = %message, "internal error");
                "an internal error occurred; it has been logged".to_string()
            }
            ApiError::Unavailable(message) => {
                tracing::warn!(error = %message, "dependency unavailable");
                "the service is temporarily unavailable; try again".to_string()
            }
            other => other.to_string(),
        };
        let problem = Problem {
            kind: format!("{PROBLEM_BASE}{}", self.code()),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail,
            errors: match &self {
                ApiError::Validation(errors) => Some(&errors.0),
                _ => None,
            },
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict => ApiError::Conflict {
                code: "concurrent-update",
                detail: "the resource was changed concurrently; try again".into(),
            },
            StoreError::Unavailable(message) => ApiError::Unavailable(message),
            StoreError::OutOfRange(message) => ApiError::NotFound(message),
            // Busy or unreachable: a retry can help, so say so (503), not 500.
            other if other.is_transient() => {
                ApiError::Unavailable(format!("the event store is unavailable: {other}"))
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl<E: Refusal> From<ExecuteError<E>> for ApiError {
    fn from(error: ExecuteError<E>) -> Self {
        match error {
            ExecuteError::Refused(refusal) => ApiError::refused(&refusal),
            ExecuteError::VersionMismatch { expected, actual } => {
                ApiError::PreconditionFailed { expected, actual }
            }
            ExecuteError::Contention => ApiError::Conflict {
                code: "concurrent-update",
                detail: error.to_string(),
            },
            ExecuteError::Store(store) => store.into(),
        }
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        ApiError::Validation(errors)
    }
}
