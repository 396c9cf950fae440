//! Staff lists and details, for admins and the root admin.

use api_kit::{ApiError, AppQuery, Caller};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use domain::policy::Action;
use projections::models::staff::{self, StaffFilter, StaffSort, StaffView};
use projections::page::Page;
use serde::Deserialize;

use crate::params::{detail, read_error, sort, PageParams};
use crate::QueryState;

#[derive(Debug, Deserialize)]
pub(crate) struct StaffParams {
    role: Option<String>,
    status: Option<String>,
    sort: Option<String>,
    #[serde(flatten)]
    page: PageParams,
}

/// Staff, by username unless sorted otherwise, with the total (admins and the root admin).
#[utoipa::path(get, path = "/v1/staff", tag = "staff", params(("role" = Option<String>, Query), ("status" = Option<String>, Query),
    ("sort" = Option<String>, Query, description = "username (default), name or role"), ("limit" = Option<i64>, Query, description = "1 to 200, default 50"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = Page<StaffView>), (status = 400, description = "Unknown sort or a cursor of another sort"), (status = 403)), security(("bearer" = [])))]
pub(crate) async fn list(
    State(state): State<QueryState>,
    caller: Caller,
    AppQuery(params): AppQuery<StaffParams>,
) -> Result<Json<Page<StaffView>>, ApiError> {
    caller.authorize(Action::ReadStaff)?;
    let filter = StaffFilter {
        sort: sort(
            params.sort.as_deref(),
            StaffSort::parse,
            "username, name or role",
        )?,
        role: params.role,
        status: params.status,
        limit: params.page.limit(),
        cursor: params.page.cursor,
    };
    let mut page = staff::list(&state.read.pool(), filter)
        .await
        .map_err(read_error)?;
    let ids: Vec<String> = page.items.iter().map(|m| m.id.clone()).collect();
    let last = state.log.last_sign_ins(&ids).await.map_err(read_error)?;
    for member in &mut page.items {
        member.last_sign_in_at = last.get(&member.id).cloned();
    }
    Ok(Json(page))
}

/// One member of staff.
#[utoipa::path(get, path = "/v1/staff/{id}", tag = "staff", params(("id" = String, Path)),
    responses((status = 200, body = StaffView), (status = 403), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn get(
    State(state): State<QueryState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.authorize(Action::ReadStaff)?;
    let view = staff::get(&state.read.pool(), &id)
        .await
        .map_err(read_error)?;
    // Without the last sign-in: the answer's ETag is its version, which a sign-in does not
    // change (the list carries it).
    let view =
        view.ok_or_else(|| ApiError::NotFound(format!("no member of staff with id {id}")))?;
    Ok(detail(view.version, view))
}
