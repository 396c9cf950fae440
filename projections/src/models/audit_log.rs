//! The audit log: every event, who caused it, when, and in which request chain.

use serde::Serialize;
use sqlx::{AnyConnection, AnyPool, FromRow};

use crate::envelope::Envelope;
use crate::error::ProjectionError;
use crate::page::{bind_all, decode_cursor, paginate, Page, Param, Select};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct AuditEntry {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub actor_id: String,
    pub actor_role: String,
    pub correlation_id: String,
    pub causation_id: String,
    pub occurred_at: String,
}

pub(crate) async fn apply(
    conn: &mut AnyConnection,
    e: &Envelope<'_>,
) -> Result<(), ProjectionError> {
    sqlx::query(
        "INSERT INTO audit_log (aggregate_type, aggregate_id, sequence, position, event_type, actor_id, actor_role, \
         correlation_id, causation_id, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(e.aggregate_type())
    .bind(e.aggregate_id())
    .bind(e.sequence())
    .bind(e.stored.position)
    .bind(&e.stored.event.event_type)
    .bind(&e.actor_id)
    .bind(&e.actor_role)
    .bind(&e.correlation_id)
    .bind(&e.causation_id)
    .bind(&e.occurred_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
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
        "SELECT position, aggregate_type, aggregate_id, sequence, event_type, actor_id, actor_role, correlation_id, \
         causation_id, occurred_at FROM audit_log",
    );
    if let Some(actor) = filter.actor {
        select.and("actor_id = ?", [Param::Text(actor)]);
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
    if let Some(cursor) = &filter.cursor {
        let position: i64 = decode_cursor(cursor, 1)?[0]
            .parse()
            .map_err(|_| ProjectionError::InvalidCursor)?;
        select.and("position < ?", [Param::Int(position)]);
    }
    let (sql, params) = select.build("position DESC", filter.limit);
    let rows: Vec<AuditEntry> = bind_all(sqlx::query_as(&sql), params)
        .fetch_all(pool)
        .await?;
    Ok(paginate(rows, filter.limit, |a: &AuditEntry| {
        vec![a.position.to_string()]
    }))
}
