//! What followers of the store read: events with their position in commit order (see
//! [`crate::capabilities::CommitFeed`]), and notices of this process's appends.

use cqrs_es::persist::SerializedEvent;
use serde_json::Value;

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
