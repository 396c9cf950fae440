//! The auditors' endpoints: a stream's events with their metadata, the aggregate's state
//! as of a version or a time (replayed from the events through the aggregate itself),
//! hash-chain verification, and the audit log.

use api_kit::{ApiError, AppQuery, Caller};
use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use cqrs_es::Aggregate;
use domain::account::Account;
use domain::chain::ChainFailure;
use domain::client::Client;
use domain::metadata::OCCURRED_AT;
use domain::policy::Action;
use domain::staff::StaffUser;
use domain::transfer::Transfer;
use projections::models::audit_log::{self, AuditEntry, AuditFilter};
use projections::page::{decode_cursor, paginate, Page};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::params::{read_error, time_bound, PageParams};
use crate::QueryState;

const AGGREGATE_TYPES: [&str; 4] = ["client", "account", "staff", "transfer"];

fn aggregate_type(value: &str) -> Result<&'static str, ApiError> {
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

async fn stream(
    state: &QueryState,
    kind: &str,
    id: &str,
) -> Result<Vec<SerializedEvent>, ApiError> {
    let events = state.store.stream(kind, id).await?;
    if events.is_empty() {
        return Err(ApiError::NotFound(format!("no {kind} stream with id {id}")));
    }
    Ok(events)
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
    let after = match &params.cursor {
        Some(cursor) => decode_cursor(cursor, 1)
            .ok()
            .and_then(|key| key[0].parse::<usize>().ok())
            .ok_or(ApiError::BadRequest {
                code: "invalid-cursor",
                detail: "the cursor is not one this API gave out".into(),
            })?,
        None => 0,
    };
    let views = stream(&state, kind, &id)
        .await?
        .into_iter()
        .filter(|event| event.sequence > after)
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

/// Replays `events` through aggregate `A`.
fn replay<A: Aggregate>(events: &[SerializedEvent]) -> Result<Value, ApiError> {
    let mut aggregate = A::default();
    for event in events {
        let payload: A::Event = domain::upcast::decode(event).map_err(|e| {
            ApiError::Internal(format!(
                "event {} of {} cannot be read: {e}",
                event.sequence, event.aggregate_id
            ))
        })?;
        aggregate.apply(payload);
    }
    serde_json::to_value(&aggregate).map_err(|e| ApiError::Internal(e.to_string()))
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
    if params.version.is_some() && as_of.is_some() {
        return Err(ApiError::BadRequest {
            code: "invalid-query",
            detail: "give version or as_of, not both".into(),
        });
    }
    let all = stream(&state, kind, &id).await?;
    let latest = all.len();
    let events: Vec<SerializedEvent> = all
        .into_iter()
        .take_while(|event| {
            let by_version = params
                .version
                .is_none_or(|version| event.sequence as i64 <= version);
            let by_time = as_of.as_deref().is_none_or(|bound| {
                let occurred = event
                    .metadata
                    .get(OCCURRED_AT)
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                occurred <= bound
            });
            by_version && by_time
        })
        .collect();
    if let Some(version) = params.version {
        if version < 1 || version as usize > latest {
            return Err(ApiError::NotFound(format!(
                "the stream has {latest} events; there is no version {version}"
            )));
        }
    }
    let replayed = match kind {
        "client" => replay::<Client>(&events)?,
        "account" => replay::<Account>(&events)?,
        "staff" => replay::<StaffUser>(&events)?,
        _ => replay::<Transfer>(&events)?,
    };
    Ok(Json(json!({
        "aggregate_type": kind,
        "id": id,
        "version": events.len(),
        "latest_version": latest,
        "as_of": as_of,
        "state": if events.is_empty() { Value::Null } else { replayed },
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
