//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::serve::Shared;

pub(crate) fn router(shared: Shared) -> Router {
    Router::new()
        .route(
            "/health/live",
            get(|| async { Json(json!({"status": "live"})) }),
        )
        .route("/health/ready", get(ready))
        .with_state(shared)
}

/// Ready when the stores answer (start-up has finished by the time we serve).
async fn ready(State(shared): State<Shared>) -> (StatusCode, Json<serde_json::Value>) {
    let store = shared.store.backend().ping().await;
    let directory = shared.directory.ping().await;
    match (store, directory) {
        (Ok(()), Ok(())) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        (store, directory) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "unavailable",
                "event_store": store.err().map(|e| e.to_string()),
                "directory": directory.err().map(|e| e.to_string()),
            })),
        ),
    }
}
