//! The relay end to end on real protocol peers: events appended to the DynamoDB store
//! (DynamoDB Local) are read back from its stream, handed to the Lambda handler as a
//! Streams batch, published to an EventBridge bus (moto) whose rule targets an SQS FIFO
//! queue, and read from the queue.

use aws_lambda_events::event::dynamodb::{Event, EventRecord, StreamRecord};
use chrono::Utc;
use domain::account::{Account, AccountCommand, AccountType};
use domain::metadata::CommandMetadata;
use domain::policy::Role;
use domain::{AccountId, ClientId, Currency, Money, TransactionId};
use event_store::aws_config::{self, BehaviorVersion, Region};
use event_store::aws_sdk_dynamodb::config::Credentials;
use event_store::{Backend, DynamoTables, EventStore, Expected};
use serde_json::Value;
use std::collections::HashMap;

async fn config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .load()
        .await
}

fn metadata() -> CommandMetadata {
    CommandMetadata {
        actor_id: "agent-1".into(),
        actor_role: Role::Agent,
        correlation_id: "corr".into(),
        causation_id: "req".into(),
        idempotency_key: None,
        occurred_at: Utc::now(),
    }
}

/// Every record in the events table's stream so far, as a Lambda Streams event.
async fn stream_batch(config: &aws_config::SdkConfig, tables: &DynamoTables) -> Event {
    let dynamo = event_store::aws_sdk_dynamodb::Client::new(config);
    let streams = aws_sdk_dynamodbstreams::Client::new(config);
    let table = dynamo
        .describe_table()
        .table_name(&tables.events)
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
async fn bus_to_queue(config: &aws_config::SdkConfig, bus: &str) -> String {
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

async fn drain(config: &aws_config::SdkConfig, url: &str, expected: usize) -> Vec<Value> {
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
            bodies.push(serde_json::from_str(message.body().unwrap()).unwrap());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_events_reach_the_bus_and_the_queue() {
    let dynamo_local = test_peers::dynamodb_local().await;
    let moto = test_peers::moto().await;
    let (store_config, aws) = (
        config(&dynamo_local.endpoint).await,
        config(&moto.endpoint).await,
    );

    let tables = DynamoTables::with_prefix("relay-");
    tables
        .create(&event_store::aws_sdk_dynamodb::Client::new(&store_config))
        .await
        .unwrap();
    let store = EventStore::new(Backend::dynamo(
        event_store::aws_sdk_dynamodb::Client::new(&store_config),
        tables.clone(),
    ));
    let id = AccountId::new();
    let eur = Currency::parse("EUR").unwrap();
    let open = AccountCommand::Open {
        account_id: id,
        client_id: ClientId::new(),
        account_type: AccountType::Checking,
        currency: eur,
        initial_deposit: None,
        opening_transaction_id: TransactionId::new(),
    };
    store
        .execute::<Account>(&id.to_string(), Expected::Any, &metadata(), open)
        .await
        .unwrap();
    for _ in 0..11 {
        let deposit = AccountCommand::Deposit {
            transaction_id: TransactionId::new(),
            amount: Money::positive(5, eur).unwrap(),
            description: None,
        };
        store
            .execute::<Account>(&id.to_string(), Expected::Any, &metadata(), deposit)
            .await
            .unwrap();
    }

    let batch = stream_batch(&store_config, &tables).await;
    assert_eq!(
        batch.records.len(),
        12,
        "one stream record per committed event"
    );
    let queue = bus_to_queue(&aws, "crm-test").await;
    let relay = relay::Relay::new(aws_sdk_eventbridge::Client::new(&aws), "crm-test");
    let response = relay::lambda::handle(&relay, batch).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "{:?}",
        response.batch_item_failures
    );

    let messages = drain(&aws, &queue, 12).await;
    assert_eq!(messages.len(), 12);
    let mut sequences: Vec<u64> = messages
        .iter()
        .map(|m| m["detail"]["sequence"].as_u64().unwrap())
        .collect();
    sequences.sort();
    assert_eq!(sequences, (1..=12).collect::<Vec<_>>());
    let first = messages
        .iter()
        .find(|m| m["detail"]["sequence"] == 1)
        .unwrap();
    assert_eq!(first["source"], "crm.account");
    assert_eq!(first["detail-type"], "AccountOpened");
    assert_eq!(first["detail"]["aggregate_id"], id.to_string().as_str());
    assert!(
        first["detail"]["metadata"]["hash"].is_string(),
        "the envelope keeps the chain hash"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_publish_is_reported_from_the_first_failed_record() {
    let dynamo_local = test_peers::dynamodb_local().await;
    let moto = test_peers::moto().await;
    let (store_config, aws) = (
        config(&dynamo_local.endpoint).await,
        config(&moto.endpoint).await,
    );
    let tables = DynamoTables::with_prefix("relay-");
    tables
        .create(&event_store::aws_sdk_dynamodb::Client::new(&store_config))
        .await
        .unwrap();
    let store = EventStore::new(Backend::dynamo(
        event_store::aws_sdk_dynamodb::Client::new(&store_config),
        tables.clone(),
    ));
    let id = AccountId::new();
    let open = AccountCommand::Open {
        account_id: id,
        client_id: ClientId::new(),
        account_type: AccountType::Savings,
        currency: Currency::parse("EUR").unwrap(),
        initial_deposit: None,
        opening_transaction_id: TransactionId::new(),
    };
    store
        .execute::<Account>(&id.to_string(), Expected::Any, &metadata(), open)
        .await
        .unwrap();
    let batch = stream_batch(&store_config, &tables).await;
    let first = batch.records[0].change.sequence_number.clone();
    // No such bus: every entry fails, retries included.
    let relay = relay::Relay::new(aws_sdk_eventbridge::Client::new(&aws), "no-such-bus");
    let response = relay::lambda::handle(&relay, batch).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(response.batch_item_failures[0].item_identifier, first);
}
