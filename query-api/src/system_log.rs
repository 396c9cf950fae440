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
    params(("level" = Option<String>, Query), ("category" = Option<String>, Query), ("actor" = Option<String>, Query, description = "a staff id or username"),
        ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("limit" = Option<i64>, Query, description = "1 to 200, default 50"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = Page<LogEntry>), (status = 403)), security(("bearer" = [])))]
pub(crate) async fn list(
    State(state): State<QueryState>,
    caller: Caller,
    AppQuery(params): AppQuery<LogParams>,
) -> Result<Json<Page<LogEntry>>, ApiError> {
    caller.authorize(Action::ReadSystemLog)?;
    let pool = state.read.pool();
    // The actor by id, or by username (looked up in the staff read model; a name that
    // is no one's matches nothing).
    let actor = match params.actor.filter(|a| !a.trim().is_empty()) {
        Some(actor) if uuid::Uuid::parse_str(&actor).is_err() => Some(
            projections::models::staff::id_of(&pool, actor.trim())
                .await
                .map_err(read_error)?
                .unwrap_or(actor),
        ),
        other => other,
    };
    let filter = LogFilter {
        level: params.level,
        category: params.category,
        actor,
        from: time_bound(params.from.as_deref(), "from")?,
        to: time_bound(params.to.as_deref(), "to")?,
        limit: params.page.limit(),
        cursor: params.page.cursor,
    };
    let mut page = state.log.list(filter).await.map_err(read_error)?;
    let mut ids: Vec<String> = page
        .items
        .iter()
        .filter_map(|e| e.actor_id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    let names = projections::models::staff::usernames(&pool, &ids)
        .await
        .map_err(read_error)?;
    for entry in &mut page.items {
        entry.actor_username = entry
            .actor_id
            .as_ref()
            .and_then(|id| names.get(id).cloned());
    }
    Ok(Json(page))
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
