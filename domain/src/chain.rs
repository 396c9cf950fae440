//! The hash chain that lets an auditor prove a stream was not altered: each event's hash
//! is SHA-256 over a canonical encoding of its stream, sequence, type, version, payload
//! and metadata (which includes the previous event's hash).

use cqrs_es::persist::SerializedEvent;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::metadata::{HASH, PREVIOUS_HASH};

/// The `previous_hash` of a stream's first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of `event` as stored, ignoring any `hash` already in its metadata.
pub fn event_hash(event: &SerializedEvent) -> String {
    let mut metadata = event.metadata.clone();
    if let Value::Object(map) = &mut metadata {
        map.remove(HASH);
    }
    let mut encoded = String::with_capacity(512);
    encode_canonical(
        &serde_json::json!({
            "aggregate_type": event.aggregate_type,
            "aggregate_id": event.aggregate_id,
            "sequence": event.sequence,
            "event_type": event.event_type,
            "event_version": event.event_version,
            "payload": event.payload,
            "metadata": metadata,
        }),
        &mut encoded,
    );
    hex::encode(Sha256::digest(encoded.as_bytes()))
}

/// JSON with object keys sorted at every depth and no insignificant whitespace, so the
/// encoding does not depend on map ordering or on serde_json's feature flags.
fn encode_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (index, key) in keys.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                encode_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                encode_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn metadata_str<'a>(event: &'a SerializedEvent, key: &str) -> Option<&'a str> {
    event.metadata.get(key).and_then(Value::as_str)
}

/// What is wrong with one event of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum ChainProblem {
    /// The sequence is not the one that should follow (an event was deleted, inserted or
    /// renumbered).
    SequenceGap { expected: usize, found: usize },
    /// `previous_hash` does not name the hash of the event before it (reordered, deleted
    /// or inserted).
    BrokenLink,
    /// The stored hash does not match the event's content (modified).
    HashMismatch,
    /// The event carries no hash at all.
    MissingHash,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainFailure {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: usize,
    #[serde(flatten)]
    pub problem: ChainProblem,
}

/// Checks one stream, given in stored order. Returns every failure found.
pub fn verify_stream(events: &[SerializedEvent]) -> Vec<ChainFailure> {
    let mut failures = Vec::new();
    let mut previous_hash = GENESIS_HASH.to_string();
    let mut expected_sequence = 1;
    for event in events {
        let mut fail = |problem| {
            failures.push(ChainFailure {
                aggregate_type: event.aggregate_type.clone(),
                aggregate_id: event.aggregate_id.clone(),
                sequence: event.sequence,
                problem,
            })
        };
        if event.sequence != expected_sequence {
            fail(ChainProblem::SequenceGap {
                expected: expected_sequence,
                found: event.sequence,
            });
        }
        if metadata_str(event, PREVIOUS_HASH) != Some(previous_hash.as_str()) {
            fail(ChainProblem::BrokenLink);
        }
        match metadata_str(event, HASH) {
            None => fail(ChainProblem::MissingHash),
            Some(stored) if stored != event_hash(event) => fail(ChainProblem::HashMismatch),
            Some(_) => {}
        }
        previous_hash = metadata_str(event, HASH).unwrap_or_default().to_string();
        expected_sequence = event.sequence + 1;
    }
    failures
}

/// Adds `previous_hash` and `hash` to `event`'s metadata, linking it after `previous`.
pub fn seal(event: &mut SerializedEvent, previous: &str) {
    if let Value::Object(map) = &mut event.metadata {
        map.insert(PREVIOUS_HASH.into(), Value::String(previous.to_string()));
        map.remove(HASH);
    }
    let hash = event_hash(event);
    if let Value::Object(map) = &mut event.metadata {
        map.insert(HASH.into(), Value::String(hash));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stream(n: usize) -> Vec<SerializedEvent> {
        let mut previous = GENESIS_HASH.to_string();
        (1..=n)
            .map(|sequence| {
                let mut event = SerializedEvent::new(
                    "stream-1".into(),
                    sequence,
                    "account".into(),
                    "MoneyDeposited".into(),
                    "1".into(),
                    json!({"MoneyDeposited": {"amount": sequence}}),
                    json!({"actor_id": "a", "occurred_at": "2026-01-01T00:00:00Z"}),
                );
                seal(&mut event, &previous);
                previous = event.metadata[HASH].as_str().unwrap().to_string();
                event
            })
            .collect()
    }

    fn problems(events: &[SerializedEvent]) -> Vec<(usize, ChainProblem)> {
        verify_stream(events)
            .into_iter()
            .map(|failure| (failure.sequence, failure.problem))
            .collect()
    }

    #[test]
    fn an_untouched_stream_verifies() {
        assert!(verify_stream(&stream(5)).is_empty());
        assert!(verify_stream(&[]).is_empty());
    }

    #[test]
    fn the_encoding_ignores_key_order() {
        let a = json!({"b": 1, "a": {"d": [1, {"y": 2, "x": 1}], "c": "é"}});
        let mut first = String::new();
        encode_canonical(&a, &mut first);
        assert_eq!(first, r#"{"a":{"c":"é","d":[1,{"x":1,"y":2}]},"b":1}"#);
    }

    #[test]
    fn a_modified_payload_is_named() {
        let mut events = stream(3);
        events[1].payload = json!({"MoneyDeposited": {"amount": 1000}});
        assert_eq!(problems(&events), [(2, ChainProblem::HashMismatch)]);
    }

    #[test]
    fn modified_metadata_is_named() {
        let mut events = stream(3);
        events[2].metadata["actor_id"] = json!("mallory");
        assert_eq!(problems(&events), [(3, ChainProblem::HashMismatch)]);
    }

    #[test]
    fn a_deleted_event_is_named() {
        let mut events = stream(4);
        events.remove(1);
        assert_eq!(
            problems(&events),
            [
                (
                    3,
                    ChainProblem::SequenceGap {
                        expected: 2,
                        found: 3
                    }
                ),
                (3, ChainProblem::BrokenLink)
            ]
        );
    }

    #[test]
    fn reordered_events_are_named() {
        let mut events = stream(4);
        events.swap(1, 2);
        let found = problems(&events);
        assert!(found.contains(&(3, ChainProblem::BrokenLink)));
        assert!(found.contains(&(2, ChainProblem::BrokenLink)));
    }

    #[test]
    fn a_renumbered_insertion_is_named() {
        let mut events = stream(3);
        let mut forged = events[1].clone();
        forged.payload = json!({"MoneyDeposited": {"amount": 99}});
        seal(&mut forged, events[0].metadata[HASH].as_str().unwrap());
        events.insert(1, forged);
        for (index, event) in events.iter_mut().enumerate() {
            event.sequence = index + 1;
        }
        let found = problems(&events);
        assert!(
            found.iter().any(|(_, p)| *p == ChainProblem::HashMismatch),
            "{found:?}"
        );
    }

    #[test]
    fn a_missing_hash_is_named() {
        let mut events = stream(2);
        events[1].metadata.as_object_mut().unwrap().remove(HASH);
        assert_eq!(problems(&events), [(2, ChainProblem::MissingHash)]);
    }
}
