//! Request observation, the same in `crm serve` and in every AWS service: a tracing
//! span per request carrying its correlation id (so every JSON log line of the request
//! has it) and one `answered` line per request, counters for `/metrics`, the security
//! headers every answer carries, and refused requests (403) handed to a [`RefusalLog`]
//! (the system log).

use async_trait::async_trait;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tracing::Instrument;

const CORRELATION: &str = "x-correlation-id";

/// A request answered 403, as the system log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub method: String,
    pub path: String,
    /// The token's subject and role, when the request carried one.
    pub actor: Option<(String, Option<String>)>,
    pub correlation_id: String,
}

/// Where refusals are recorded. Recording must not fail the request: implementations
/// log their own failures.
#[async_trait]
pub trait RefusalLog: Send + Sync {
    async fn refused(&self, refusal: Refusal);
}

/// Requests answered, by status class and by (method, route template, status).
#[derive(Default)]
pub struct RequestCounters {
    by_class: [AtomicU64; 5],
    by_route: Mutex<HashMap<(String, String, u16), u64>>,
}

impl RequestCounters {
    fn count(&self, method: &str, route: Option<&str>, status: StatusCode) {
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        // Unmatched paths are counted together: a scanner cannot grow the map.
        let route = route.unwrap_or("unmatched").to_string();
        let mut by_route = self.by_route.lock().unwrap_or_else(|p| p.into_inner());
        *by_route
            .entry((method.to_string(), route, status.as_u16()))
            .or_default() += 1;
    }

    /// Answers per status class, 1xx … 5xx.
    pub fn snapshot(&self) -> [u64; 5] {
        std::array::from_fn(|i| self.by_class[i].load(Ordering::Relaxed))
    }

    /// (method, route, status, count), sorted.
    pub fn by_route(&self) -> Vec<(String, String, u16, u64)> {
        let by_route = self.by_route.lock().unwrap_or_else(|p| p.into_inner());
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

/// Prometheus text exposition, one metric family at a time.
#[derive(Default)]
pub struct Metrics(String);

impl Metrics {
    pub fn family(&mut self, name: &str, kind: &str, help: &str, lines: &[(String, u64)]) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in lines {
            let _ = writeln!(self.0, "{name}{labels} {value}");
        }
    }

    /// The HTTP families every service exports.
    pub fn http(&mut self, counters: &RequestCounters) {
        let classes = counters.snapshot();
        self.family(
            "ledgerline_http_responses_total",
            "counter",
            "HTTP responses by status class.",
            &(0..5)
                .map(|i| (format!("{{class=\"{}xx\"}}", i + 1), classes[i]))
                .collect::<Vec<_>>(),
        );
        self.family(
            "ledgerline_http_route_responses_total",
            "counter",
            "HTTP responses by method, route and status.",
            &counters
                .by_route()
                .into_iter()
                .map(|(method, route, status, count)| {
                    (
                        format!("{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}}"),
                        count,
                    )
                })
                .collect::<Vec<_>>(),
        );
    }

    pub fn into_response(self) -> Response {
        (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            self.0,
        )
            .into_response()
    }
}

/// Counts, logs and secures every request of a router; refusals go to `refusals`.
#[derive(Clone)]
pub struct Observer {
    counters: Arc<RequestCounters>,
    refusals: Option<Arc<dyn RefusalLog>>,
}

impl Observer {
    pub fn new(refusals: Option<Arc<dyn RefusalLog>>) -> Self {
        Observer {
            counters: Arc::default(),
            refusals,
        }
    }

    pub fn counters(&self) -> Arc<RequestCounters> {
        self.counters.clone()
    }

    /// `router` observed. Layer it last, so every route (and the fallback) is counted.
    pub fn layer(self, router: Router) -> Router {
        router.layer(axum::middleware::from_fn_with_state(self, middleware))
    }

    /// A service's `/metrics` (the HTTP families) added to `router`, and the whole
    /// observed: what the AWS services and the mail Lambda serve.
    pub fn service(self, router: Router) -> Router {
        let counters = self.counters();
        let router = router.route(
            "/metrics",
            axum::routing::get(move || {
                let counters = counters.clone();
                async move {
                    let mut metrics = Metrics::default();
                    metrics.http(&counters);
                    metrics.into_response()
                }
            }),
        );
        self.layer(router)
    }
}

/// The `sub` and group of a bearer token, read without verifying it: used only to name
/// who was refused with 403, which happens only after the token was verified.
fn token_subject(authorization: Option<&HeaderValue>) -> Option<(String, Option<String>)> {
    let token = authorization?.to_str().ok()?.strip_prefix("Bearer ")?;
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

async fn middleware(
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
    // Kept (a cheap clone) and read only if the request is refused.
    let authorization = request.headers().get(header::AUTHORIZATION).cloned();
    let path_for_headers = path.clone();
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
        if let Some(refusals) = &observer.refusals {
            refusals
                .refused(Refusal {
                    method: method.to_string(),
                    path,
                    actor: token_subject(authorization.as_ref()),
                    correlation_id: correlation.clone(),
                })
                .await;
        }
    }
    if let Ok(value) = HeaderValue::from_str(&correlation) {
        response.headers_mut().insert(CORRELATION, value);
    }
    secure(&path_for_headers, response.headers_mut());
    response
}

/// The headers every answer carries: no sniffing, no framing, no referrer, scripts and
/// styles only from here (CloudFront's response-headers policy in infra/ sends the
/// same); and API answers (bank data) are never kept in caches.
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    (
        "content-security-policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    ),
];

fn secure(path: &str, headers: &mut HeaderMap) {
    for (name, value) in SECURITY_HEADERS {
        if !headers.contains_key(name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    if path.starts_with("/v1/") && !headers.contains_key("cache-control") {
        headers.insert("cache-control", HeaderValue::from_static("no-store"));
    }
}
