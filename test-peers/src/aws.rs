//! Setting the AWS peers up for a test (needs the `aws` feature).

use aws_lambda_events::event::dynamodb::{Event, EventRecord, StreamRecord};
use std::collections::HashMap;

/// SDK configuration for a peer at `endpoint` (dummy credentials, us-east-1).
pub async fn config(endpoint: &str) -> aws_config::SdkConfig {
    local_peers::aws_config(endpoint).await
}

/// Every record in the events table's stream so far, as a Lambda Streams event.
pub async fn stream_batch(config: &aws_config::SdkConfig, events_table: &str) -> Event {
    let dynamo = aws_sdk_dynamodb::Client::new(config);
    let streams = aws_sdk_dynamodbstreams::Client::new(config);
    let table = dynamo
        .describe_table()
        .table_name(events_table)
        .send()
        .await
        .unwrap();
    let arn = table
        .table()
        .and_then(|t| t.latest_stream_arn())
        .expect("the events table streams")
        .to_string();
    let description = streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap();
    let mut records = Vec::new();
    for shard in description
        .stream_description()
        .map(|d| d.shards())
        .unwrap_or_default()
    {
        let iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().unwrap())
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap();
        let page = streams
            .get_records()
            .shard_iterator(iterator.shard_iterator().unwrap())
            .send()
            .await
            .unwrap();
        for record in page.records() {
            let change = record.dynamodb().unwrap();
            let image: HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue> =
                change.new_image().cloned().unwrap_or_default();
            let mut stream_record = StreamRecord::default();
            stream_record.new_image = image.into();
            stream_record.sequence_number = change.sequence_number().map(String::from);
            let mut event_record = EventRecord::default();
            event_record.event_name = record
                .event_name()
                .map(|n| n.as_str().to_string())
                .unwrap_or_default();
            event_record.change = stream_record;
            records.push(event_record);
        }
    }
    let mut event = Event::default();
    event.records = records;
    event
}

/// A bus whose rule sends every `crm.*` event to a FIFO queue; returns the queue URL.
pub async fn bus_to_queue(config: &aws_config::SdkConfig, bus: &str) -> String {
    let events = aws_sdk_eventbridge::Client::new(config);
    let sqs = aws_sdk_sqs::Client::new(config);
    events.create_event_bus().name(bus).send().await.unwrap();
    let queue = sqs
        .create_queue()
        .queue_name("crm-projector.fifo")
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::ContentBasedDeduplication,
            "true",
        )
        .send()
        .await
        .unwrap();
    let url = queue.queue_url().unwrap().to_string();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let arn =
        attributes.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    events
        .put_rule()
        .name("crm-to-projector")
        .event_bus_name(bus)
        .event_pattern(r#"{"source": [{"prefix": "crm."}]}"#)
        .send()
        .await
        .unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("projector")
        .arn(arn)
        .sqs_parameters(
            aws_sdk_eventbridge::types::SqsParameters::builder()
                .message_group_id("crm")
                .build(),
        )
        .build()
        .unwrap();
    events
        .put_targets()
        .rule("crm-to-projector")
        .event_bus_name(bus)
        .targets(target)
        .send()
        .await
        .unwrap();
    url
}

/// Receives (and deletes) messages until `expected` bodies arrived or about 50 s passed.
pub async fn drain(config: &aws_config::SdkConfig, url: &str, expected: usize) -> Vec<String> {
    let sqs = aws_sdk_sqs::Client::new(config);
    let mut bodies = Vec::new();
    for _ in 0..50 {
        let page = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for message in page.messages() {
            bodies.push(message.body().unwrap().to_string());
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        if bodies.len() >= expected {
            break;
        }
    }
    bodies
}
