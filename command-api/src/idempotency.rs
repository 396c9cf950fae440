//! `Idempotency-Key` on POST, PATCH and DELETE: the first request with a key runs and its
//! response is stored; a retry with the same key and the same request gets that response
//! (same status, headers and body) without running again; the same key with a different
//! request gets 422. Keys are scoped to the caller. Concurrent duplicates wait for the
//! first to finish, so they resolve to one effect. A claim is a lease renewed while the
//! request runs; a retry after its holder died runs the request again as a recovery
//! (see `event_store::idempotency`), with the same ids (`IdSeed`).

use api_kit::json::BODY_LIMIT;
use api_kit::{ApiError, Authenticator, Caller};
use axum::body::{to_bytes, Body};
use axum::extract::{FromRef, FromRequestParts, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use event_store::idempotency::{Claim, StoredResponse, LEASE};
use sha2::{Digest, Sha256};
use std::time::Duration;

use crate::context::{idempotency_key, IdSeed};
use event_store::EventStore;
use std::sync::Arc;

/// Headers worth replaying; the rest (dates, lengths) are regenerated.
const REPLAYED_HEADERS: [&str; 3] = ["content-type", "etag", "location"];
/// How long a duplicate waits for the first request with its key: past the lease, a
/// holder that died has lost its claim and the duplicate takes it over.
const WAIT_FOR_FIRST: Duration = LEASE.saturating_add(Duration::from_secs(1));

/// The middleware, for any router whose state gives the store and the authenticator
/// (the command API's and the mail service's).
pub async fn middleware<S>(State(state): State<S>, request: Request, next: Next) -> Response
where
    S: Clone + Send + Sync + 'static,
    Arc<Authenticator>: FromRef<S>,
    Arc<EventStore>: FromRef<S>,
{
    match handle(state, request, next).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn handle<S>(state: S, request: Request, next: Next) -> Result<Response, ApiError>
where
    S: Clone + Send + Sync + 'static,
    Arc<Authenticator>: FromRef<S>,
    Arc<EventStore>: FromRef<S>,
{
    let store = Arc::<EventStore>::from_ref(&state);
    if !matches!(
        *request.method(),
        Method::POST | Method::PATCH | Method::DELETE
    ) {
        return Ok(next.run(request).await);
    }
    let key = match idempotency_key(request.headers()) {
        Ok(None) => return Ok(next.run(request).await),
        Ok(Some(key)) => Ok(key),
        Err(invalid) => Err(invalid),
    };
    let (mut parts, body) = request.into_parts();
    // Who is asking comes first: without a valid token the answer is 401, whatever else
    // is wrong with the request.
    let caller = Caller::from_request_parts(&mut parts, &state).await?;
    let key = key?;
    let body = to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(BODY_LIMIT))?;
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str().as_bytes());
    hasher.update(b" ");
    hasher.update(parts.uri.path().as_bytes());
    hasher.update(b"\n");
    hasher.update(&body);
    let request_hash = hex::encode(hasher.finalize());

    let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    let (claimed_at_ms, recovering) = loop {
        match store
            .claim_idempotency(&caller.id, &key, &request_hash, LEASE)
            .await?
        {
            Claim::New {
                claimed_at_ms,
                recovering,
            } => break (claimed_at_ms, recovering),
            Claim::Replay(stored) => return Ok(replay(stored)),
            Claim::Mismatch => return Err(ApiError::IdempotencyKeyReused),
            Claim::InProgress if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Claim::InProgress => {
                return Err(ApiError::Conflict {
                    code: "idempotency-key-in-progress",
                    detail: "a request with this Idempotency-Key is still being processed".into(),
                })
            }
        }
    };
    if recovering {
        tracing::warn!(key, caller = %caller.id, "an idempotency claim outlived its holder; running the request again as a recovery");
    }

    parts
        .extensions
        .insert(IdSeed::new(&caller.id, &key, claimed_at_ms));
    let _renewing = Renewal(tokio::spawn({
        let (store, caller, key) = (store.clone(), caller.id.clone(), key.clone());
        async move {
            loop {
                tokio::time::sleep(LEASE / 3).await;
                if let Err(error) = store.renew_idempotency(&caller, &key, LEASE).await {
                    tracing::warn!(%error, key, "could not renew an idempotency lease");
                }
            }
        }
    }));
    let work = next.run(Request::from_parts(parts, Body::from(body)));
    let response = if recovering {
        event_store::recovering(work).await
    } else {
        work.await
    };
    let (parts, body) = response.into_parts();
    let body = match to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(error) => {
            store.release_idempotency(&caller.id, &key).await?;
            return Err(ApiError::Internal(format!(
                "reading a response to store it: {error}"
            )));
        }
    };
    if parts.status.is_server_error() || parts.extensions.get::<NotKept>().is_some() {
        // Our fault, not the request's, or an answer not to keep: a retry runs again.
        store.release_idempotency(&caller.id, &key).await?;
    } else {
        let stored = StoredResponse {
            status: parts.status.as_u16(),
            headers: REPLAYED_HEADERS
                .iter()
                .filter_map(|name| {
                    let value = parts.headers.get(*name)?.to_str().ok()?;
                    Some((name.to_string(), value.to_string()))
                })
                .collect(),
            body: body.to_vec(),
        };
        if let Err(error) = store.complete_idempotency(&caller.id, &key, &stored).await {
            // The command ran; failing now would invite a retry that cannot replay.
            tracing::error!(%error, key, "could not store an idempotent response");
        }
    }
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// Put in a response's extensions by a handler whose answer holds personal data (a
/// mail draft with the client's details): the claim is released instead of the answer
/// being stored, so no copy of it is kept in the store's records (which are not
/// encrypted, and outlive an erasure); a retry with the key runs again.
#[derive(Debug, Clone, Copy)]
pub struct NotKept;

/// Renews a claim's lease until dropped.
struct Renewal(tokio::task::JoinHandle<()>);

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn replay(stored: StoredResponse) -> Response {
    let mut response = Response::new(Body::from(stored.body));
    *response.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    for (name, value) in stored.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response
        .headers_mut()
        .insert("idempotent-replay", HeaderValue::from_static("true"));
    response
}
