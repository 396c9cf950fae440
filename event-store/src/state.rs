//! An aggregate's state as the store hands it out: loaded to decide a command on, or
//! as of a point in its stream for an auditor.

use cqrs_es::persist::SerializedEvent;
use cqrs_es::Aggregate;
use domain::metadata::{HASH, OCCURRED_AT};
use serde_json::Value;

/// Which state to read: the latest, or as of a version or a time (RFC 3339 in UTC,
/// compared as text, as events record it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf<'a> {
    Latest,
    Version(u64),
    Time(&'a str),
}

/// An aggregate's state as of a point in its stream.
#[derive(Debug, Clone)]
pub struct StateAt<A> {
    pub aggregate: A,
    /// The last event folded in (0: none, the stream had not started by then).
    pub version: u64,
    /// The stream's length now.
    pub latest_version: u64,
}

/// An aggregate as loaded: its state, its version (the last sequence) and the hash of its
/// last event, which the next event links to.
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    pub aggregate: A,
    pub version: u64,
    pub(crate) last_hash: String,
    /// The latest time among its events (a snapshot records it, so a state as of a
    /// time starts only from a snapshot wholly before that time).
    pub(crate) latest_time: String,
}

impl<A: Aggregate> Loaded<A> {
    pub fn exists(&self) -> bool {
        self.version > 0
    }

    /// The state after `events` were appended as `sealed` (what `append` returned), so a
    /// writer of many batches need not reload the stream between them.
    pub fn advanced(mut self, events: Vec<A::Event>, sealed: &[SerializedEvent]) -> Self {
        if let Some(last) = sealed.last() {
            self.version = last.sequence as u64;
            self.last_hash = last
                .metadata
                .get(HASH)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
        }
        for event in sealed {
            if let Some(time) = event.metadata.get(OCCURRED_AT).and_then(Value::as_str) {
                if time > self.latest_time.as_str() {
                    self.latest_time = time.to_string();
                }
            }
        }
        for event in events {
            self.aggregate.apply(event);
        }
        self
    }
}
