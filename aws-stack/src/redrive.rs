//! Moving messages from a dead-letter queue back to its source queue, once whatever
//! stopped them is fixed (`crm aws redrive`). Each keeps its message group; it gets a
//! deduplication id of its own, or content-based deduplication would drop it as a
//! repeat of its first delivery.

use aws_sdk_sqs::types::MessageSystemAttributeName;

use crate::error::StackError;

/// Moves every message of `dlq_url` to `queue_url`; returns how many were moved.
pub async fn redrive(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    queue_url: &str,
) -> Result<usize, StackError> {
    let mut moved = 0;
    loop {
        let page = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .send()
            .await
            .map_err(|e| StackError::aws(dlq_url, e))?;
        if page.messages().is_empty() {
            return Ok(moved);
        }
        for message in page.messages() {
            let id = message.message_id().unwrap_or_default();
            let group = message
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
                .cloned()
                .unwrap_or_else(|| "redriven".into());
            // Sent before it is deleted: a failure in between leaves a repeat, never a loss.
            sqs.send_message()
                .queue_url(queue_url)
                .message_body(message.body().unwrap_or_default())
                .message_group_id(group)
                .message_deduplication_id(format!("redrive-{id}"))
                .send()
                .await
                .map_err(|e| StackError::aws(queue_url, e))?;
            sqs.delete_message()
                .queue_url(dlq_url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .map_err(|e| StackError::aws(dlq_url, e))?;
            moved += 1;
        }
    }
}
