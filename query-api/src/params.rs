//! Query-string parameters shared by the lists, and the mapping of read-side errors.

use api_kit::ApiError;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use projections::ProjectionError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PageParams {
    #[serde(default, deserialize_with = "number")]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// A number from a query string. Needed because `#[serde(flatten)]` hands every value
/// over as a string.
pub(crate) fn number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    let text: Option<String> = Option::deserialize(deserializer)?;
    text.map(|t| {
        t.parse::<i64>()
            .map_err(|_| serde::de::Error::custom(format!("`{t}` is not a whole number")))
    })
    .transpose()
}

impl PageParams {
    pub(crate) fn limit(&self) -> i64 {
        projections::page::limit(self.limit)
    }
}

/// An RFC 3339 bound, normalised to the stored format so text comparison is time order.
pub(crate) fn time_bound(value: Option<&str>, field: &str) -> Result<Option<String>, ApiError> {
    value
        .map(|text| {
            DateTime::parse_from_rfc3339(text)
                .map(|time| projections::timestamp(time.with_timezone(&Utc)))
                .map_err(|_| ApiError::BadRequest {
                    code: "invalid-query",
                    detail: format!("{field} must be an RFC 3339 time"),
                })
        })
        .transpose()
}

/// A list's `sort` parameter: absent is the default order; an unknown one is a 400
/// naming the ones there are.
pub(crate) fn sort<T: Default>(
    value: Option<&str>,
    parse: fn(&str) -> Option<T>,
    known: &str,
) -> Result<T, ApiError> {
    match value {
        None => Ok(T::default()),
        Some(text) => parse(text).ok_or_else(|| ApiError::BadRequest {
            code: "invalid-query",
            detail: format!("sort must be {known}"),
        }),
    }
}

/// The number a one-key cursor of ours holds (`None` without a cursor).
pub(crate) fn number_cursor(cursor: Option<&str>) -> Result<Option<u64>, ApiError> {
    cursor
        .map(|cursor| {
            projections::page::decode_cursor(cursor, 1)
                .ok()
                .and_then(|key| key[0].parse::<u64>().ok())
                .ok_or_else(|| read_error(ProjectionError::InvalidCursor))
        })
        .transpose()
}

pub(crate) fn read_error(error: ProjectionError) -> ApiError {
    match error {
        ProjectionError::InvalidCursor => ApiError::BadRequest {
            code: "invalid-cursor",
            detail: "the cursor is not one this API gave out".into(),
        },
        ProjectionError::Store(store) => store.into(),
        other => ApiError::Unavailable(other.to_string()),
    }
}

/// A detail view, with `ETag: "<version>"`.
pub(crate) fn detail<T: Serialize>(version: i64, body: T) -> Response {
    let mut response = Json(body).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}
