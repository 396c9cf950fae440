//! Liveness, readiness and metrics.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use event_store::CommitFeed;
use serde_json::json;

use crate::serve::Shared;

pub(crate) fn router(shared: Shared) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .with_state(shared)
}

/// Liveness, readiness, metrics and this document, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(live, ready, metrics, openapi))]
pub(crate) struct OperationsDoc;

/// Alive (the process answers).
#[utoipa::path(get, path = "/health/live", tag = "operations", responses((status = 200)))]
async fn live() -> Json<serde_json::Value> {
    Json(json!({"status": "live"}))
}

/// Ready when the stores answer. Start-up catches the read models up before serving, so
/// by the time this answers at all, projections have caught up.
#[utoipa::path(get, path = "/health/ready", tag = "operations", responses((status = 200), (status = 503)))]
async fn ready(State(shared): State<Shared>) -> (StatusCode, Json<serde_json::Value>) {
    let store = shared.store.ping().await.err().map(|e| e.to_string());
    let directory = shared.directory.ping().await.err().map(|e| e.to_string());
    let read = shared.read.ping().await.err().map(|e| e.to_string());
    if store.is_none() && directory.is_none() && read.is_none() {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "unavailable", "event_store": store, "directory": directory, "read_models": read}),
            ),
        )
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain")))]
async fn metrics(State(shared): State<Shared>) -> impl IntoResponse {
    let (applied, dead_lettered, position) = shared.projector.stats();
    let head = shared.feed.head().await.unwrap_or(position);
    let mut metrics = api_kit::observe::Metrics::default();
    metrics.http(&shared.counters);
    let mut metric = |name: &str, kind: &str, help: &str, lines: &[(String, u64)]| {
        metrics.family(name, kind, help, lines)
    };
    metric(
        "ledgerline_events_projected_total",
        "counter",
        "Events applied to the read models since start.",
        &[(String::new(), applied)],
    );
    metric(
        "ledgerline_dead_letters_total",
        "counter",
        "Events the projector could not apply since start.",
        &[(String::new(), dead_lettered)],
    );
    metric(
        "ledgerline_event_store_head",
        "gauge",
        "Position of the last committed event.",
        &[(String::new(), head.max(0) as u64)],
    );
    metric(
        "ledgerline_projection_position",
        "gauge",
        "Position the read models are at.",
        &[(String::new(), position.max(0) as u64)],
    );
    metric(
        "ledgerline_projection_lag_events",
        "gauge",
        "Committed events not yet in the read models.",
        &[(String::new(), (head - position).max(0) as u64)],
    );
    metrics.into_response()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200)))]
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi_document())
}
