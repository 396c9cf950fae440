//! Gathering work for one commit: what the group writers (appends on SQLite and
//! PostgreSQL, idempotency records on SQLite) share.

use cqrs_es::persist::SerializedEvent;
use tokio::sync::mpsc;

/// `first` and every item already waiting behind it, up to `max` in all: the busier
/// the store, the larger the group.
pub(crate) fn gather<T>(first: T, queue: &mut mpsc::Receiver<T>, max: usize) -> Vec<T> {
    let mut group = vec![first];
    while group.len() < max {
        match queue.try_recv() {
            Ok(next) => group.push(next),
            Err(_) => break,
        }
    }
    group
}

/// An event as the row it is stored as. Payload and metadata are the JSON text stored,
/// printed once, by the appending task: not on the group writer's one path.
pub(crate) struct Row {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: String,
    pub metadata: String,
}

impl Row {
    pub(crate) fn of(event: &SerializedEvent) -> Row {
        Row {
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence as i64,
            event_type: event.event_type.clone(),
            event_version: event.event_version.clone(),
            payload: event.payload.to_string(),
            metadata: event.metadata.to_string(),
        }
    }
}
