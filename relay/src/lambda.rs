//! The Lambda handler: a DynamoDB Streams batch in, partial batch failures out.

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::AttributeValue;
use cqrs_es::persist::SerializedEvent;
use std::collections::HashMap;

use crate::Relay;

/// Publishes the batch's new events. Only inserts are relayed: events are never
/// modified, and a modification (tampering) must not look like a new event. An image
/// that cannot be read is reported as a failure, like a refused publish: Lambda retries
/// from the first failed record.
pub async fn handle(relay: &Relay, event: Event) -> DynamoDbEventResponse {
    let (records, unreadable) = new_events(event);
    let failed = relay.publish(&records).await;
    let first_failure = records
        .iter()
        .map(|(id, _)| id)
        .find(|id| failed.contains(id))
        .cloned()
        .or(unreadable);
    let mut response = DynamoDbEventResponse::default();
    if let Some(id) = first_failure {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(id);
        response.batch_item_failures.push(failure);
    }
    response
}

/// The inserted events of a Streams batch, each with its record's sequence number, up
/// to the first record that cannot be read (whose sequence number comes second).
pub fn new_events(event: Event) -> (Vec<(String, SerializedEvent)>, Option<String>) {
    let mut records = Vec::new();
    for record in event.records {
        let id = record.change.sequence_number.clone().unwrap_or_default();
        if record.event_name != "INSERT" {
            continue;
        }
        let image: HashMap<String, AttributeValue> = record.change.new_image.into();
        match event_store::event_from_item(&image) {
            Ok(stored) => records.push((id, stored)),
            Err(error) => {
                tracing::error!(%error, sequence_number = %id, "unreadable stream record");
                return (records, Some(id));
            }
        }
    }
    (records, None)
}
