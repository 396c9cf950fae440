//! The projector Lambda's handler: events the relay sent to an SQS FIFO queue, each
//! stream its own message group, in EventBridge's message shape (at least once,
//! redelivered out of order after a visibility timeout), are applied to
//! the read models one by one; a message that could not be applied is reported as a
//! batch item failure, so SQS delivers it again. Duplicates and gaps are handled by the
//! projector's per-stream sequence, exactly as in `crm serve`.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use cqrs_es::persist::SerializedEvent;
use event_store::{time_position, StoredEvent};
use serde_json::Value;

use crate::error::ProjectionError;
use crate::runner::{CatchUp, Projector};

/// The event inside an EventBridge envelope (`detail`, as the relay writes it).
pub fn event_from_message(body: &str) -> Result<StoredEvent, ProjectionError> {
    let envelope: Value = serde_json::from_str(body)?;
    let detail = envelope
        .get("detail")
        .ok_or_else(|| ProjectionError::Poison("no detail in the message".into()))?;
    let text = |key: &str| {
        detail
            .get(key)
            .and_then(Value::as_str)
            .map(String::from)
            .ok_or_else(|| ProjectionError::Poison(format!("no {key} in the event")))
    };
    let sequence = detail
        .get("sequence")
        .and_then(Value::as_u64)
        .ok_or_else(|| ProjectionError::Poison("no sequence in the event".into()))?;
    let event = SerializedEvent::new(
        text("aggregate_id")?,
        sequence as usize,
        text("aggregate_type")?,
        text("event_type")?,
        text("event_version")?,
        detail.get("payload").cloned().unwrap_or(Value::Null),
        detail.get("metadata").cloned().unwrap_or(Value::Null),
    );
    Ok(StoredEvent {
        position: time_position(&event),
        event,
    })
}

pub async fn handle(projector: &Projector, event: SqsEvent) -> SqsBatchResponse {
    handle_counted(projector, event).await.0
}

/// As [`handle`], with what the batch did (applied, repeats skipped, gaps filled).
pub async fn handle_counted(projector: &Projector, event: SqsEvent) -> (SqsBatchResponse, CatchUp) {
    let mut response = SqsBatchResponse::default();
    let mut total = CatchUp::default();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let outcome = match message.body.as_deref().map(event_from_message) {
            Some(Ok(stored)) => projector
                .deliver_one(&stored)
                .await
                .map(|stats| total.add(&stats)),
            Some(Err(error)) => Err(error),
            None => Err(ProjectionError::Poison("empty message".into())),
        };
        if let Err(error) = outcome {
            tracing::error!(%error, message = %id, "could not project a message; SQS will deliver it again");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    (response, total)
}

/// The named variables' values, or an error naming every one that is missing.
pub fn required<const N: usize>(names: [&str; N]) -> Result<[String; N], lambda_runtime::Error> {
    let values = names.map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()));
    let missing: Vec<&str> = names
        .iter()
        .zip(&values)
        .filter(|(_, value)| value.is_none())
        .map(|(name, _)| *name)
        .collect();
    if !missing.is_empty() {
        return Err(format!("missing configuration: {}", missing.join(", ")).into());
    }
    Ok(values.map(Option::unwrap_or_default))
}
