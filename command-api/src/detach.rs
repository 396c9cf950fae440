//! Commands run apart from the connection that asked for them. axum drops a handler's
//! future when its client hangs up; a command cut there could leave a transfer half
//! done or an idempotency claim unresolved. So the rest of the chain (idempotency, the
//! handler, storing the response) runs in a task of its own, which the request awaits:
//! the caller still gets the answer, and its going away cancels nothing.

use api_kit::ApiError;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub async fn middleware(request: Request, next: Next) -> Response {
    match tokio::spawn(next.run(request)).await {
        Ok(response) => response,
        Err(error) => {
            ApiError::Internal(format!("a command's task failed: {error}")).into_response()
        }
    }
}
