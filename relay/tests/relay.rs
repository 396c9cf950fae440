//! The relay end to end on real protocol peers: events appended to the DynamoDB store
//! (DynamoDB Local) are read back from its stream, handed to the Lambda handler as a
//! Streams batch, published to an EventBridge bus (moto) whose rule targets an SQS FIFO
//! queue, and read from the queue; and sent to the projector's FIFO queue, one message
//! group per stream.

use chrono::Utc;
use domain::account::{Account, AccountCommand, AccountType};
use domain::metadata::CommandMetadata;
use domain::policy::Role;
use domain::{AccountId, ClientId, Currency, Money, TransactionId};
use event_store::{Backend, DynamoTables, EventStore, Expected};
use test_peers::aws::{bus_to_queue, config, drain, stream_batch};

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

/// The peers, the store's tables (named with `prefix`) and the store on them.
struct Setup {
    _peers: (test_peers::Peer, test_peers::Peer),
    store_config: aws_config::SdkConfig,
    aws: aws_config::SdkConfig,
    tables: DynamoTables,
    store: EventStore,
}

async fn setup(prefix: &str) -> Setup {
    let dynamo_local = test_peers::dynamodb_local().await;
    let moto = test_peers::moto().await;
    let (store_config, aws) = (
        config(&dynamo_local.endpoint).await,
        config(&moto.endpoint).await,
    );
    let tables = DynamoTables::with_prefix(prefix);
    tables
        .create(&event_store::aws_sdk_dynamodb::Client::new(&store_config))
        .await
        .unwrap();
    let store = EventStore::new(Backend::dynamo(
        event_store::aws_sdk_dynamodb::Client::new(&store_config),
        tables.clone(),
    ));
    Setup {
        _peers: (dynamo_local, moto),
        store_config,
        aws,
        tables,
        store,
    }
}

fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}

async fn open(store: &EventStore) -> AccountId {
    let id = AccountId::new();
    let open = AccountCommand::Open {
        account_id: id,
        client_id: ClientId::new(),
        client: domain::client::ClientStanding::Active,
        account_type: AccountType::Checking,
        currency: eur(),
        initial_deposit: None,
        opening_transaction_id: TransactionId::new(),
        account_number: domain::AccountNumber::derived(id),
    };
    store
        .execute::<Account>(&id.to_string(), Expected::Any, &metadata(), open)
        .await
        .unwrap();
    id
}

async fn deposit(store: &EventStore, id: AccountId) {
    let deposit = AccountCommand::Deposit {
        transaction_id: TransactionId::new(),
        amount: domain::Amount::try_from(Money::positive(5, eur()).unwrap()).unwrap(),
        description: None,
    };
    store
        .execute::<Account>(&id.to_string(), Expected::Any, &metadata(), deposit)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_events_reach_the_bus_and_the_queue() {
    let Setup {
        store_config,
        aws,
        tables,
        store,
        // Bound, so the peers live as long as the test.
        _peers,
    } = setup("relay-").await;
    let id = open(&store).await;
    for _ in 0..11 {
        deposit(&store, id).await;
    }

    let batch = stream_batch(&store_config, &tables.events).await;
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

    let messages: Vec<serde_json::Value> = drain(&aws, &queue, 12)
        .await
        .iter()
        .map(|m| serde_json::from_str(m).unwrap())
        .collect();
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
    let Setup {
        store_config,
        aws,
        tables,
        store,
        // Bound, so the peers live as long as the test.
        _peers,
    } = setup("relay-").await;
    open(&store).await;
    let batch = stream_batch(&store_config, &tables.events).await;
    let first = batch.records[0].change.sequence_number.clone();
    // No such bus: every entry fails, retries included.
    let relay = relay::Relay::new(aws_sdk_eventbridge::Client::new(&aws), "no-such-bus");
    let response = relay::lambda::handle(&relay, batch).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(response.batch_item_failures[0].item_identifier, first);
}

/// A batch the Merkle log cannot take is reported from its first record, and none of
/// it is published: no consumer sees an event the log does not hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_the_log_cannot_take_is_not_published() {
    let Setup {
        store_config,
        aws,
        tables,
        store,
        // Bound, so the peers live as long as the test.
        _peers,
    } = setup("unlogged-").await;
    open(&store).await;
    let batch = stream_batch(&store_config, &tables.events).await;
    let first = batch.records[0].change.sequence_number.clone();
    let queue = bus_to_queue(&aws, "crm-unlogged").await;
    // A store whose ledger table does not exist.
    let missing = event_store::DynamoStore::new(
        event_store::aws_sdk_dynamodb::Client::new(&store_config),
        DynamoTables::with_prefix("missing-"),
    );
    let relay = relay::Relay::new(aws_sdk_eventbridge::Client::new(&aws), "crm-unlogged")
        .keeping_log(missing);
    let response = relay::lambda::handle(&relay, batch).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(response.batch_item_failures[0].item_identifier, first);
    assert!(drain(&aws, &queue, 0).await.is_empty());
}

/// The projector's queue gets every event once, each stream as its own message group
/// in its order; a batch relayed again (Lambda's retry) adds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_stream_is_its_own_message_group_on_the_projector_queue() {
    use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
    let Setup {
        store_config,
        aws,
        tables,
        store,
        // Bound, so the peers live as long as the test.
        _peers,
    } = setup("groups-").await;
    let mut accounts = Vec::new();
    for _ in 0..3 {
        accounts.push(open(&store).await);
    }
    // Interleaved: the streams' events alternate in the batch.
    for _ in 0..4 {
        for id in &accounts {
            deposit(&store, *id).await;
        }
    }
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let url = sqs
        .create_queue()
        .queue_name("groups-projector.fifo")
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::ContentBasedDeduplication, "true")
        .attributes(QueueAttributeName::DeduplicationScope, "messageGroup")
        .attributes(QueueAttributeName::FifoThroughputLimit, "perMessageGroupId")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let bus = "crm-groups";
    aws_sdk_eventbridge::Client::new(&aws)
        .create_event_bus()
        .name(bus)
        .send()
        .await
        .unwrap();
    let Backend::Dynamo(dynamo) = store.backend() else {
        unreachable!("DynamoDB")
    };
    let relay = relay::Relay::new(aws_sdk_eventbridge::Client::new(&aws), bus)
        .with_projector_queue(sqs.clone(), &url)
        .keeping_log(dynamo.clone());
    for _ in 0..2 {
        let batch = stream_batch(&store_config, &tables.events).await;
        assert_eq!(batch.records.len(), 15);
        let response = relay::lambda::handle(&relay, batch).await;
        assert!(response.batch_item_failures.is_empty());
    }
    // Every event placed once in the Merkle log, each stream's in order.
    let log = store.backend().merkle().unwrap();
    assert_eq!(log.log_size().await.unwrap(), 15);
    for id in &accounts {
        let mut places = Vec::new();
        for sequence in 1..=5 {
            let leaf = log.leaf_of("account", &id.to_string(), sequence).await;
            places.push(leaf.unwrap().unwrap());
        }
        assert!(places.windows(2).all(|w| w[0] < w[1]), "{places:?}");
    }

    let mut by_group: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    let mut received = 0;
    for _ in 0..20 {
        let page = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        if page.messages().is_empty() && received > 0 {
            break;
        }
        for message in page.messages() {
            let group =
                message.attributes().unwrap()[&MessageSystemAttributeName::MessageGroupId].clone();
            let body: serde_json::Value = serde_json::from_str(message.body().unwrap()).unwrap();
            assert_eq!(body["source"], "crm.account");
            assert_eq!(
                group,
                format!(
                    "account:{}",
                    body["detail"]["aggregate_id"].as_str().unwrap()
                )
            );
            by_group
                .entry(group)
                .or_default()
                .push(body["detail"]["sequence"].as_u64().unwrap());
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
            received += 1;
        }
    }
    assert_eq!(received, 15, "each event once: {by_group:?}");
    assert_eq!(by_group.len(), 3);
    for sequences in by_group.values() {
        assert_eq!(sequences, &[1, 2, 3, 4, 5], "in stream order");
    }
}
