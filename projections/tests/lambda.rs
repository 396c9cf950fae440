//! The projector Lambda on real peers: events from the DynamoDB store (DynamoDB Local)
//! go through the relay to EventBridge and an SQS FIFO queue (moto); the messages read
//! from the queue are handed to the handler — reversed and twice over, as redelivery
//! may — and the read models in PostgreSQL (as on Aurora) come out right.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::Utc;
use domain::account::{Account, AccountCommand, AccountType};
use domain::client::{Client, ClientCommand};
use domain::contact::{Address, PersonalDetails};
use domain::metadata::CommandMetadata;
use domain::policy::Role;
use domain::{AccountId, ClientId, Currency, Money, StaffId, TransactionId};
use event_store::{Backend, DynamoTables, EventStore, Expected};
use projections::models::{accounts, audit_log, clients, transactions};
use projections::{Projector, ReadStore, SystemLog};
use std::sync::Arc;
use test_peers::aws::{bus_to_queue, config, drain, stream_batch};

fn metadata() -> CommandMetadata {
    CommandMetadata {
        actor_id: "agent".into(),
        actor_role: Role::Agent,
        correlation_id: "c".into(),
        causation_id: "c".into(),
        idempotency_key: None,
        occurred_at: Utc::now(),
    }
}

fn message(id: &str, body: &str) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(id.to_string());
    message.body = Some(body.to_string());
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_events_build_the_read_models_in_postgres() {
    let dynamo_local = test_peers::dynamodb_local().await;
    let moto = test_peers::moto().await;
    let (store_config, aws) = (
        config(&dynamo_local.endpoint).await,
        config(&moto.endpoint).await,
    );
    let tables = DynamoTables::with_prefix("projector-");
    tables
        .create(&event_store::aws_sdk_dynamodb::Client::new(&store_config))
        .await
        .unwrap();
    let store = Arc::new(EventStore::new(Backend::dynamo(
        event_store::aws_sdk_dynamodb::Client::new(&store_config),
        tables.clone(),
    )));

    let (client_id, account_id, agent) = (ClientId::new(), AccountId::new(), StaffId::new());
    let details = PersonalDetails::builder()
        .first_name("Ada")
        .last_name("Lovelace")
        .date_of_birth("1990-01-01")
        .gender("female")
        .email("ada@example.com")
        .phone("+3531234567")
        .address(
            Address::builder()
                .line1("1 Main St")
                .city("Dublin")
                .country("IE")
                .postal_code("D01"),
        )
        .build(Utc::now().date_naive())
        .unwrap();
    store
        .execute::<Client>(
            &client_id.to_string(),
            Expected::Any,
            &metadata(),
            ClientCommand::Onboard {
                client_id,
                agent_id: agent,
                details,
            },
        )
        .await
        .unwrap();
    let eur = Currency::parse("EUR").unwrap();
    let open = AccountCommand::Open {
        account_id,
        client_id,
        client: domain::client::ClientStanding::Active,
        account_type: AccountType::Checking,
        currency: eur,
        initial_deposit: Some(Money::positive(100, eur).unwrap()),
        opening_transaction_id: TransactionId::new(),
        account_number: domain::AccountNumber::derived(account_id),
    };
    store
        .execute::<Account>(&account_id.to_string(), Expected::Any, &metadata(), open)
        .await
        .unwrap();
    for _ in 0..3 {
        let deposit = AccountCommand::Deposit {
            transaction_id: TransactionId::new(),
            amount: domain::Amount::try_from(Money::positive(10, eur).unwrap()).unwrap(),
            description: None,
        };
        store
            .execute::<Account>(&account_id.to_string(), Expected::Any, &metadata(), deposit)
            .await
            .unwrap();
    }

    let queue = bus_to_queue(&aws, "crm-projector-test").await;
    let relay = relay::Relay::new(event_store_eventbridge(&aws), "crm-projector-test");
    let response =
        relay::lambda::handle(&relay, stream_batch(&store_config, &tables.events).await).await;
    assert!(response.batch_item_failures.is_empty());
    let bodies = drain(&aws, &queue, 5).await;
    assert_eq!(bodies.len(), 5);

    let server = std::env::var("CRM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let name = format!("crm_lambda_{}", uuid_simple());
    let admin = sqlx::PgPool::connect(&format!("{server}/postgres"))
        .await
        .expect("PostgreSQL must be running (see .ci/run)");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let url = format!("{server}/{name}");
    let read = Arc::new(ReadStore::open(&url).await.unwrap());
    let log = Arc::new(SystemLog::open(&url).await.unwrap());
    let projector = Projector::new(store.clone(), read.clone(), log);

    // Newest first, then everything again: gaps are filled from the store, repeats skipped.
    let mut records: Vec<SqsMessage> = bodies
        .iter()
        .enumerate()
        .rev()
        .map(|(n, body)| message(&format!("m{n}"), body))
        .collect();
    records.extend(
        bodies
            .iter()
            .enumerate()
            .map(|(n, body)| message(&format!("again{n}"), body)),
    );
    records.push(message("garbage", "{not json"));
    let mut event = SqsEvent::default();
    event.records = records;
    let response = projections::lambda::handle(&projector, event).await;
    let failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(
        failed,
        ["garbage"],
        "only the unreadable message goes back to the queue"
    );

    let pool = read.pool();
    let account = accounts::get(&pool, &account_id.to_string())
        .await
        .unwrap()
        .expect("the account is projected");
    assert_eq!((account.balance.amount_minor, account.version), (130, 4));
    assert_eq!(account.agent_id, agent.to_string());
    let client = clients::get(&pool, &client_id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.last_name.as_deref(), Some("Lovelace"));
    let history = transactions::list(
        &pool,
        transactions::TransactionFilter {
            account_id: account_id.to_string(),
            limit: 50,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(history.items.len(), 4);
    let audit = audit_log::list(
        &pool,
        audit_log::AuditFilter {
            limit: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(audit.items.len(), 2);
    let rest = audit_log::list(
        &pool,
        audit_log::AuditFilter {
            limit: 10,
            cursor: audit.next_cursor,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        rest.items.len(),
        3,
        "the cursor walks past tied positions without loss"
    );

    read.close().await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
}

fn event_store_eventbridge(
    config: &event_store::aws_config::SdkConfig,
) -> relay::EventBridgeClient {
    relay::EventBridgeClient::new(config)
}

fn uuid_simple() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// The handler on the JSON Lambda really sends (fixture: an event, the same event
/// delivered again, and a message that is not an event).
#[tokio::test]
async fn a_real_sqs_batch_is_applied_once_and_the_bad_message_returned() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EventStore::new(
        Backend::open_sqlite(&dir.path().join("ledger.db"))
            .await
            .unwrap(),
    ));
    let read = Arc::new(
        ReadStore::open(&projections::sqlite_url(&dir.path().join("read.db")))
            .await
            .unwrap(),
    );
    let log = Arc::new(
        SystemLog::open(&projections::sqlite_url(&dir.path().join("log.db")))
            .await
            .unwrap(),
    );
    let projector = Projector::new(store, read.clone(), log);
    let event: SqsEvent = serde_json::from_str(include_str!("fixtures/sqs-batch.json")).unwrap();
    let response = projections::lambda::handle(&projector, event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["m3"]);
    let client = clients::get(&read.pool(), "0192f000-0000-7000-8000-00000000c001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (client.last_name.as_deref(), client.version),
        (Some("Hopper"), 1)
    );
    let audit = audit_log::list(
        &read.pool(),
        audit_log::AuditFilter {
            limit: 10,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(audit.items.len(), 1, "the redelivered event was skipped");
}
