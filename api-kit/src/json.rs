//! `AppJson<T>`: axum's JSON extractor and response, with rejections turned into the
//! API's problem+json errors (malformed JSON → 400, wrong shape → 422 naming the field).

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::problem::ApiError;

#[derive(Debug, Clone, Copy, Default)]
pub struct AppJson<T>(pub T);

impl<T, S> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(AppJson(value)),
            Err(rejection) => Err(rejection_to_error(rejection)),
        }
    }
}

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

fn rejection_to_error(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(error) => {
            // axum words it "Failed to deserialize …: <path>: <serde message>".
            let text = error.body_text();
            let message = text
                .split_once("target type: ")
                .map_or(text.as_str(), |(_, rest)| rest);
            let (field, reason) = match message.split_once(": ") {
                Some((path, reason)) if !path.contains(' ') => {
                    (path.to_string(), reason.to_string())
                }
                _ => (String::new(), message.to_string()),
            };
            let field = field.trim_end_matches('.').to_string();
            // serde names a missing field in its message rather than in the path.
            let missing = quoted(&reason).filter(|_| reason.starts_with("missing field"));
            let field = match (missing, field.as_str()) {
                (Some(name), "") => name,
                (Some(name), parent) => format!("{parent}.{name}"),
                (None, "") => "body".to_string(),
                (None, _) => field,
            };
            let reason = reason
                .split(" at line ")
                .next()
                .unwrap_or(&reason)
                .to_string();
            ApiError::validation(&field, reason)
        }
        JsonRejection::JsonSyntaxError(error) => ApiError::BadRequest {
            code: "malformed-json",
            detail: error.body_text(),
        },
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
            "the body must be JSON, sent with Content-Type: application/json".into(),
        ),
        JsonRejection::BytesRejection(error) => {
            if error.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(crate::json::BODY_LIMIT)
            } else {
                ApiError::BadRequest {
                    code: "unreadable-body",
                    detail: error.body_text(),
                }
            }
        }
        other => ApiError::BadRequest {
            code: "unreadable-body",
            detail: other.body_text(),
        },
    }
}

/// The largest request body the APIs accept.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The first back-quoted name in a serde message ("unknown field `foo`, expected …").
fn quoted(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_quoted_field() {
        assert_eq!(
            quoted("unknown field `colour`, expected one of `a`"),
            Some("colour".into())
        );
        assert_eq!(quoted("no quotes"), None);
    }
}

/// `AppQuery<T>`: axum's query-string extractor, with rejections as 400 problems.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for AppQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| AppQuery(value))
            .map_err(|rejection| ApiError::BadRequest {
                code: "invalid-query",
                detail: rejection.body_text(),
            })
    }
}

/// `AppForm<T>`: axum's form extractor (`application/x-www-form-urlencoded`), with
/// rejections as problems: another content type → 415, a body that does not fit → 422.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppForm<T>(pub T);

impl<T, S> FromRequest<S> for AppForm<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::FormRejection;
        match axum::Form::<T>::from_request(request, state).await {
            Ok(axum::Form(value)) => Ok(AppForm(value)),
            Err(FormRejection::InvalidFormContentType(_)) => Err(ApiError::UnsupportedMediaType(
                "the body must be a form, sent with Content-Type: application/x-www-form-urlencoded".into(),
            )),
            Err(FormRejection::BytesRejection(error))
                if error.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(ApiError::PayloadTooLarge(BODY_LIMIT))
            }
            Err(rejection) => Err(ApiError::validation("body", rejection.body_text())),
        }
    }
}

/// Refuses a body that is not declared JSON (415), for handlers that read the body
/// themselves (an optional body, the mail service's).
pub fn require_json(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(
            "the body must be JSON, sent with Content-Type: application/json".into(),
        ))
    }
}
