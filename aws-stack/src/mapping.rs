//! Event source mappings, as Lambda runs them in AWS, for where Lambda is not: the
//! local AWS mode and the tests. A [`StreamMapping`] reads a DynamoDB stream shard by
//! shard and hands batches to the relay's handler, resuming from the first reported
//! failure; a [`QueueMapping`] receives SQS messages, hands them to the projector's
//! handler and deletes only those not reported as failures (the rest come back after
//! the visibility timeout, and go to the DLQ after `maxReceiveCount`).

use aws_lambda_events::event::dynamodb::{Event, EventRecord, StreamRecord};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use std::collections::{HashMap, HashSet};
use std::future::Future;

use crate::error::StackError;

/// Records per Streams batch (Lambda's default for DynamoDB is 100).
const STREAM_BATCH: i32 = 100;

#[derive(Debug, Clone)]
enum Next {
    Start,
    After(String),
    At(String),
}

#[derive(Debug)]
struct Shard {
    next: Next,
    /// Closed and read to its end.
    done: bool,
}

/// Follows one table's stream from its oldest record.
pub struct StreamMapping {
    streams: aws_sdk_dynamodbstreams::Client,
    arn: String,
    /// Shards in the order the stream listed them (parents before children).
    order: Vec<String>,
    shards: HashMap<String, Shard>,
}

impl StreamMapping {
    pub fn new(streams: aws_sdk_dynamodbstreams::Client, arn: impl Into<String>) -> Self {
        StreamMapping {
            streams,
            arn: arn.into(),
            order: Vec::new(),
            shards: HashMap::new(),
        }
    }

    /// Hands what is new on each shard to `handle`, batch by batch, and returns how many
    /// records it handed over. A reported failure stops the poll: the next one starts
    /// again at the failed record, so nothing after it overtakes it.
    pub async fn poll<F, Fut>(&mut self, handle: F) -> Result<usize, StackError>
    where
        F: Fn(Event) -> Fut,
        Fut: Future<Output = DynamoDbEventResponse>,
    {
        self.discover().await?;
        let mut handed = 0;
        for id in self.order.clone() {
            loop {
                let shard = &self.shards[&id];
                if shard.done {
                    break;
                }
                let (kind, sequence) = match &shard.next {
                    Next::Start => (ShardIteratorType::TrimHorizon, None),
                    Next::After(s) => (ShardIteratorType::AfterSequenceNumber, Some(s.clone())),
                    Next::At(s) => (ShardIteratorType::AtSequenceNumber, Some(s.clone())),
                };
                let iterator = self
                    .streams
                    .get_shard_iterator()
                    .stream_arn(&self.arn)
                    .shard_id(&id)
                    .shard_iterator_type(kind)
                    .set_sequence_number(sequence)
                    .send()
                    .await
                    .map_err(|e| StackError::aws(&self.arn, e))?;
                let page = self
                    .streams
                    .get_records()
                    .shard_iterator(iterator.shard_iterator().unwrap_or_default())
                    .limit(STREAM_BATCH)
                    .send()
                    .await
                    .map_err(|e| StackError::aws(&self.arn, e))?;
                let records = page.records();
                if records.is_empty() {
                    if page.next_shard_iterator().is_none() {
                        if let Some(shard) = self.shards.get_mut(&id) {
                            shard.done = true;
                        }
                    }
                    break;
                }
                let last = records
                    .last()
                    .and_then(|r| r.dynamodb())
                    .and_then(|c| c.sequence_number())
                    .unwrap_or_default()
                    .to_string();
                let mut event = Event::default();
                event.records = records
                    .iter()
                    .map(|r| lambda_record(r, &self.arn))
                    .collect();
                handed += records.len();
                let response = handle(event).await;
                let shard = self.shards.get_mut(&id).expect("known shard");
                match response
                    .batch_item_failures
                    .first()
                    .and_then(|f| f.item_identifier.clone())
                {
                    Some(failed) => {
                        shard.next = Next::At(failed);
                        return Ok(handed);
                    }
                    None => shard.next = Next::After(last),
                }
            }
        }
        Ok(handed)
    }

    /// Learns of shards the stream opened since the last poll.
    async fn discover(&mut self) -> Result<(), StackError> {
        let mut start: Option<String> = None;
        loop {
            let described = self
                .streams
                .describe_stream()
                .stream_arn(&self.arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(|e| StackError::aws(&self.arn, e))?;
            let Some(description) = described.stream_description() else {
                return Ok(());
            };
            for shard in description.shards() {
                let Some(id) = shard.shard_id() else { continue };
                if !self.shards.contains_key(id) {
                    self.order.push(id.to_string());
                    self.shards.insert(
                        id.to_string(),
                        Shard {
                            next: Next::Start,
                            done: false,
                        },
                    );
                }
            }
            match description.last_evaluated_shard_id() {
                Some(last) => start = Some(last.to_string()),
                None => return Ok(()),
            }
        }
    }
}

/// A Streams record as Lambda hands it to a function.
pub fn lambda_record(record: &Record, stream_arn: &str) -> EventRecord {
    let mut change = StreamRecord::default();
    if let Some(data) = record.dynamodb() {
        change.new_image = data.new_image().cloned().unwrap_or_default().into();
        change.keys = data.keys().cloned().unwrap_or_default().into();
        change.sequence_number = data.sequence_number().map(String::from);
        change.size_bytes = data.size_bytes().unwrap_or_default();
    }
    let mut event = EventRecord::default();
    event.event_id = record.event_id().unwrap_or_default().to_string();
    event.event_name = record
        .event_name()
        .map(|n| n.as_str().to_string())
        .unwrap_or_default();
    event.event_source = Some("aws:dynamodb".into());
    event.event_source_arn = Some(stream_arn.to_string());
    event.change = change;
    event
}

/// Receives from one queue as Lambda's SQS poller does.
pub struct QueueMapping {
    sqs: aws_sdk_sqs::Client,
    url: String,
    arn: String,
    /// Long-poll wait per receive, in seconds.
    pub wait_seconds: i32,
    /// Shared by mappings polling one queue at once: one receive at a time. SQS hands
    /// no two receivers messages of one group; moto decides that per request without a
    /// lock, so concurrent receives could both get a group's next message.
    receiving: Option<std::sync::Arc<tokio::sync::Mutex<()>>>,
}

impl QueueMapping {
    pub fn new(sqs: aws_sdk_sqs::Client, url: impl Into<String>, arn: impl Into<String>) -> Self {
        QueueMapping {
            sqs,
            url: url.into(),
            arn: arn.into(),
            wait_seconds: 1,
            receiving: None,
        }
    }

    /// Receives under `lock`, which the other mappings of the same queue share.
    pub fn receiving_under(mut self, lock: std::sync::Arc<tokio::sync::Mutex<()>>) -> Self {
        self.receiving = Some(lock);
        self
    }

    /// Up to 10 messages, as the records of a Lambda SQS event.
    pub async fn receive(&self) -> Result<Vec<SqsMessage>, StackError> {
        let _one_at_a_time = match &self.receiving {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        let page = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .wait_time_seconds(self.wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| StackError::aws(&self.url, e))?;
        Ok(page
            .messages()
            .iter()
            .map(|m| {
                let mut message = SqsMessage::default();
                message.message_id = m.message_id().map(String::from);
                message.receipt_handle = m.receipt_handle().map(String::from);
                message.body = m.body().map(String::from);
                message.md5_of_body = m.md5_of_body().map(String::from);
                message.attributes = m
                    .attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                message.event_source = Some("aws:sqs".into());
                message.event_source_arn = Some(self.arn.clone());
                message
            })
            .collect())
    }

    /// Deletes the messages of a handled batch except the reported failures.
    pub async fn complete(
        &self,
        messages: &[SqsMessage],
        response: &SqsBatchResponse,
    ) -> Result<(), StackError> {
        let failed: HashSet<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        let entries: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .filter(|(_, m)| !failed.contains(m.message_id.as_deref().unwrap_or_default()))
            .filter_map(|(n, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("m{n}"))
                    .set_receipt_handle(m.receipt_handle.clone())
                    .build()
                    .ok()
            })
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        let deleted = self
            .sqs
            .delete_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| StackError::aws(&self.url, e))?;
        for failure in deleted.failed() {
            // The message comes back and is skipped as a repeat: worth a warning only.
            tracing::warn!(queue = %self.url, id = failure.id(), reason = ?failure.message(), "could not delete a handled message");
        }
        Ok(())
    }

    /// Receives one batch, hands it to `handle`, deletes what it handled; returns how
    /// many messages it received.
    pub async fn poll<F, Fut>(&self, handle: F) -> Result<usize, StackError>
    where
        F: Fn(SqsEvent) -> Fut,
        Fut: Future<Output = SqsBatchResponse>,
    {
        let messages = self.receive().await?;
        if messages.is_empty() {
            return Ok(0);
        }
        let mut event = SqsEvent::default();
        event.records = messages.clone();
        let response = handle(event).await;
        self.complete(&messages, &response).await?;
        Ok(messages.len())
    }
}
