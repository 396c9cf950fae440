//! Request observation: a tracing span per request carrying its correlation id (so every
//! JSON log line of the request has it), request counters for `/metrics`, and the system
//! log's record of refused requests.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use projections::{LogEntry, SystemLog};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tracing::Instrument;

const CORRELATION: &str = "x-correlation-id";

/// Requests answered, by status class (1xx … 5xx).
#[derive(Default)]
pub(crate) struct RequestCounters {
    by_class: [AtomicU64; 5],
    /// Answers by method, route template and status.
    by_route: std::sync::Mutex<std::collections::HashMap<(String, String, u16), u64>>,
}

impl RequestCounters {
    fn count(&self, method: &str, route: Option<&str>, status: StatusCode) {
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        // Unmatched paths are counted together: a scanner cannot grow the map.
        let route = route.unwrap_or("unmatched").to_string();
        let mut by_route = self
            .by_route
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *by_route
            .entry((method.to_string(), route, status.as_u16()))
            .or_default() += 1;
    }

    pub(crate) fn snapshot(&self) -> [u64; 5] {
        std::array::from_fn(|i| self.by_class[i].load(Ordering::Relaxed))
    }

    /// (method, route, status, count), sorted.
    pub(crate) fn by_route(&self) -> Vec<(String, String, u16, u64)> {
        let by_route = self
            .by_route
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut counts: Vec<_> = by_route
            .iter()
            .map(|((method, route, status), count)| {
                (method.clone(), route.clone(), *status, *count)
            })
            .collect();
        counts.sort();
        counts
    }
}

#[derive(Clone)]
pub(crate) struct Observer {
    pub(crate) counters: Arc<RequestCounters>,
    pub(crate) log: Arc<SystemLog>,
}

/// The `sub` and group of a bearer token, read without verifying it: used only to name
/// who was refused with 403, which happens only after the token was verified.
fn token_subject(request_headers: &axum::http::HeaderMap) -> Option<(String, Option<String>)> {
    let token = request_headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    let payload = URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    let sub = claims.get("sub")?.as_str()?.to_string();
    let role = claims
        .get("cognito:groups")
        .and_then(|g| g.get(0))
        .and_then(|g| g.as_str())
        .map(String::from);
    Some((sub, role))
}

pub(crate) async fn middleware(
    State(observer): State<Observer>,
    mut request: Request,
    next: Next,
) -> Response {
    let correlation = request
        .headers()
        .get(CORRELATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
        .map(String::from)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    if let Ok(value) = HeaderValue::from_str(&correlation) {
        request.headers_mut().insert(CORRELATION, value);
    }
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|matched| matched.as_str().to_string());
    let subject = token_subject(request.headers());
    let span = tracing::info_span!("request", %method, %path, correlation_id = %correlation);
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    observer
        .counters
        .count(method.as_str(), route.as_deref(), status);
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "answered"
        )
    });
    if status == StatusCode::FORBIDDEN && path.starts_with("/v1/") {
        let (actor, role) = subject.unwrap_or_default();
        let entry = LogEntry::new("warn", "denied", format!("{method} {path} refused"))
            .actor(actor, role.as_deref())
            .correlation(correlation.clone());
        observer.log.record_or_warn(entry).await;
    }
    if let Ok(value) = HeaderValue::from_str(&correlation) {
        response.headers_mut().insert(CORRELATION, value);
    }
    secure(&path, response.headers_mut());
    response
}

/// Headers every answer carries: no sniffing, no framing, no referrer, scripts and
/// styles only from here; and bank data is never kept in caches.
fn secure(path: &str, headers: &mut axum::http::HeaderMap) {
    let fixed = [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ];
    for (name, value) in fixed {
        if !headers.contains_key(name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    if path.starts_with("/v1/") && !headers.contains_key("cache-control") {
        headers.insert("cache-control", HeaderValue::from_static("no-store"));
    }
}
