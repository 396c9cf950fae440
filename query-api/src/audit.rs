//! The auditors' endpoints: a stream's events with their metadata, the aggregate's state
//! as of a version or a time (replayed from the events through the aggregate itself),
//! hash-chain verification, and the audit log.

use api_kit::{ApiError, AppQuery, Caller};
use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use domain::account::Account;
use domain::chain::ChainFailure;
use domain::client::Client;
use domain::policy::Action;
use domain::snapshot::Snapshotted;
use domain::staff::StaffUser;
use domain::transfer::Transfer;
use event_store::AsOf;
use projections::models::audit_log::{self, AuditEntry, AuditFilter};
use projections::page::{paginate, Page};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::params::{number_cursor, read_error, time_bound, PageParams};
use crate::QueryState;

pub(crate) const AGGREGATE_TYPES: [&str; 4] = ["client", "account", "staff", "transfer"];

pub(crate) fn aggregate_type(value: &str) -> Result<&'static str, ApiError> {
    AGGREGATE_TYPES
        .into_iter()
        .find(|known| *known == value)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no aggregate type {value}; use one of {}",
                AGGREGATE_TYPES.join(", ")
            ))
        })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EventView {
    sequence: usize,
    event_type: String,
    event_version: String,
    payload: Value,
    metadata: Value,
}

/// A stream's events in order, with metadata and hashes (auditors).
#[utoipa::path(get, path = "/v1/audit/streams/{aggregate_type}/{id}/events", tag = "audit",
    params(("aggregate_type" = String, Path, description = "client, account, staff or transfer"), ("id" = String, Path), ("limit" = Option<i64>, Query, description = "1 to 200, default 50"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = Page<EventView>), (status = 403), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn events(
    State(state): State<QueryState>,
    caller: Caller,
    Path((kind, id)): Path<(String, String)>,
    AppQuery(params): AppQuery<PageParams>,
) -> Result<Json<Page<EventView>>, ApiError> {
    caller.authorize(Action::ReadAudit)?;
    let kind = aggregate_type(&kind)?;
    let after = number_cursor(params.cursor.as_deref())?.unwrap_or(0);
    // One page (and one more, to know whether another follows) from the cursor on, not
    // the whole stream: a busy account's stream runs to hundreds of thousands.
    let events = state
        .store
        .stream_from(
            kind,
            &id,
            after.saturating_add(1),
            params.limit() as u64 + 1,
        )
        .await?;
    if events.is_empty() && (after == 0 || state.store.stream_length(kind, &id).await? == 0) {
        return Err(ApiError::NotFound(format!("no {kind} stream with id {id}")));
    }
    let views = events
        .into_iter()
        .map(|event| EventView {
            sequence: event.sequence,
            event_type: event.event_type,
            event_version: event.event_version,
            payload: event.payload,
            metadata: event.metadata,
        })
        .take(params.limit() as usize + 1)
        .collect();
    Ok(Json(paginate(views, params.limit(), |e: &EventView| {
        vec![e.sequence.to_string()]
    })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct StateParams {
    #[serde(default, deserialize_with = "crate::params::number")]
    version: Option<i64>,
    as_of: Option<String>,
}

/// The state of `A`'s stream `id` as of `as_of` (from the nearest snapshot below it and
/// the events after), its version then and the stream's length now.
async fn state_of<A: Snapshotted + Serialize>(
    state: &QueryState,
    id: &str,
    as_of: AsOf<'_>,
) -> Result<Option<(Value, u64, u64)>, ApiError> {
    let Some(at) = state.store.state_at::<A>(id, as_of).await? else {
        return Ok(None);
    };
    let value =
        serde_json::to_value(&at.aggregate).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Some((value, at.version, at.latest_version)))
}

/// The aggregate's state as of a version or a time, replayed from its events (auditors).
#[utoipa::path(get, path = "/v1/audit/streams/{aggregate_type}/{id}/state", tag = "audit",
    params(("aggregate_type" = String, Path), ("id" = String, Path), ("version" = Option<i64>, Query), ("as_of" = Option<String>, Query)),
    responses((status = 200), (status = 400), (status = 403), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn state(
    State(state): State<QueryState>,
    caller: Caller,
    Path((kind, id)): Path<(String, String)>,
    AppQuery(params): AppQuery<StateParams>,
) -> Result<Json<Value>, ApiError> {
    caller.authorize(Action::ReadAudit)?;
    let kind = aggregate_type(&kind)?;
    let as_of = time_bound(params.as_of.as_deref(), "as_of")?;
    let bound = match (params.version, as_of.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest {
                code: "invalid-query",
                detail: "give version or as_of, not both".into(),
            })
        }
        (Some(version), None) => AsOf::Version(u64::try_from(version).unwrap_or(0)),
        (None, Some(time)) => AsOf::Time(time),
        (None, None) => AsOf::Latest,
    };
    let found = match kind {
        "client" => state_of::<Client>(&state, &id, bound).await?,
        "account" => state_of::<Account>(&state, &id, bound).await?,
        "staff" => state_of::<StaffUser>(&state, &id, bound).await?,
        _ => state_of::<Transfer>(&state, &id, bound).await?,
    };
    let Some((replayed, version, latest)) = found else {
        return Err(ApiError::NotFound(format!("no {kind} stream with id {id}")));
    };
    if let Some(wanted) = params.version {
        if wanted < 1 || wanted as u64 > latest {
            return Err(ApiError::NotFound(format!(
                "the stream has {latest} events; there is no version {wanted}"
            )));
        }
    }
    Ok(Json(json!({
        "aggregate_type": kind,
        "id": id,
        "version": version,
        "latest_version": latest,
        "as_of": as_of,
        "state": if version == 0 { Value::Null } else { replayed },
    })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct VerifyParams {
    aggregate_type: Option<String>,
    id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Verification {
    ok: bool,
    streams_checked: usize,
    events_checked: usize,
    #[schema(value_type = Vec<Object>)]
    failures: Vec<ChainFailure>,
    checked_at: DateTime<Utc>,
}

/// Hash-chain verification of one stream or all (auditors).
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit",
    params(("aggregate_type" = Option<String>, Query), ("id" = Option<String>, Query)),
    responses((status = 200, body = Verification), (status = 403)), security(("bearer" = [])))]
pub(crate) async fn verify(
    State(state): State<QueryState>,
    caller: Caller,
    AppQuery(params): AppQuery<VerifyParams>,
) -> Result<Json<Verification>, ApiError> {
    caller.authorize(Action::ReadAudit)?;
    let check = match (params.aggregate_type.as_deref(), params.id) {
        (Some(kind), Some(id)) => {
            state
                .store
                .verify_chains(&[(aggregate_type(kind)?, id)])
                .await?
        }
        (None, None) => state.store.verify_all_chains(&AGGREGATE_TYPES).await?,
        _ => {
            return Err(ApiError::BadRequest {
                code: "invalid-query",
                detail: "give both aggregate_type and id, or neither".into(),
            })
        }
    };
    let mut verification = Verification {
        ok: true,
        streams_checked: check.streams,
        events_checked: check.events,
        failures: check.failures,
        checked_at: Utc::now(),
    };
    verification.ok = verification.failures.is_empty();
    if !verification.ok {
        tracing::warn!(
            failures = verification.failures.len(),
            "hash-chain verification found tampering"
        );
    }
    Ok(Json(verification))
}

#[derive(Debug, Deserialize)]
pub(crate) struct LogParams {
    actor: Option<String>,
    aggregate_type: Option<String>,
    from: Option<String>,
    to: Option<String>,
    #[serde(flatten)]
    page: PageParams,
}

/// The audit log, newest first (auditors).
#[utoipa::path(get, path = "/v1/audit/log", tag = "audit",
    params(("actor" = Option<String>, Query, description = "a staff id or username"), ("aggregate_type" = Option<String>, Query), ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("limit" = Option<i64>, Query, description = "1 to 200, default 50"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = Page<AuditEntry>), (status = 403)), security(("bearer" = [])))]
pub(crate) async fn log(
    State(state): State<QueryState>,
    caller: Caller,
    AppQuery(params): AppQuery<LogParams>,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    caller.authorize(Action::ReadAudit)?;
    let filter = AuditFilter {
        actor: params.actor,
        aggregate_type: params.aggregate_type,
        from: time_bound(params.from.as_deref(), "from")?,
        to: time_bound(params.to.as_deref(), "to")?,
        limit: params.page.limit(),
        cursor: params.page.cursor,
    };
    Ok(Json(
        audit_log::list(&state.read.pool(), filter)
            .await
            .map_err(read_error)?,
    ))
}
