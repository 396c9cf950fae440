//! The relay: new events, as DynamoDB Streams delivers them, are published to the
//! EventBridge bus — `source` `crm.<aggregate>`, `detail-type` the event type, `detail`
//! the whole event envelope (with its chain hash) — in batches of at most 10 entries,
//! for every subscriber the rules name; and sent to the projector's SQS FIFO queue in the
//! same shape, each stream its own message group (`<type>:<id>`) and each event its own
//! deduplication id (`<type>:<id>:<sequence>`). EventBridge gives a rule's SQS target one
//! fixed group, which would put every account's events through one group, one batch at
//! a time for the whole bank; per-stream groups keep each stream in order and let the
//! projector take as many streams at once as it has workers.
//!
//! Entries refused are retried with backoff; when a batch still fails, it and the rest
//! are reported, so Lambda retries from the first failed record (consumers skip what
//! they have already seen, and the queue drops repeats within its five-minute
//! deduplication window).

pub mod lambda;

/// The EventBridge client type the relay takes (re-exported for callers).
pub use aws_sdk_eventbridge::Client as EventBridgeClient;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
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

/// The message group of `event`'s stream on the projector's queue.
pub fn message_group(event: &SerializedEvent) -> String {
    format!("{}:{}", event.aggregate_type, event.aggregate_id)
}

/// The message the projector's queue carries: what an EventBridge rule would deliver.
pub fn message(event: &SerializedEvent) -> Value {
    json!({
        "version": "0",
        "source": format!("{SOURCE_PREFIX}{}", event.aggregate_type),
        "detail-type": event.event_type,
        "detail": envelope(event),
    })
}

pub struct Relay {
    client: aws_sdk_eventbridge::Client,
    bus: String,
    /// The store whose global Merkle log this relay keeps, if it keeps it.
    log: Option<event_store::DynamoStore>,
    /// The projector's FIFO queue (its URL), if this relay feeds it.
    projector: Option<(aws_sdk_sqs::Client, String)>,
}

type Record = (String, SerializedEvent);

impl Relay {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        Relay {
            client,
            bus: bus.into(),
            projector: None,
            log: None,
        }
    }

    /// Also places every event in `store`'s global Merkle log before publishing it, so
    /// that whatever a consumer sees is logged (`event_store::DynamoStore::log_events`).
    pub fn keeping_log(mut self, store: event_store::DynamoStore) -> Self {
        self.log = Some(store);
        self
    }

    /// Also sends every event to the projector's FIFO queue at `url`.
    pub fn with_projector_queue(
        mut self,
        sqs: aws_sdk_sqs::Client,
        url: impl Into<String>,
    ) -> Self {
        self.projector = Some((sqs, url.into()));
        self
    }

    /// Logs `records` (id, event) in the Merkle log, if this relay keeps it, then
    /// publishes them in order; returns the ids of those that could
    /// not be published after retries: from the first record that did not reach both
    /// the bus and the projector's queue, every record on (the later ones are not sent,
    /// so no stream's events go out past one that did not).
    pub async fn publish(&self, records: &[Record]) -> Vec<String> {
        if let Some(log) = &self.log {
            let events = records.iter().map(|(_, event)| event.clone()).collect();
            if let Err(error) = log.log_events(events).await {
                // Nothing is published past an event not logged: the whole batch comes
                // again, and the log skips what it already holds.
                tracing::error!(%error, "the Merkle log could not take the batch");
                return records.iter().map(|(id, _)| id.clone()).collect();
            }
        }
        for (index, chunk) in records.chunks(BATCH).enumerate() {
            let published = self.to_bus(chunk).await;
            // Only what the bus took goes to the queue, so both have the same prefix.
            let sent = self.to_projector(&chunk[..published]).await;
            if sent < chunk.len() {
                return records[index * BATCH + sent..]
                    .iter()
                    .map(|(id, _)| id.clone())
                    .collect();
            }
        }
        Vec::new()
    }

    /// Sends `chunk` (at most 10) to the projector's queue; how many of its first
    /// records went (all of them, or up to the first that could not be sent).
    async fn to_projector(&self, chunk: &[Record]) -> usize {
        let Some((sqs, url)) = &self.projector else {
            return chunk.len();
        };
        if chunk.is_empty() {
            return 0;
        }
        let mut pending: Vec<(usize, &SerializedEvent)> =
            chunk.iter().map(|(_, event)| event).enumerate().collect();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            let entries = pending
                .iter()
                .map(|(index, event)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(index.to_string())
                        .message_body(message(event).to_string())
                        .message_group_id(message_group(event))
                        .message_deduplication_id(format!(
                            "{}:{}",
                            message_group(event),
                            event.sequence
                        ))
                        .build()
                })
                .collect::<Result<Vec<_>, _>>();
            let entries = match entries {
                Ok(entries) => entries,
                Err(error) => {
                    tracing::error!(%error, "building an SQS entry");
                    return 0;
                }
            };
            match sqs
                .send_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(output) => {
                    // Keep, in order, every entry not reported sent. (A later entry of a
                    // stream may have gone before an earlier one that failed: the
                    // projector fills that gap from the store.)
                    let sent: Vec<&str> = output.successful().iter().map(|f| f.id()).collect();
                    pending.retain(|(index, _)| !sent.contains(&index.to_string().as_str()));
                }
                Err(error) => {
                    tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&error), attempt, "SendMessageBatch failed");
                }
            }
            if pending.is_empty() {
                return chunk.len();
            }
        }
        pending.first().map_or(chunk.len(), |(index, _)| *index)
    }

    /// Publishes `chunk` (at most 10) to the bus; how many of its first records went
    /// (all of them, or up to the first that could not be published).
    async fn to_bus(&self, chunk: &[Record]) -> usize {
        let mut pending: Vec<&Record> = chunk.iter().collect();
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
                return chunk.len();
            }
        }
        pending.first().map_or(chunk.len(), |first| {
            chunk
                .iter()
                .position(|record| std::ptr::eq(record, *first))
                .unwrap_or(0)
        })
    }
}
