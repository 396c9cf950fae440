//! The system log for admins, and the rebuild of the read models.

use api_kit::{ApiError, AppQuery, Caller};
use axum::extract::State;
use axum::Json;
use domain::policy::Action;
use projections::page::Page;
use projections::system_log::{LogEntry, LogFilter};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::params::{read_error, time_bound, PageParams};
use crate::QueryState;

#[derive(Debug, Deserialize)]
pub(crate) struct LogParams {
    level: Option<String>,
    category: Option<String>,
    actor: Option<String>,
    from: Option<String>,
    to: Option<String>,
    #[serde(flatten)]
    page: PageParams,
}

/// The system log, newest first (admins and the root admin).
#[utoipa::path(get, path = "/v1/system-log", tag = "operations",
    params(("level" = Option<String>, Query), ("category" = Option<String>, Query), ("actor" = Option<String>, Query),
        ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("limit" = Option<i64>, Query, description = "1 to 200, default 50"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = Page<LogEntry>), (status = 403)), security(("bearer" = [])))]
pub(crate) async fn list(
    State(state): State<QueryState>,
    caller: Caller,
    AppQuery(params): AppQuery<LogParams>,
) -> Result<Json<Page<LogEntry>>, ApiError> {
    caller.authorize(Action::ReadSystemLog)?;
    let filter = LogFilter {
        level: params.level,
        category: params.category,
        actor: params.actor,
        from: time_bound(params.from.as_deref(), "from")?,
        to: time_bound(params.to.as_deref(), "to")?,
        limit: params.page.limit(),
        cursor: params.page.cursor,
    };
    Ok(Json(state.log.list(filter).await.map_err(read_error)?))
}

/// Rebuilds every read model from the event store into a fresh copy and swaps it in.
/// Rebuild every read model from the event store and swap it in (admins).
#[utoipa::path(post, path = "/v1/admin/rebuild", tag = "operations", responses((status = 200), (status = 403)), security(("bearer" = [])))]
pub(crate) async fn rebuild(
    State(state): State<QueryState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.authorize(Action::RebuildReadModels)?;
    let position = state
        .rebuild
        .rebuild()
        .await
        .map_err(ApiError::Unavailable)?;
    state
        .log
        .record_or_warn(
            LogEntry::new("info", "projection", "read models rebuilt")
                .actor(caller.id.clone(), Some(caller.role.as_str()))
                .details(json!({"position": position})),
        )
        .await;
    Ok(Json(json!({"status": "rebuilt", "position": position})))
}
