//! The audit log: every event, who caused it, when, and in which request chain.

use serde::Serialize;
use sqlx::{AnyConnection, AnyPool, FromRow};

use crate::envelope::Envelope;
use crate::error::ProjectionError;
use crate::page::{bind_all, count, decode_cursor, paginate, Page, Param, PendingRows, Select};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, utoipa::ToSchema)]
pub struct AuditEntry {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub actor_id: String,
    pub actor_role: String,
    /// The actor's username, from the staff read model (none for the system or a
    /// worker).
    #[sqlx(default)]
    pub actor_username: Option<String>,
    pub correlation_id: String,
    pub causation_id: String,
    pub occurred_at: String,
}

pub(crate) const INSERT: &str =
    "INSERT INTO audit_log (aggregate_type, aggregate_id, sequence, position, event_type, \
     actor_id, actor_role, correlation_id, causation_id, occurred_at) VALUES";
pub(crate) const COLUMNS: usize = 10;

pub(crate) fn row(e: &Envelope<'_>) -> Vec<Param> {
    vec![
        Param::Text(e.aggregate_type().to_string()),
        Param::Text(e.aggregate_id().to_string()),
        Param::Int(e.sequence()),
        Param::Int(e.stored.position),
        Param::Text(e.stored.event.event_type.clone()),
        Param::Text(e.actor_id.clone()),
        Param::Text(e.actor_role.clone()),
        Param::Text(e.correlation_id.clone()),
        Param::Text(e.causation_id.clone()),
        Param::Text(e.occurred_at.clone()),
    ]
}

pub(crate) async fn apply(
    conn: &mut AnyConnection,
    e: &Envelope<'_>,
) -> Result<(), ProjectionError> {
    let mut rows = PendingRows::new(INSERT, COLUMNS);
    rows.push(row(e));
    rows.flush(conn).await
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub aggregate_type: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub cursor: Option<String>,
    pub limit: i64,
}

/// Newest first.
pub async fn list(
    pool: &AnyPool,
    filter: AuditFilter,
) -> Result<Page<AuditEntry>, ProjectionError> {
    let mut select = Select::new(
        "SELECT position, aggregate_type, aggregate_id, sequence, event_type, actor_id, actor_role, \
         staff.username AS actor_username, correlation_id, causation_id, occurred_at \
         FROM audit_log LEFT JOIN staff ON staff.id = audit_log.actor_id",
    );
    // By id or by username.
    if let Some(actor) = filter.actor {
        select.and(
            "(actor_id = ? OR staff.username = ?)",
            [Param::Text(actor.clone()), Param::Text(actor)],
        );
    }
    if let Some(kind) = filter.aggregate_type {
        select.and("aggregate_type = ?", [Param::Text(kind)]);
    }
    if let Some(from) = filter.from {
        select.and("occurred_at >= ?", [Param::Text(from)]);
    }
    if let Some(to) = filter.to {
        select.and("occurred_at < ?", [Param::Text(to)]);
    }
    let total = count(
        pool,
        select.count("FROM audit_log LEFT JOIN staff ON staff.id = audit_log.actor_id"),
    )
    .await?;
    if let Some(cursor) = &filter.cursor {
        let key = decode_cursor(cursor, 4)?;
        let position: i64 = key[0].parse().map_err(|_| ProjectionError::InvalidCursor)?;
        // Positions can tie (time positions from AWS delivery): break ties by stream.
        let sequence: i64 = key[3].parse().map_err(|_| ProjectionError::InvalidCursor)?;
        select.and(
            "(position, aggregate_type, aggregate_id, sequence) < (?, ?, ?, ?)",
            [
                Param::Int(position),
                Param::Text(key[1].clone()),
                Param::Text(key[2].clone()),
                Param::Int(sequence),
            ],
        );
    }
    let (sql, params) = select.build(
        "position DESC, aggregate_type DESC, aggregate_id DESC, sequence DESC",
        filter.limit,
    );
    let rows: Vec<AuditEntry> = bind_all(sqlx::query_as(&sql), params)
        .fetch_all(pool)
        .await?;
    Ok(paginate(rows, filter.limit, |a: &AuditEntry| {
        vec![
            a.position.to_string(),
            a.aggregate_type.clone(),
            a.aggregate_id.clone(),
            a.sequence.to_string(),
        ]
    })
    .counted(total))
}
