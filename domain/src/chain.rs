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

/// The hash of `event` as stored, ignoring any `hash` already in its metadata: SHA-256
/// of the canonical encoding of `{aggregate_id, aggregate_type, event_type,
/// event_version, metadata, payload, sequence}`. Written straight into one buffer, with
/// no copy of the payload or metadata: verification spends most of its time here.
pub fn event_hash(event: &SerializedEvent) -> String {
    hash_with(event_header(event), &event.metadata, |out| {
        encode_canonical(&event.payload, out)
    })
}

/// The hash [`event_hash`] gives an event whose payload is `payload_json`, taking the
/// text's bytes as they are instead of encoding a parsed payload. The store writes
/// payloads in canonical form, so for an unaltered event this equals its hash without
/// parsing the payload; a payload whose text is not canonical gives another hash (and
/// must then be parsed and encoded to be judged, see [`RawEvent`]).
pub fn event_hash_of_text(header: EventHeader<'_>, metadata: &Value, payload_json: &str) -> String {
    hash_with(header, metadata, |out| {
        out.extend_from_slice(payload_json.as_bytes())
    })
}

/// The fields of an event besides its payload and metadata.
#[derive(Debug, Clone, Copy)]
pub struct EventHeader<'a> {
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub sequence: usize,
    pub event_type: &'a str,
    pub event_version: &'a str,
}

fn event_header(event: &SerializedEvent) -> EventHeader<'_> {
    EventHeader {
        aggregate_type: &event.aggregate_type,
        aggregate_id: &event.aggregate_id,
        sequence: event.sequence,
        event_type: &event.event_type,
        event_version: &event.event_version,
    }
}

fn hash_with(
    header: EventHeader<'_>,
    metadata: &Value,
    payload: impl FnOnce(&mut Vec<u8>),
) -> String {
    let mut out = Vec::with_capacity(1024);
    // The outer object's keys, in sorted order.
    out.extend_from_slice(b"{\"aggregate_id\":");
    encode_str(header.aggregate_id, &mut out);
    out.extend_from_slice(b",\"aggregate_type\":");
    encode_str(header.aggregate_type, &mut out);
    out.extend_from_slice(b",\"event_type\":");
    encode_str(header.event_type, &mut out);
    out.extend_from_slice(b",\"event_version\":");
    encode_str(header.event_version, &mut out);
    out.extend_from_slice(b",\"metadata\":");
    match metadata {
        Value::Object(map) => encode_object(map, Some(HASH), &mut out),
        other => encode_canonical(other, &mut out),
    }
    out.extend_from_slice(b",\"payload\":");
    payload(&mut out);
    out.extend_from_slice(b",\"sequence\":");
    out.extend_from_slice(header.sequence.to_string().as_bytes());
    out.push(b'}');
    hex::encode(Sha256::digest(&out))
}

/// An event as read for verification: its payload still the JSON text it was stored as.
/// Checking it hashes that text directly; only when the text is not the canonical form
/// (so the quick hash cannot match) is it parsed and encoded canonically, so an event
/// whose payload was rewritten in another but equal form is judged on its content as
/// [`event_hash`] would judge it.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: usize,
    pub event_type: String,
    pub event_version: String,
    pub payload_json: String,
    pub metadata: Value,
}

impl RawEvent {
    fn header(&self) -> EventHeader<'_> {
        EventHeader {
            aggregate_type: &self.aggregate_type,
            aggregate_id: &self.aggregate_id,
            sequence: self.sequence,
            event_type: &self.event_type,
            event_version: &self.event_version,
        }
    }

    /// The hash of this event's content, `stored` being what the store says it is: when
    /// the text as stored gives it, that is the answer without parsing the payload;
    /// otherwise (not in canonical form, or altered) the content is parsed and encoded
    /// canonically. `None` for a payload that is not JSON.
    fn content_hash_against(&self, stored: &str) -> Option<String> {
        let quick = event_hash_of_text(self.header(), &self.metadata, &self.payload_json);
        if quick == stored {
            return Some(quick);
        }
        let payload = serde_json::from_str::<Value>(&self.payload_json).ok()?;
        Some(hash_with(self.header(), &self.metadata, |out| {
            encode_canonical(&payload, out)
        }))
    }
}

/// What the verifier needs of an event, however it was read.
pub trait Verifiable {
    fn aggregate_type(&self) -> &str;
    fn aggregate_id(&self) -> &str;
    fn sequence(&self) -> usize;
    fn metadata(&self) -> &Value;
    /// The hash of this event's content (SHA-256 of its canonical encoding, hex), given
    /// the hash stored with it (which a reader may use to skip work, never to decide);
    /// `None` when the content cannot be encoded (a payload that is not JSON).
    fn content_hash(&self, stored: &str) -> Option<String>;

    /// Whether `stored` is the hash of this event's content.
    fn hash_is(&self, stored: &str) -> bool {
        self.content_hash(stored).is_some_and(|hash| hash == stored)
    }

    /// The hash stored with the event (`None` when it carries none).
    fn stored_hash(&self) -> Option<&str> {
        self.metadata().get(HASH).and_then(Value::as_str)
    }
}

impl Verifiable for SerializedEvent {
    fn aggregate_type(&self) -> &str {
        &self.aggregate_type
    }
    fn aggregate_id(&self) -> &str {
        &self.aggregate_id
    }
    fn sequence(&self) -> usize {
        self.sequence
    }
    fn metadata(&self) -> &Value {
        &self.metadata
    }
    fn content_hash(&self, _stored: &str) -> Option<String> {
        Some(event_hash(self))
    }
}

impl Verifiable for RawEvent {
    fn aggregate_type(&self) -> &str {
        &self.aggregate_type
    }
    fn aggregate_id(&self) -> &str {
        &self.aggregate_id
    }
    fn sequence(&self) -> usize {
        self.sequence
    }
    fn metadata(&self) -> &Value {
        &self.metadata
    }
    fn content_hash(&self, stored: &str) -> Option<String> {
        self.content_hash_against(stored)
    }
}

/// JSON with object keys sorted at every depth and no insignificant whitespace, so the
/// encoding does not depend on map ordering or on serde_json's feature flags.
fn encode_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => encode_object(map, None, out),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                encode_canonical(item, out);
            }
            out.push(b']');
        }
        Value::String(text) => encode_str(text, out),
        // serde_json's compact form, as `Value::to_string` writes it.
        scalar => serde_json::to_writer(&mut *out, scalar).expect("writing to memory"),
    }
}

/// An object in key order, leaving out `skip`.
fn encode_object(map: &serde_json::Map<String, Value>, skip: Option<&str>, out: &mut Vec<u8>) {
    let mut entries: Vec<(&String, &Value)> = map
        .iter()
        .filter(|(key, _)| Some(key.as_str()) != skip)
        .collect();
    // Already sorted unless serde_json's `preserve_order` is on somewhere in the build.
    if !entries.is_sorted_by(|a, b| a.0 <= b.0) {
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    }
    out.push(b'{');
    for (index, (key, item)) in entries.into_iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        encode_str(key, out);
        out.push(b':');
        encode_canonical(item, out);
    }
    out.push(b'}');
}

fn encode_str(text: &str, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, text).expect("writing to memory");
}

fn metadata_str<'a>(event: &'a impl Verifiable, key: &str) -> Option<&'a str> {
    event.metadata().get(key).and_then(Value::as_str)
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
    StreamVerifier::default().check(events, &mut failures);
    failures
}

/// Checks one stream a part at a time (each part following the one before), so a long
/// stream need not be held whole.
#[derive(Debug, Clone)]
pub struct StreamVerifier {
    previous_hash: String,
    expected_sequence: usize,
}

impl Default for StreamVerifier {
    fn default() -> Self {
        StreamVerifier {
            previous_hash: GENESIS_HASH.to_string(),
            expected_sequence: 1,
        }
    }
}

impl StreamVerifier {
    /// Checks the next `events` of the stream, adding what is wrong to `failures`.
    pub fn check(&mut self, events: &[impl Verifiable], failures: &mut Vec<ChainFailure>) {
        for event in events {
            let mut fail = |problem| {
                failures.push(ChainFailure {
                    aggregate_type: event.aggregate_type().to_string(),
                    aggregate_id: event.aggregate_id().to_string(),
                    sequence: event.sequence(),
                    problem,
                })
            };
            if event.sequence() != self.expected_sequence {
                fail(ChainProblem::SequenceGap {
                    expected: self.expected_sequence,
                    found: event.sequence(),
                });
            }
            if metadata_str(event, PREVIOUS_HASH) != Some(self.previous_hash.as_str()) {
                fail(ChainProblem::BrokenLink);
            }
            match metadata_str(event, HASH) {
                None => fail(ChainProblem::MissingHash),
                Some(stored) if !event.hash_is(stored) => fail(ChainProblem::HashMismatch),
                Some(_) => {}
            }
            self.previous_hash = metadata_str(event, HASH).unwrap_or_default().to_string();
            self.expected_sequence = event.sequence() + 1;
        }
    }
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
        let mut first = Vec::new();
        encode_canonical(&a, &mut first);
        assert_eq!(
            String::from_utf8(first).unwrap(),
            r#"{"a":{"c":"é","d":[1,{"x":1,"y":2}]},"b":1}"#
        );
    }

    /// The hash as first written (a JSON value built and encoded through `to_string`):
    /// the streamed encoding must give the same bytes, or every stored chain breaks.
    fn first_event_hash(event: &SerializedEvent) -> String {
        fn encode(value: &Value, out: &mut String) {
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
                        encode(&map[key], out);
                    }
                    out.push('}');
                }
                Value::Array(items) => {
                    out.push('[');
                    for (index, item) in items.iter().enumerate() {
                        if index > 0 {
                            out.push(',');
                        }
                        encode(item, out);
                    }
                    out.push(']');
                }
                scalar => out.push_str(&scalar.to_string()),
            }
        }
        let mut metadata = event.metadata.clone();
        if let Value::Object(map) = &mut metadata {
            map.remove(HASH);
        }
        let mut encoded = String::new();
        encode(
            &json!({
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

    /// Random JSON from a seeded generator: nesting, escapes, non-ASCII, numbers of
    /// every kind.
    fn step(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    fn random_value(seed: &mut u64, depth: u32) -> Value {
        let texts = [
            "",
            "a",
            "é\"\\/\n\t",
            "\u{1F600} ok",
            "\u{7}\u{1f}",
            "zz",
            "A b",
        ];
        match step(seed) % if depth == 0 { 6 } else { 8 } {
            0 => Value::Null,
            1 => Value::Bool(step(seed) % 2 == 0),
            2 => json!(step(seed) as i64 - (1 << 30)),
            3 => json!((step(seed) as f64) / 7.0 - 1e6),
            4 => json!(u64::MAX - step(seed)),
            5 => json!(texts[(step(seed) % texts.len() as u64) as usize]),
            6 => {
                let count = step(seed) % 4;
                Value::Array((0..count).map(|_| random_value(seed, depth - 1)).collect())
            }
            _ => {
                let count = step(seed) % 5;
                let mut map = serde_json::Map::new();
                for _ in 0..count {
                    let pick = (step(seed) % texts.len() as u64) as usize;
                    let key = format!("{}{}", texts[pick], step(seed) % 3);
                    map.insert(key, random_value(seed, depth - 1));
                }
                Value::Object(map)
            }
        }
    }

    #[test]
    fn the_streamed_hash_equals_the_first_one() {
        let mut seed = 42;
        for n in 0..2_000 {
            let mut metadata = random_value(&mut seed, 3);
            if let Value::Object(map) = &mut metadata {
                map.insert(HASH.into(), json!("ignored"));
                map.insert(PREVIOUS_HASH.into(), json!(GENESIS_HASH));
            }
            let event = SerializedEvent {
                aggregate_id: format!("id-{n}\u{e9}\"x"),
                sequence: n,
                aggregate_type: "account".into(),
                event_type: "MoneyDeposited".into(),
                event_version: "1.0".into(),
                payload: random_value(&mut seed, 4),
                metadata,
            };
            assert_eq!(event_hash(&event), first_event_hash(&event), "{event:?}");
        }
    }

    /// An event as the store reads it for verification: the payload as `text`.
    fn raw(event: &SerializedEvent, text: String) -> RawEvent {
        RawEvent {
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence,
            event_type: event.event_type.clone(),
            event_version: event.event_version.clone(),
            payload_json: text,
            metadata: event.metadata.clone(),
        }
    }

    #[test]
    fn the_hash_of_stored_text_equals_the_canonical_hash() {
        let mut seed = 7;
        for n in 0..2_000 {
            let event = SerializedEvent {
                aggregate_id: format!("id-{n}\u{e9}"),
                sequence: n,
                aggregate_type: "account".into(),
                event_type: "MoneyDeposited".into(),
                event_version: "1.0".into(),
                payload: random_value(&mut seed, 4),
                metadata: json!({"actor_id": "a", HASH: "ignored"}),
            };
            // What the SQL stores write: serde_json's compact text.
            let stored = raw(&event, event.payload.to_string());
            assert_eq!(
                event_hash_of_text(stored.header(), &stored.metadata, &stored.payload_json),
                event_hash(&event),
                "{event:?}"
            );
        }
    }

    #[test]
    fn stored_text_is_judged_on_its_content() {
        let events = stream(3);
        let mut raws: Vec<RawEvent> = events
            .iter()
            .map(|e| raw(e, e.payload.to_string()))
            .collect();
        let mut failures = Vec::new();
        StreamVerifier::default().check(&raws, &mut failures);
        assert!(failures.is_empty(), "{failures:?}");
        // The same content in another form (as a database might print it) still verifies.
        raws[0].payload_json = serde_json::to_string_pretty(&events[0].payload).unwrap();
        StreamVerifier::default().check(&raws, &mut failures);
        assert!(failures.is_empty(), "{failures:?}");
        // Changed content, or text that is not JSON, is named.
        raws[1].payload_json = r#"{"MoneyDeposited":{"amount":1000}}"#.into();
        raws[2].payload_json = "{not json".into();
        StreamVerifier::default().check(&raws, &mut failures);
        let named: Vec<_> = failures
            .iter()
            .map(|f| (f.sequence, f.problem.clone()))
            .collect();
        assert_eq!(
            named,
            vec![
                (2, ChainProblem::HashMismatch),
                (3, ChainProblem::HashMismatch)
            ]
        );
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
