//! The relay: new events, as DynamoDB Streams delivers them, are published to the
//! EventBridge bus — `source` `crm.<aggregate>`, `detail-type` the event type, `detail`
//! the whole event envelope (with its chain hash) — in batches of at most 10 entries.
//! Entries EventBridge refuses are retried with backoff; records still failing are
//! reported so that Lambda retries the batch from the first of them (consumers skip
//! what they have already seen).

pub mod lambda;

/// The EventBridge client type the relay takes (re-exported for callers).
pub use aws_sdk_eventbridge::Client as EventBridgeClient;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use cqrs_es::persist::SerializedEvent;
use serde_json::{json, Value};
use std::time::Duration;

/// Every source the relay uses starts with this.
pub const SOURCE_PREFIX: &str = "crm.";
/// EventBridge takes at most 10 entries per PutEvents.
const BATCH: usize = 10;
const ATTEMPTS: u32 = 4;

/// The event as consumers receive it in `detail`.
pub fn envelope(event: &SerializedEvent) -> Value {
    json!({
        "aggregate_type": event.aggregate_type,
        "aggregate_id": event.aggregate_id,
        "sequence": event.sequence,
        "event_type": event.event_type,
        "event_version": event.event_version,
        "payload": event.payload,
        "metadata": event.metadata,
    })
}

pub fn entry(bus: &str, event: &SerializedEvent) -> PutEventsRequestEntry {
    PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source(format!("{SOURCE_PREFIX}{}", event.aggregate_type))
        .detail_type(&event.event_type)
        .detail(envelope(event).to_string())
        .build()
}

pub struct Relay {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl Relay {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        Relay {
            client,
            bus: bus.into(),
        }
    }

    /// Publishes `records` (id, event) in order; returns the ids of those that could
    /// not be published after retries.
    pub async fn publish(&self, records: &[(String, SerializedEvent)]) -> Vec<String> {
        let mut failed = Vec::new();
        for chunk in records.chunks(BATCH) {
            let mut pending: Vec<&(String, SerializedEvent)> = chunk.iter().collect();
            for attempt in 0..ATTEMPTS {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
                let entries: Vec<PutEventsRequestEntry> = pending
                    .iter()
                    .map(|(_, event)| entry(&self.bus, event))
                    .collect();
                match self
                    .client
                    .put_events()
                    .set_entries(Some(entries))
                    .send()
                    .await
                {
                    Ok(output) => {
                        // Results come back in request order; an entry with an error code failed.
                        let results = output.entries();
                        pending = pending
                            .into_iter()
                            .enumerate()
                            .filter(|(index, _)| {
                                results
                                    .get(*index)
                                    .is_none_or(|result| result.error_code().is_some())
                            })
                            .map(|(_, record)| record)
                            .collect();
                    }
                    Err(error) => {
                        tracing::warn!(error = %aws_sdk_eventbridge::error::DisplayErrorContext(&error), attempt, "PutEvents failed");
                    }
                }
                if pending.is_empty() {
                    break;
                }
            }
            failed.extend(pending.into_iter().map(|(id, _)| id.clone()));
        }
        failed
    }
}
