//! Following the store in commit order: what projectors read. In SQLite (one writer) the
//! rowid order is the commit order, so a projector that remembers the last rowid it
//! applied misses nothing. Appends signal a `Notify`, so a follower wakes at once.

use cqrs_es::persist::SerializedEvent;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::Notify;

use crate::backend::Backend;
use crate::error::StoreError;
use crate::store::EventStore;

/// An event with its position in the store's commit order.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub position: i64,
    pub event: SerializedEvent,
}

/// What one append committed (which stream, which event types), for followers in the
/// same process; they read the events themselves if they need them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub event_types: Vec<String>,
}

/// The position of an event that arrives without one (through EventBridge and SQS, or
/// read from a store with no commit order): its time in microseconds. Not unique — the
/// events of one command share it — so readers order by it and break ties by stream and
/// sequence.
pub fn time_position(event: &SerializedEvent) -> i64 {
    event
        .metadata
        .get(domain::metadata::OCCURRED_AT)
        .and_then(Value::as_str)
        .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
        .map_or(0, |time| time.timestamp_micros())
}

type Row = (i64, String, String, i64, String, String, String, String);

fn from_row((position, t, i, s, e, v, p, m): Row) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        position,
        event: SerializedEvent::new(
            i,
            s as usize,
            t,
            e,
            v,
            serde_json::from_str::<Value>(&p)?,
            serde_json::from_str::<Value>(&m)?,
        ),
    })
}

const COLUMNS: &str =
    "rowid, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata";

impl EventStore {
    /// Signalled after every append.
    pub fn commits(&self) -> Arc<Notify> {
        self.commits.clone()
    }

    /// Every later append made through this store (by this process), as it commits. A
    /// receiver that falls more than 1,024 appends behind is told it lagged.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Appended>> {
        self.committed.subscribe()
    }

    /// Up to `limit` events committed after `position`, in commit order.
    pub async fn read_after(
        &self,
        position: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let Backend::Sqlite { pool, .. } = &self.backend else {
            return Err(StoreError::Unsupported(
                "following the store in commit order needs the SQLite backend; in AWS, events reach projectors through EventBridge",
            ));
        };
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM events WHERE rowid > $1 ORDER BY rowid LIMIT $2"
        ))
        .bind(position)
        .bind(limit)
        .fetch_all(pool)
        .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// The events of one stream after `sequence`, with their positions: how a projector
    /// fills a gap.
    pub async fn stream_after(
        &self,
        aggregate_type: &str,
        id: &str,
        sequence: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        if !matches!(self.backend, Backend::Sqlite { .. }) {
            // No commit-order positions outside SQLite: time positions, as delivered events get.
            let events = self.stream(aggregate_type, id).await?;
            return Ok(events
                .into_iter()
                .filter(|event| event.sequence as i64 > sequence)
                .map(|event| StoredEvent {
                    position: time_position(&event),
                    event,
                })
                .collect());
        }
        let Backend::Sqlite { pool, .. } = &self.backend else {
            return Err(StoreError::Unsupported(
                "positions exist only in the SQLite store",
            ));
        };
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 ORDER BY sequence"
        ))
        .bind(aggregate_type)
        .bind(id)
        .bind(sequence)
        .fetch_all(pool)
        .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// The position of the last committed event (0 when empty).
    pub async fn head(&self) -> Result<i64, StoreError> {
        let Backend::Sqlite { pool, .. } = &self.backend else {
            return Err(StoreError::Unsupported(
                "positions exist only in the SQLite store",
            ));
        };
        let (head,): (Option<i64>,) = sqlx::query_as("SELECT MAX(rowid) FROM events")
            .fetch_one(pool)
            .await?;
        Ok(head.unwrap_or(0))
    }
}
