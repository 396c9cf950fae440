//! Command responses: the body, with `ETag: "<version>"` and `Location` where a resource
//! was created.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::Money;
use serde::Serialize;
use utoipa::ToSchema;

/// The answer to a command: the aggregate and its new version.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CommandResult {
    pub id: String,
    pub version: u64,
}

/// The answer to a movement of money.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MovementResult {
    /// The account.
    pub id: String,
    pub version: u64,
    pub balance: Money,
    /// The movement, as it will appear in the transaction history.
    pub transaction_id: String,
    /// False when an external transaction id was seen before and nothing changed.
    pub recorded: bool,
}

pub(crate) struct Reply<T> {
    status: StatusCode,
    version: u64,
    location: Option<String>,
    body: T,
}

impl<T: Serialize> Reply<T> {
    pub(crate) fn created(location: String, version: u64, body: T) -> Self {
        Reply {
            status: StatusCode::CREATED,
            version,
            location: Some(location),
            body,
        }
    }

    /// Accepted and still under way; `location` tells where to look.
    pub(crate) fn accepted(location: String, version: u64, body: T) -> Self {
        Reply {
            status: StatusCode::ACCEPTED,
            version,
            location: Some(location),
            body,
        }
    }

    pub(crate) fn ok(version: u64, body: T) -> Self {
        Reply {
            status: StatusCode::OK,
            version,
            location: None,
            body,
        }
    }
}

impl<T: Serialize> IntoResponse for Reply<T> {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        let headers = response.headers_mut();
        if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", self.version)) {
            headers.insert(header::ETAG, etag);
        }
        if let Some(location) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::LOCATION, location);
        }
        response
    }
}
