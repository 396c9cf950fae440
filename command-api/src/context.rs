//! What every command request carries besides its body: the caller, the event metadata
//! (actor, correlation, causation, idempotency key, time) and the `If-Match` version.

use api_kit::{ApiError, Authenticator, Caller};
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use chrono::Utc;
use domain::metadata::CommandMetadata;
use event_store::Expected;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

pub(crate) const CORRELATION_HEADER: &str = "x-correlation-id";
pub(crate) const IDEMPOTENCY_HEADER: &str = "idempotency-key";

pub struct CommandContext {
    pub caller: Caller,
    pub metadata: CommandMetadata,
    pub expected: Expected,
    /// Where new ids come from: derived from the Idempotency-Key when there is one.
    ids: Option<IdSeed>,
    issued: AtomicU32,
}

/// The source of the ids a request with an Idempotency-Key creates: UUIDv7s whose time
/// is when the key was first claimed and whose other bits come from the caller, the key
/// and the id's place in the request. A recovery of the request (after its first run
/// died) creates the same ids, so it finds what the first run recorded instead of
/// creating a second client, account or transfer.
#[derive(Debug, Clone)]
pub struct IdSeed {
    claimed_at_ms: u64,
    digest: [u8; 32],
}

impl IdSeed {
    pub fn new(caller: &str, key: &str, claimed_at_ms: i64) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(caller.as_bytes());
        hasher.update([0]);
        hasher.update(key.as_bytes());
        IdSeed {
            claimed_at_ms: u64::try_from(claimed_at_ms).unwrap_or_default(),
            digest: hasher.finalize().into(),
        }
    }

    fn id(&self, n: u32) -> uuid::Uuid {
        let mut hasher = Sha256::new();
        hasher.update(self.digest);
        hasher.update(n.to_be_bytes());
        let digest = hasher.finalize();
        let mut random = [0u8; 10];
        random.copy_from_slice(&digest[..10]);
        uuid::Builder::from_unix_timestamp_millis(self.claimed_at_ms, &random).into_uuid()
    }
}

impl CommandContext {
    /// A new id for something this request creates (a UUIDv7).
    pub fn new_id<T>(&self, make: impl FnOnce(uuid::Uuid) -> T) -> T {
        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        make(match &self.ids {
            Some(seed) => seed.id(n),
            None => uuid::Uuid::now_v7(),
        })
    }
}

/// `If-Match: "3"` (or `W/"3"`) → version 3; `*` or absent → any version.
fn expected_version(headers: &HeaderMap) -> Result<Expected, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(Expected::Any);
    };
    let invalid = || ApiError::BadRequest {
        code: "invalid-if-match",
        detail: "If-Match must be a version in quotes, e.g. \"3\"".into(),
    };
    let text = value.to_str().map_err(|_| invalid())?.trim();
    if text == "*" {
        return Ok(Expected::Any);
    }
    let text = text.strip_prefix("W/").unwrap_or(text);
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.parse::<u64>().ok())
        .map(Expected::Version)
        .ok_or_else(invalid)
}

/// A caller-supplied id we copy into events: short, printable ASCII.
fn header_token(headers: &HeaderMap, name: &str, max: usize) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(text)
            if !text.is_empty()
                && text.len() <= max
                && text.chars().all(|c| c.is_ascii_graphic()) =>
        {
            Ok(Some(text.to_string()))
        }
        _ => Err(ApiError::BadRequest {
            code: "invalid-header",
            detail: format!("{name} must be 1 to {max} printable ASCII characters without spaces"),
        }),
    }
}

pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    header_token(headers, IDEMPOTENCY_HEADER, 255)
}

impl<S> FromRequestParts<S> for CommandContext
where
    S: Send + Sync,
    Arc<Authenticator>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let expected = expected_version(&parts.headers)?;
        let causation_id = uuid::Uuid::now_v7().to_string();
        let correlation_id = header_token(&parts.headers, CORRELATION_HEADER, 128)?
            .unwrap_or_else(|| causation_id.clone());
        let metadata = CommandMetadata {
            actor_id: caller.id.clone(),
            actor_role: caller.role,
            correlation_id,
            causation_id,
            idempotency_key: idempotency_key(&parts.headers)?,
            occurred_at: Utc::now(),
        };
        Ok(CommandContext {
            caller,
            metadata,
            expected,
            ids: parts.extensions.get::<IdSeed>().cloned(),
            issued: AtomicU32::new(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_if_match(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_MATCH, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn reads_if_match() {
        assert_eq!(expected_version(&HeaderMap::new()).unwrap(), Expected::Any);
        assert_eq!(
            expected_version(&with_if_match("\"7\"")).unwrap(),
            Expected::Version(7)
        );
        assert_eq!(
            expected_version(&with_if_match("W/\"7\"")).unwrap(),
            Expected::Version(7)
        );
        assert_eq!(
            expected_version(&with_if_match("*")).unwrap(),
            Expected::Any
        );
        for bad in ["7", "\"x\"", "\"-1\"", "\"\""] {
            assert!(expected_version(&with_if_match(bad)).is_err(), "{bad}");
        }
    }
}
