//! One conformance suite for every event-store backend: each test below runs against
//! SQLite (a temporary file), PostgreSQL (a fresh database on the server named by
//! `CRM_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432`, dropped after)
//! and, with the `dynamo` feature, DynamoDB (Amazon's DynamoDB Local, started per test
//! from `DYNAMODB_LOCAL_DIR` or the copy `scripts/test` installs in `.tools/`).

use chrono::Utc;
use domain::account::{Account, AccountCommand, AccountEvent, AccountType};
use domain::chain::{verify_stream, ChainProblem};
use domain::metadata::CommandMetadata;
use domain::policy::Role;
use domain::{AccountId, ClientId, Currency, Money, TransactionId};
use event_store::idempotency::{Claim, StoredResponse, LEASE};
use event_store::{Backend, EventStore, ExecuteError, Expected, StoreError};
use std::sync::Arc;

struct Fixture {
    store: EventStore,
    cleanup: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
    #[cfg(feature = "dynamo")]
    _dynamo: Option<dynamo_local::DynamoLocal>,
}

#[cfg(feature = "dynamo")]
mod dynamo_local {
    //! A DynamoDB client for a DynamoDB Local started for one test.
    use event_store::aws_config::{self, BehaviorVersion, Region};
    use event_store::aws_sdk_dynamodb::config::Credentials;
    use event_store::aws_sdk_dynamodb::Client;

    pub(crate) struct DynamoLocal {
        _peer: test_peers::Peer,
        pub(crate) client: Client,
    }

    pub(crate) async fn start() -> DynamoLocal {
        let peer = test_peers::dynamodb_local().await;
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&peer.endpoint)
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .load()
            .await;
        DynamoLocal {
            client: Client::new(&config),
            _peer: peer,
        }
    }
}

impl Fixture {
    async fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let backend = Backend::open_sqlite(&dir.path().join("events.db"))
            .await
            .unwrap();
        Fixture {
            store: EventStore::new(backend),
            cleanup: None,
            _dir: Some(dir),
            #[cfg(feature = "dynamo")]
            _dynamo: None,
        }
    }

    async fn postgres() -> Fixture {
        let server = std::env::var("CRM_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let name = format!("crm_test_{}", uuid::Uuid::now_v7().simple());
        let admin = sqlx::PgPool::connect(&format!("{server}/postgres"))
            .await
            .expect("PostgreSQL must be running for the conformance suite (see .ci/run)");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let backend = Backend::connect_postgres(&format!("{server}/{name}"))
            .await
            .unwrap();
        Fixture {
            store: EventStore::new(backend),
            cleanup: Some((server, name)),
            _dir: None,
            #[cfg(feature = "dynamo")]
            _dynamo: None,
        }
    }

    #[cfg(feature = "dynamo")]
    async fn dynamo() -> Fixture {
        let local = dynamo_local::start().await;
        let tables = event_store::DynamoTables::with_prefix("test-");
        tables.create(&local.client).await.unwrap();
        Fixture {
            store: EventStore::new(Backend::dynamo(local.client.clone(), tables)),
            cleanup: None,
            _dir: None,
            _dynamo: Some(local),
        }
    }

    /// A second store on the same database, as another process would open it.
    async fn second_store(&self) -> EventStore {
        match (self.store.backend(), &self.cleanup, &self._dir) {
            (Backend::Sqlite { .. }, _, Some(dir)) => EventStore::new(
                Backend::open_sqlite(&dir.path().join("events.db"))
                    .await
                    .unwrap(),
            ),
            (Backend::Postgres { .. }, Some((server, name)), _) => EventStore::new(
                Backend::connect_postgres(&format!("{server}/{name}"))
                    .await
                    .unwrap(),
            ),
            #[cfg(feature = "dynamo")]
            (Backend::Dynamo { client, tables, .. }, _, _) => {
                EventStore::new(Backend::dynamo(client.clone(), tables.clone()))
            }
            _ => unreachable!("fixture shape"),
        }
    }

    async fn finish(self) {
        self.store.backend().close().await;
        if let Some((server, name)) = self.cleanup {
            let admin = sqlx::PgPool::connect(&format!("{server}/postgres"))
                .await
                .unwrap();
            sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .execute(&admin)
                .await
                .unwrap();
        }
    }

    /// Overwrites one stored payload behind the store's back.
    async fn tamper_payload(&self, id: &str, sequence: i64, payload: &str) {
        match self.store.backend() {
            Backend::Sqlite { pool, .. } => {
                sqlx::query(
                    "UPDATE events SET payload = $1 WHERE aggregate_id = $2 AND sequence = $3",
                )
                .bind(payload)
                .bind(id)
                .bind(sequence)
                .execute(pool)
                .await
                .unwrap();
            }
            Backend::Postgres { pool, .. } => {
                sqlx::query("UPDATE events SET payload = $1::json WHERE aggregate_id = $2 AND sequence = $3")
                    .bind(payload).bind(id).bind(sequence).execute(pool).await.unwrap();
            }
            #[cfg(feature = "dynamo")]
            Backend::Dynamo { client, tables, .. } => {
                use event_store::aws_sdk_dynamodb::primitives::Blob;
                use event_store::aws_sdk_dynamodb::types::AttributeValue;
                client
                    .update_item()
                    .table_name(&tables.events)
                    .key(
                        "AggregateTypeAndId",
                        AttributeValue::S(format!("account:{id}")),
                    )
                    .key(
                        "AggregateIdSequence",
                        AttributeValue::N(sequence.to_string()),
                    )
                    .update_expression("SET Payload = :payload")
                    .expression_attribute_values(
                        ":payload",
                        AttributeValue::B(Blob::new(payload.as_bytes().to_vec())),
                    )
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

fn eur(amount: i64) -> Money {
    Money::positive(amount, Currency::parse("EUR").unwrap()).unwrap()
}

fn amt(amount: i64) -> domain::Amount {
    domain::Amount::new(amount, Currency::parse("EUR").unwrap()).unwrap()
}

fn metadata() -> CommandMetadata {
    CommandMetadata {
        actor_id: "agent-1".into(),
        actor_role: Role::Agent,
        correlation_id: "corr-1".into(),
        causation_id: "req-1".into(),
        idempotency_key: Some("key-1".into()),
        occurred_at: Utc::now(),
    }
}

fn open(id: AccountId, balance: i64) -> AccountCommand {
    AccountCommand::Open {
        account_id: id,
        client_id: ClientId::new(),
        client: domain::client::ClientStanding::Active,
        account_type: AccountType::Checking,
        currency: Currency::parse("EUR").unwrap(),
        initial_deposit: (balance > 0).then(|| eur(balance)),
        opening_transaction_id: TransactionId::new(),
        account_number: domain::AccountNumber::derived(id),
    }
}

fn deposit(amount: i64) -> AccountCommand {
    AccountCommand::Deposit {
        transaction_id: TransactionId::new(),
        amount: amt(amount),
        description: None,
    }
}

async fn appends_and_loads(store: &EventStore) {
    let id = AccountId::new();
    let key = id.to_string();
    let opened = store
        .execute::<Account>(&key, Expected::Any, &metadata(), open(id, 100))
        .await
        .unwrap();
    assert_eq!(opened.version, 1);
    let deposited = store
        .execute::<Account>(&key, Expected::Version(1), &metadata(), deposit(50))
        .await
        .unwrap();
    assert_eq!(deposited.version, 2);
    assert_eq!(deposited.aggregate.balance.amount_minor(), 150);

    let loaded = store.load::<Account>(&key).await.unwrap();
    assert_eq!(loaded.version, 2);
    assert_eq!(loaded.aggregate, deposited.aggregate);

    let stream = store.stream("account", &key).await.unwrap();
    assert_eq!(stream.len(), 2);
    assert_eq!(stream[1].event_type, "MoneyDeposited");
    let meta = &stream[1].metadata;
    for field in [
        "actor_id",
        "actor_role",
        "correlation_id",
        "causation_id",
        "idempotency_key",
        "occurred_at",
        "previous_hash",
        "hash",
    ] {
        assert!(
            meta.get(field).and_then(|v| v.as_str()).is_some(),
            "metadata lacks {field}"
        );
    }
    assert_eq!(meta["actor_role"], "agent");
    assert!(
        store
            .load::<Account>(&AccountId::new().to_string())
            .await
            .unwrap()
            .version
            == 0
    );
}

async fn refuses_a_stale_append(store: &EventStore) {
    let id = AccountId::new();
    let key = id.to_string();
    store
        .execute::<Account>(&key, Expected::Any, &metadata(), open(id, 100))
        .await
        .unwrap();
    let first = store.load::<Account>(&key).await.unwrap();
    let second = store.load::<Account>(&key).await.unwrap();
    let event = |balance| AccountEvent::MoneyDeposited {
        transaction_id: TransactionId::new(),
        amount: eur(1),
        description: None,
        balance_after: eur(balance),
    };
    store
        .append::<Account>(&key, &first, &[event(101)], &metadata())
        .await
        .unwrap();
    let stale = store
        .append::<Account>(&key, &second, &[event(101)], &metadata())
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
    assert_eq!(store.load::<Account>(&key).await.unwrap().version, 2);
    let mismatch = store
        .execute::<Account>(&key, Expected::Version(1), &metadata(), deposit(1))
        .await;
    assert!(
        matches!(
            mismatch,
            Err(ExecuteError::VersionMismatch {
                expected: 1,
                actual: 2
            })
        ),
        "{mismatch:?}"
    );
    let refused = store
        .execute::<Account>(
            &key,
            Expected::Any,
            &metadata(),
            AccountCommand::Withdraw {
                transaction_id: TransactionId::new(),
                amount: amt(1_000),
                description: None,
            },
        )
        .await;
    assert!(matches!(refused, Err(ExecuteError::Refused(_))));
    assert_eq!(
        store.load::<Account>(&key).await.unwrap().version,
        2,
        "a refusal appends nothing"
    );
}

async fn concurrent_writers_lose_nothing(fixture: &Fixture) {
    let id = AccountId::new();
    let key = id.to_string();
    fixture
        .store
        .execute::<Account>(&key, Expected::Any, &metadata(), open(id, 0))
        .await
        .unwrap();
    // Two stores on one database: their per-process queues do not see each other, so
    // the optimistic check and the retry are what keep every deposit.
    let other = Arc::new(fixture.second_store().await);
    let mut tasks = Vec::new();
    for n in 0..20 {
        let key = key.clone();
        let other = other.clone();
        let own = n % 2 == 0;
        tasks.push(async move {
            if own {
                fixture
                    .store
                    .execute::<Account>(&key, Expected::Any, &metadata(), deposit(1))
                    .await
            } else {
                other
                    .execute::<Account>(&key, Expected::Any, &metadata(), deposit(1))
                    .await
            }
        });
    }
    for result in futures::future::join_all(tasks).await {
        result.unwrap();
    }
    // Read from storage: each store's in-memory cache knows only its own writes.
    let loaded = fixture
        .store
        .load_from_store::<Account>(&key)
        .await
        .unwrap();
    assert_eq!(loaded.version, 21);
    assert_eq!(loaded.aggregate.balance.amount_minor(), 20);
    other.backend().close().await;
}

async fn chains_and_detects_tampering(fixture: &Fixture) {
    let store = &fixture.store;
    let id = AccountId::new();
    let key = id.to_string();
    store
        .execute::<Account>(&key, Expected::Any, &metadata(), open(id, 10))
        .await
        .unwrap();
    for _ in 0..3 {
        store
            .execute::<Account>(&key, Expected::Any, &metadata(), deposit(5))
            .await
            .unwrap();
    }
    let stream = store.stream("account", &key).await.unwrap();
    assert!(verify_stream(&stream).is_empty());
    assert_eq!(
        stream[0].metadata["previous_hash"],
        domain::chain::GENESIS_HASH
    );
    assert_eq!(
        stream[2].metadata["previous_hash"],
        stream[1].metadata["hash"]
    );

    let forged = r#"{"MoneyDeposited":{"transaction_id":"0192f000-0000-7000-8000-0000000000bb","amount":{"amount_minor":5000,"currency":"EUR"},"description":null,"balance_after":{"amount_minor":5015,"currency":"EUR"}}}"#;
    fixture.tamper_payload(&key, 2, forged).await;
    let failures = verify_stream(&store.stream("account", &key).await.unwrap());
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].sequence, 2);
    assert_eq!(failures[0].problem, ChainProblem::HashMismatch);
}

async fn holds_a_stream_of_ten_thousand_events(store: &EventStore) {
    let id = AccountId::new();
    let key = id.to_string();
    store
        .execute::<Account>(&key, Expected::Any, &metadata(), open(id, 0))
        .await
        .unwrap();
    let mut balance = 0;
    let mut loaded = store.load::<Account>(&key).await.unwrap();
    // 25 events per append: DynamoDB's transactions take at most 25 items.
    for _ in 0..400 {
        let events: Vec<AccountEvent> = (0..25)
            .map(|_| {
                balance += 1;
                AccountEvent::MoneyDeposited {
                    transaction_id: TransactionId::new(),
                    amount: eur(1),
                    description: None,
                    balance_after: eur(balance),
                }
            })
            .collect();
        let sealed = store
            .append::<Account>(&key, &loaded, &events, &metadata())
            .await
            .unwrap();
        loaded = loaded.advanced(events, &sealed);
    }
    let reloaded = store.load_from_store::<Account>(&key).await.unwrap();
    assert_eq!(reloaded.version, 10_001);
    assert_eq!(reloaded.aggregate.balance.amount_minor(), 10_000);
    assert_eq!(reloaded.aggregate, loaded.aggregate);
    let stream = store.stream("account", &key).await.unwrap();
    assert_eq!(stream.len(), 10_001);
    assert!(verify_stream(&stream).is_empty());
}

async fn keeps_idempotency_records(store: &EventStore) {
    assert!(matches!(
        store
            .claim_idempotency("alice", "k1", "hash-a", LEASE)
            .await
            .unwrap(),
        Claim::New { .. }
    ));
    assert_eq!(
        store
            .claim_idempotency("alice", "k1", "hash-a", LEASE)
            .await
            .unwrap(),
        Claim::InProgress
    );
    let response = StoredResponse {
        status: 201,
        headers: vec![("etag".into(), "\"1\"".into())],
        body: b"{\"id\":1}".to_vec(),
    };
    store
        .complete_idempotency("alice", "k1", &response)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_idempotency("alice", "k1", "hash-a", LEASE)
            .await
            .unwrap(),
        Claim::Replay(response)
    );
    assert_eq!(
        store
            .claim_idempotency("alice", "k1", "hash-b", LEASE)
            .await
            .unwrap(),
        Claim::Mismatch
    );
    // Keys are per caller.
    assert!(matches!(
        store
            .claim_idempotency("bob", "k1", "hash-b", LEASE)
            .await
            .unwrap(),
        Claim::New {
            recovering: false,
            ..
        }
    ));
    // A released key can be claimed again.
    store.release_idempotency("bob", "k1").await.unwrap();
    let Claim::New {
        claimed_at_ms: first_claim,
        recovering: false,
    } = store
        .claim_idempotency("bob", "k1", "hash-c", SHORT)
        .await
        .unwrap()
    else {
        panic!("a released key is claimed anew")
    };
    // A renewed lease holds; one whose holder stopped renewing is taken over, once, as
    // a recovery that keeps the first claim's time.
    tokio::time::sleep(SHORT / 2).await;
    store.renew_idempotency("bob", "k1", SHORT).await.unwrap();
    tokio::time::sleep(SHORT / 2).await;
    assert_eq!(
        store
            .claim_idempotency("bob", "k1", "hash-c", SHORT)
            .await
            .unwrap(),
        Claim::InProgress
    );
    tokio::time::sleep(SHORT + SHORT / 5).await;
    assert_eq!(
        store
            .claim_idempotency("bob", "k1", "hash-c", LEASE)
            .await
            .unwrap(),
        Claim::New {
            claimed_at_ms: first_claim,
            recovering: true,
        }
    );
    assert_eq!(
        store
            .claim_idempotency("bob", "k1", "hash-c", LEASE)
            .await
            .unwrap(),
        Claim::InProgress
    );
}

/// Account numbers: one per account, the same on every retry, never shared, also when
/// many openings ask at once.
async fn allocates_account_numbers(store: &EventStore) {
    let accounts: Vec<AccountId> = (0..40).map(|_| AccountId::new()).collect();
    let first = futures::future::join_all(
        accounts
            .iter()
            .chain(accounts.iter())
            .map(|id| store.allocate_account_number(*id)),
    )
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect::<Vec<_>>();
    let (once, twice) = first.split_at(accounts.len());
    assert_eq!(once, twice, "a retry gets the number it was given");
    let distinct: std::collections::BTreeSet<_> = once.iter().collect();
    assert_eq!(
        distinct.len(),
        accounts.len(),
        "no two accounts share a number"
    );
    for (id, number) in accounts.iter().zip(once) {
        assert_eq!(store.allocate_account_number(*id).await.unwrap(), *number);
        assert_eq!(
            number.to_string().parse::<domain::AccountNumber>().unwrap(),
            *number
        );
    }
}

/// A lease short enough to run out in a test.
const SHORT: std::time::Duration = std::time::Duration::from_millis(600);

macro_rules! conformance {
    ($backend:ident) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            async fn appends_and_loads() {
                let fixture = Fixture::$backend().await;
                super::appends_and_loads(&fixture.store).await;
                fixture.finish().await;
            }

            #[tokio::test]
            async fn refuses_a_stale_append() {
                let fixture = Fixture::$backend().await;
                super::refuses_a_stale_append(&fixture.store).await;
                fixture.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_writers_lose_nothing() {
                let fixture = Fixture::$backend().await;
                super::concurrent_writers_lose_nothing(&fixture).await;
                fixture.finish().await;
            }

            #[tokio::test]
            async fn chains_and_detects_tampering() {
                let fixture = Fixture::$backend().await;
                super::chains_and_detects_tampering(&fixture).await;
                fixture.finish().await;
            }

            #[tokio::test]
            async fn holds_a_stream_of_ten_thousand_events() {
                let fixture = Fixture::$backend().await;
                super::holds_a_stream_of_ten_thousand_events(&fixture.store).await;
                fixture.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn allocates_account_numbers() {
                let fixture = Fixture::$backend().await;
                super::allocates_account_numbers(&fixture.store).await;
                fixture.finish().await;
            }

            #[tokio::test]
            async fn keeps_idempotency_records() {
                let fixture = Fixture::$backend().await;
                super::keeps_idempotency_records(&fixture.store).await;
                fixture.finish().await;
            }
        }
    };
}

conformance!(sqlite);
conformance!(postgres);
#[cfg(feature = "dynamo")]
conformance!(dynamo);
