//! The auditors' whole-store verification runs over HTTP: ask for one, follow it, list
//! them. The work itself is the worker's ([`crate::verifier`]).

use api_kit::{ApiError, AppQuery, Caller};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::policy::Action;
use projections::page::Page;
use projections::VerificationRun;

use crate::params::{read_error, PageParams};
use crate::QueryState;

/// Starts a verification of every stream (auditors). 202 with the new run, or 200 with
/// the run already queued or running: one runs at a time.
#[utoipa::path(post, path = "/v1/audit/verifications", tag = "audit",
    responses((status = 202, body = VerificationRun, description = "queued; follow Location"),
        (status = 200, body = VerificationRun, description = "the run already queued or running"),
        (status = 403), (status = 503)),
    security(("bearer" = [])))]
pub(crate) async fn start(
    State(state): State<QueryState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.authorize(Action::ReadAudit)?;
    let (run, new) = state
        .verifications
        .runs
        .request(&caller.id)
        .await
        .map_err(read_error)?;
    state.verifications.wake();
    let status = if new {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let location = format!("/v1/audit/verifications/{}", run.id);
    Ok((status, [(header::LOCATION, location)], Json(run)).into_response())
}

/// A verification run: how far it got, and once done whether every event verified
/// (auditors).
#[utoipa::path(get, path = "/v1/audit/verifications/{id}", tag = "audit",
    params(("id" = String, Path)),
    responses((status = 200, body = VerificationRun), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn get(
    State(state): State<QueryState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<VerificationRun>, ApiError> {
    caller.authorize(Action::ReadAudit)?;
    match state
        .verifications
        .runs
        .get(&id)
        .await
        .map_err(read_error)?
    {
        Some(run) => Ok(Json(run)),
        None => Err(ApiError::NotFound(format!("no verification run {id}"))),
    }
}

/// Verification runs, newest first (auditors).
#[utoipa::path(get, path = "/v1/audit/verifications", tag = "audit",
    params(("limit" = Option<i64>, Query, description = "1 to 200, default 50"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = Page<VerificationRun>), (status = 400), (status = 403)),
    security(("bearer" = [])))]
pub(crate) async fn list(
    State(state): State<QueryState>,
    caller: Caller,
    AppQuery(params): AppQuery<PageParams>,
) -> Result<Json<Page<VerificationRun>>, ApiError> {
    caller.authorize(Action::ReadAudit)?;
    let limit = params.limit();
    Ok(Json(
        state
            .verifications
            .runs
            .list(limit, params.cursor.as_deref())
            .await
            .map_err(read_error)?,
    ))
}
