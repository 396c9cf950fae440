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
use event_store::{
    Backend, EventStore, ExecuteError, Expected, StoreError, StreamListing, VerifyCursor,
};
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
    use event_store::aws_sdk_dynamodb::Client;

    pub(crate) struct DynamoLocal {
        _peer: test_peers::Peer,
        pub(crate) client: Client,
    }

    pub(crate) async fn start() -> DynamoLocal {
        let peer = test_peers::dynamodb_local().await;
        let config = test_peers::aws::config(&peer.endpoint).await;
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
            (Backend::Sqlite(_), _, Some(dir)) => EventStore::new(
                Backend::open_sqlite(&dir.path().join("events.db"))
                    .await
                    .unwrap(),
            ),
            (Backend::Postgres(_), Some((server, name)), _) => EventStore::new(
                Backend::connect_postgres(&format!("{server}/{name}"))
                    .await
                    .unwrap(),
            ),
            #[cfg(feature = "dynamo")]
            (Backend::Dynamo(dynamo), _, _) => EventStore::new(dynamo.clone().into()),
            _ => unreachable!("fixture shape"),
        }
    }

    async fn finish(self) {
        self.store.close().await;
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

    fn sql_backend(&self) -> bool {
        matches!(
            self.store.backend(),
            Backend::Sqlite(_) | Backend::Postgres(_)
        )
    }

    /// Runs `sql` on the database directly, as its administrator could.
    async fn execute_sql(&self, sql: &str) {
        match self.store.backend() {
            Backend::Sqlite(sqlite) => {
                sqlx::query(sql).execute(sqlite.pool()).await.unwrap();
            }
            Backend::Postgres(postgres) => {
                sqlx::query(sql).execute(postgres.pool()).await.unwrap();
            }
            #[cfg(feature = "dynamo")]
            Backend::Dynamo(_) => unreachable!("SQL on DynamoDB"),
        }
    }

    /// On PostgreSQL, a trigger `name` that runs `body` (PL/pgSQL, ending in
    /// `RETURN NEW`) before each row inserted into `table`.
    async fn before_insert_on_postgres(&self, name: &str, table: &str, body: &str) {
        self.execute_sql(&format!(
            "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} END $$"
        ))
        .await;
        self.execute_sql(&format!(
            "CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()"
        ))
        .await;
    }

    /// The one number `sql` selects.
    async fn query_one(&self, sql: &str) -> (i64,) {
        match self.store.backend() {
            Backend::Sqlite(sqlite) => sqlx::query_as(sql).fetch_one(sqlite.pool()).await.unwrap(),
            Backend::Postgres(postgres) => sqlx::query_as(sql)
                .fetch_one(postgres.pool())
                .await
                .unwrap(),
            #[cfg(feature = "dynamo")]
            Backend::Dynamo(_) => unreachable!("SQL on DynamoDB"),
        }
    }

    /// Overwrites one stored payload behind the store's back.
    async fn tamper_payload(&self, id: &str, sequence: i64, payload: &str) {
        match self.store.backend() {
            Backend::Sqlite(sqlite) => {
                sqlx::query(
                    "UPDATE events SET payload = $1 WHERE aggregate_id = $2 AND sequence = $3",
                )
                .bind(payload)
                .bind(id)
                .bind(sequence)
                .execute(sqlite.pool())
                .await
                .unwrap();
            }
            Backend::Postgres(postgres) => {
                sqlx::query("UPDATE events SET payload = $1::json WHERE aggregate_id = $2 AND sequence = $3")
                    .bind(payload).bind(id).bind(sequence).execute(postgres.pool()).await.unwrap();
            }
            #[cfg(feature = "dynamo")]
            Backend::Dynamo(dynamo) => {
                let (client, tables) = (dynamo.client(), dynamo.tables());
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

/// A deposit of 1 that leaves `balance`, as an event to append.
fn deposited(balance: i64) -> AccountEvent {
    AccountEvent::MoneyDeposited {
        transaction_id: TransactionId::new(),
        amount: eur(1),
        description: None,
        balance_after: eur(balance),
    }
}

/// A new account holding 100, its key and its state as loaded.
async fn opened(store: &EventStore) -> (String, event_store::Loaded<Account>) {
    let id = AccountId::new();
    let key = id.to_string();
    store
        .execute::<Account>(&key, Expected::Any, &metadata(), open(id, 100))
        .await
        .unwrap();
    let loaded = store.load::<Account>(&key).await.unwrap();
    (key, loaded)
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
    let (key, first) = opened(store).await;
    let second = store.load::<Account>(&key).await.unwrap();
    let event = deposited;
    store
        .append::<Account>(&key, &first, &[event(101)], &metadata())
        .await
        .unwrap();
    // A stale append of two events, the second of whose sequences is free, beside
    // another stream's append (in one group commit where the store has one): it is
    // refused whole, and the other is written.
    let other = AccountId::new();
    let other_key = other.to_string();
    store
        .execute::<Account>(&other_key, Expected::Any, &metadata(), open(other, 0))
        .await
        .unwrap();
    let other_loaded = store.load::<Account>(&other_key).await.unwrap();
    let (stale_events, other_events, meta) = ([event(101), event(102)], [event(1)], metadata());
    let (stale, beside) = futures::join!(
        store.append::<Account>(&key, &second, &stale_events, &meta),
        store.append::<Account>(&other_key, &other_loaded, &other_events, &meta)
    );
    assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
    beside.unwrap();
    assert_eq!(
        store
            .load_from_store::<Account>(&key)
            .await
            .unwrap()
            .version,
        2
    );
    assert_eq!(store.stream("account", &key).await.unwrap().len(), 2);
    assert_eq!(
        store
            .load_from_store::<Account>(&other_key)
            .await
            .unwrap()
            .version,
        2
    );
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

/// One-event appends made at the same moment (written together where the store groups
/// them): each stale one is refused alone, the rest are written; two appends of the same
/// sequence of one stream, one wins.
async fn refuses_only_the_stale_appends_of_a_group(store: &EventStore) {
    let deposit = |balance| [deposited(balance)];
    let meta = metadata();
    let mut streams = Vec::new();
    for n in 0..24 {
        let (key, loaded) = opened(store).await;
        // Every third stream moves on first: its loaded copy is stale.
        let stale = n % 3 == 0;
        if stale {
            store
                .append::<Account>(&key, &loaded, &deposit(101), &meta)
                .await
                .unwrap();
        }
        streams.push((key, loaded, stale));
    }
    let events: Vec<_> = (0..streams.len()).map(|_| deposit(102)).collect();
    let outcomes = futures::future::join_all(
        streams
            .iter()
            .zip(&events)
            .map(|((key, loaded, _), events)| store.append::<Account>(key, loaded, events, &meta)),
    )
    .await;
    for ((key, _, stale), outcome) in streams.iter().zip(outcomes) {
        match (stale, outcome) {
            (true, Err(StoreError::Conflict)) | (false, Ok(_)) => {}
            (stale, outcome) => panic!("stale {stale}: {outcome:?}"),
        }
        let stream = store.stream("account", key).await.unwrap();
        assert_eq!(stream.len(), 2, "{key}");
        let balance = stream[1].payload["MoneyDeposited"]["balance_after"]["amount_minor"].clone();
        assert_eq!(balance, if *stale { 101 } else { 102 }, "{key}");
        assert!(verify_stream(&stream).is_empty(), "{key}");
    }
    // The same sequence of a stream twice at once, for several streams: one of each
    // pair is written, the other refused.
    let mut pairs = Vec::new();
    for (key, _, _) in &streams[..8] {
        let at_two = store.load_from_store::<Account>(key).await.unwrap();
        pairs.push((key, at_two, deposit(103), deposit(104)));
    }
    let outcomes = futures::future::join_all(pairs.iter().flat_map(|(key, at_two, a, b)| {
        [
            store.append::<Account>(key, at_two, a, &meta),
            store.append::<Account>(key, at_two, b, &meta),
        ]
    }))
    .await;
    for ((key, ..), pair) in pairs.iter().zip(outcomes.chunks(2)) {
        assert!(
            matches!(
                pair,
                [Ok(_), Err(StoreError::Conflict)] | [Err(StoreError::Conflict), Ok(_)]
            ),
            "{pair:?}"
        );
        assert_eq!(store.stream("account", key).await.unwrap().len(), 3);
    }
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
    other.close().await;
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

    // The same content printed in another form (as a database tool might rewrite it)
    // is judged on its content, though verification hashes stored text unparsed.
    let reprinted = serde_json::to_string_pretty(&stream[2].payload).unwrap();
    fixture.tamper_payload(&key, 3, &reprinted).await;
    let check = store
        .verify_chains(&[("account", key.clone())])
        .await
        .unwrap();
    assert!(check.failures.is_empty(), "{:?}", check.failures);

    let forged = r#"{"MoneyDeposited":{"transaction_id":"0192f000-0000-7000-8000-0000000000bb","amount":{"amount_minor":5000,"currency":"EUR"},"description":null,"balance_after":{"amount_minor":5015,"currency":"EUR"}}}"#;
    fixture.tamper_payload(&key, 2, forged).await;
    let failures = verify_stream(&store.stream("account", &key).await.unwrap());
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].sequence, 2);
    assert_eq!(failures[0].problem, ChainProblem::HashMismatch);
    // Verification as the auditors' endpoint runs it names the same event, for the
    // stream and for the whole store.
    let check = store
        .verify_chains(&[("account", key.clone())])
        .await
        .unwrap();
    assert_eq!(check.failures, failures);
    let whole = store.verify_all_chains(&["account"]).await.unwrap();
    assert_eq!(whole.failures, failures);
}

/// A whole-store pass taken in steps of any budget, each going on from the cursor the
/// last one returned, checks every stream once and finds what one pass finds.
async fn verifies_in_resumable_steps(fixture: &Fixture) {
    let store = &fixture.store;
    let mut keys = Vec::new();
    for deposits in 0..12 {
        let id = AccountId::new();
        let key = id.to_string();
        store
            .execute::<Account>(&key, Expected::Any, &metadata(), open(id, 0))
            .await
            .unwrap();
        for _ in 0..deposits {
            store
                .execute::<Account>(&key, Expected::Any, &metadata(), deposit(1))
                .await
                .unwrap();
        }
        keys.push(key);
    }
    let forged = r#"{"MoneyDeposited":{"transaction_id":"0192f000-0000-7000-8000-0000000000bb","amount":{"amount_minor":5000,"currency":"EUR"},"description":null,"balance_after":{"amount_minor":5015,"currency":"EUR"}}}"#;
    fixture.tamper_payload(&keys[5], 2, forged).await;
    // No client streams: a type with nothing to check costs no step of its own.
    let kinds = ["client", "account"];
    let whole = store.verify_all_chains(&kinds).await.unwrap();
    assert_eq!((whole.streams, whole.events), (12, 12 + 66));
    assert_eq!(whole.failures.len(), 1, "{:?}", whole.failures);
    assert_eq!(whole.failures[0].aggregate_id, keys[5]);
    for budget in [1, 5, 40, 1_000] {
        let mut cursor = VerifyCursor::default();
        let (mut streams, mut events, mut failures, mut steps) = (0, 0, Vec::new(), 0);
        // As a run takes them: the streams listed once (where a backend must list them).
        let mut listing = StreamListing::default();
        loop {
            let step = store
                .verify_step_listed(&kinds, &cursor, budget, &mut listing)
                .await
                .unwrap();
            steps += 1;
            streams += step.check.streams;
            events += step.check.events;
            failures.extend(step.check.failures);
            match step.next {
                Some(next) => cursor = next,
                None => break,
            }
            assert!(steps <= whole.streams, "budget {budget}: no end");
        }
        assert_eq!(
            (streams, events, &failures),
            (whole.streams, whole.events, &whole.failures),
            "budget {budget}"
        );
        if budget == 1 {
            assert_eq!(steps, whole.streams, "a stream a step");
        }
    }
    // A cursor naming a type not being checked is refused, not read as "done".
    let unknown = VerifyCursor {
        kind: "ledger".into(),
        after_id: None,
    };
    assert!(store.verify_step(&kinds, &unknown, 1).await.is_err());
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
                deposited(balance)
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
    // Verification reads it a part at a time.
    let check = store
        .verify_chains(&[("account", key.clone())])
        .await
        .unwrap();
    assert_eq!((check.streams, check.events), (1, 10_001));
    assert!(check.failures.is_empty(), "{:?}", check.failures);
    // And in a whole-store pass, whose pages end inside the stream.
    let whole = store.verify_all_chains(&["account"]).await.unwrap();
    assert!(whole.events >= 10_001 && whole.streams >= 1, "{whole:?}");
    assert!(whole.failures.is_empty(), "{:?}", whole.failures);
}

/// Verification reads a long stream in parts; events deleted across a part's end, and
/// one slipped in before the first, are still found.
async fn verifies_a_long_stream_in_parts(fixture: &Fixture) {
    let store = &fixture.store;
    let id = AccountId::new();
    let key = id.to_string();
    store
        .execute::<Account>(&key, Expected::Any, &metadata(), open(id, 0))
        .await
        .unwrap();
    let mut loaded = store.load::<Account>(&key).await.unwrap();
    for _ in 0..5 {
        let events: Vec<AccountEvent> = (0..1_000)
            .map(|n| deposited(loaded.version as i64 + n))
            .collect();
        let sealed = store
            .append::<Account>(&key, &loaded, &events, &metadata())
            .await
            .unwrap();
        loaded = loaded.advanced(events, &sealed);
    }
    fixture
        .execute_sql(&format!(
            "DELETE FROM events WHERE aggregate_id = '{key}' AND sequence BETWEEN 1999 AND 2001"
        ))
        .await;
    let check = store
        .verify_chains(&[("account", key.clone())])
        .await
        .unwrap();
    assert_eq!(check.events, 5_001 - 3);
    let problems: Vec<(usize, ChainProblem)> = check
        .failures
        .iter()
        .map(|f| (f.sequence, f.problem.clone()))
        .collect();
    let whole = store.verify_all_chains(&["account"]).await.unwrap();
    assert_eq!(
        whole.failures, check.failures,
        "the whole-store pass agrees"
    );
    assert_eq!(
        problems,
        [
            (
                2002,
                ChainProblem::SequenceGap {
                    expected: 1999,
                    found: 2002
                }
            ),
            (2002, ChainProblem::BrokenLink)
        ]
    );
    fixture
        .execute_sql(&format!(
            "INSERT INTO events SELECT aggregate_type, aggregate_id, 0, event_type, event_version, \
             payload, metadata FROM events WHERE aggregate_id = '{key}' AND sequence = 1"
        ))
        .await;
    let check = store
        .verify_chains(&[("account", key.clone())])
        .await
        .unwrap();
    assert_eq!(check.events, 5_001 - 3 + 1);
    assert_eq!(
        check.failures[0].problem,
        ChainProblem::SequenceGap {
            expected: 1,
            found: 0
        }
    );
    let whole = store.verify_all_chains(&["account"]).await.unwrap();
    assert_eq!(
        whole.failures, check.failures,
        "the whole-store pass agrees"
    );
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

/// On SQLite, holds the file's write lock from outside the store while `work` starts,
/// so that the store's writer waits (its first group in SQLite's busy handler) and the
/// writes asked meanwhile gather into one group behind it. Elsewhere only runs `work`.
async fn holding_the_file<F: std::future::Future>(store: &EventStore, work: F) -> F::Output {
    let Backend::Sqlite(sqlite) = store.backend() else {
        return work.await;
    };
    let mut connection = sqlite.pool().acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *connection)
        .await
        .unwrap();
    let release = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        sqlx::query("COMMIT")
            .execute(&mut *connection)
            .await
            .unwrap();
    };
    futures::join!(work, release).0
}

/// A claim that is new and not a recovery: the caller runs its request for the first time.
fn is_fresh(claim: &Claim) -> bool {
    matches!(
        claim,
        Claim::New {
            recovering: false,
            ..
        }
    )
}

/// Many record writes at once, as keyed commands under load make them (on SQLite they
/// share transactions): every key claimed twice at once is won by exactly one claim;
/// renewals, answers and releases made meanwhile land on their own keys only.
async fn claims_many_keys_at_once(store: &EventStore) {
    let response = |n: usize| StoredResponse {
        status: 201,
        headers: vec![("location".into(), format!("/v1/things/{n}"))],
        body: format!("{{\"n\":{n}}}").into_bytes(),
    };
    for n in 0..10 {
        let key = format!("done-{n}");
        store
            .claim_idempotency("carol", &key, "h", LEASE)
            .await
            .unwrap();
    }
    // Every fifth key is claimed by two different requests at once.
    let claims = (0..20).flat_map(|n| {
        let key = format!("new-{n}");
        [0, 1].map(move |i| {
            let hash = if n % 5 == 0 && i == 1 { "other" } else { "h" };
            (key.clone(), hash)
        })
    });
    let claims = futures::future::join_all(claims.map(|(key, hash)| async move {
        let claim = store.claim_idempotency("carol", &key, hash, LEASE).await;
        (key, claim.unwrap())
    }));
    let finishing = futures::future::join_all((0..10).map(|n| async move {
        let key = format!("done-{n}");
        store.renew_idempotency("carol", &key, LEASE).await?;
        if n % 2 == 0 {
            store
                .complete_idempotency("carol", &key, &response(n))
                .await
        } else {
            store.release_idempotency("carol", &key).await
        }
    }));
    let (claims, finished) =
        holding_the_file(store, async { futures::join!(claims, finishing) }).await;
    finished.into_iter().collect::<Result<Vec<_>, _>>().unwrap();
    for (n, pair) in claims.chunks(2).enumerate() {
        let [(key, first), (_, second)] = pair else {
            unreachable!("pairs")
        };
        let won = [first, second]
            .iter()
            .filter(|claim| is_fresh(claim))
            .count();
        assert_eq!(won, 1, "{key}: {first:?}, {second:?}");
        let lost = if n % 5 == 0 {
            Claim::Mismatch
        } else {
            Claim::InProgress
        };
        assert!(
            [first, second].contains(&&lost),
            "{key}: {first:?}, {second:?}"
        );
    }
    for n in 0..10 {
        let key = format!("done-{n}");
        let claim = store
            .claim_idempotency("carol", &key, "h", LEASE)
            .await
            .unwrap();
        if n % 2 == 0 {
            assert_eq!(claim, Claim::Replay(response(n)), "{key}");
        } else {
            assert!(is_fresh(&claim), "{key}: {claim:?}");
        }
    }
}

/// One group of record writes of distinct keys, each kind of claim outcome among them
/// (on SQLite the new claims and the answers are then one statement each): every write
/// gets its own outcome, and lands on its own key.
async fn answers_each_write_of_a_group_of_distinct_keys(store: &EventStore) {
    let response = |n: usize| StoredResponse {
        status: 200,
        headers: vec![("etag".into(), format!("\"{n}\""))],
        body: format!("{{\"n\":{n}}}").into_bytes(),
    };
    let claim = |key: &'static str, hash: &'static str, lease| async move {
        store.claim_idempotency("erin", key, hash, lease).await
    };
    for key in ["replayed", "held", "answer-0", "answer-1", "answer-2"] {
        assert!(matches!(
            claim(key, "h", LEASE).await.unwrap(),
            Claim::New { .. }
        ));
    }
    store
        .complete_idempotency("erin", "replayed", &response(9))
        .await
        .unwrap();
    assert!(matches!(
        claim("lapsed", "h", std::time::Duration::ZERO)
            .await
            .unwrap(),
        Claim::New { .. }
    ));
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let fresh = ["fresh-0", "fresh-1", "fresh-2", "fresh-3"];
    let claims = futures::future::join_all(fresh.iter().map(|key| claim(key, "h", LEASE)).chain([
        claim("replayed", "h", LEASE),
        claim("held", "h", LEASE),
        claim("replayed", "other", LEASE),
        claim("lapsed", "h", LEASE),
    ]));
    let answers = futures::future::join_all((0..3).map(|n| async move {
        let key = format!("answer-{n}");
        store.complete_idempotency("erin", &key, &response(n)).await
    }));
    let (claims, answers) =
        holding_the_file(store, async { futures::join!(claims, answers) }).await;
    answers.into_iter().collect::<Result<Vec<_>, _>>().unwrap();
    let claims: Vec<Claim> = claims.into_iter().map(Result::unwrap).collect();
    for (key, claim) in fresh.iter().zip(&claims) {
        assert!(is_fresh(claim), "{key}: {claim:?}");
    }
    assert_eq!(claims[4], Claim::Replay(response(9)));
    assert_eq!(claims[5], Claim::InProgress);
    assert_eq!(claims[6], Claim::Mismatch);
    assert!(
        matches!(
            claims[7],
            Claim::New {
                recovering: true,
                ..
            }
        ),
        "{:?}",
        claims[7]
    );
    for key in fresh {
        assert_eq!(
            claim(key, "h", LEASE).await.unwrap(),
            Claim::InProgress,
            "{key}"
        );
    }
    for n in 0..3 {
        let key = format!("answer-{n}");
        let again = store
            .claim_idempotency("erin", &key, "h", LEASE)
            .await
            .unwrap();
        assert_eq!(again, Claim::Replay(response(n)), "{key}");
    }
}

/// A record write the database refuses (here a key a trigger refuses) fails alone: the
/// writes made with it in a group still land.
async fn refuses_a_bad_record_write_alone(fixture: &Fixture) {
    match fixture.store.backend() {
        Backend::Postgres(_) => {
            fixture
                .before_insert_on_postgres(
                    "refuse_poison",
                    "idempotency",
                    "IF NEW.key = 'poison' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW;",
                )
                .await;
        }
        // ROLLBACK undoes the whole transaction the write is made in.
        _ => {
            fixture
                .execute_sql(
                    "CREATE TRIGGER poison BEFORE INSERT ON idempotency \
                     WHEN NEW.key = 'poison' BEGIN SELECT RAISE(ROLLBACK, 'refused'); END",
                )
                .await
        }
    }
    let store = &fixture.store;
    let mut keys: Vec<String> = (0..16).map(|n| format!("good-{n}")).collect();
    keys.insert(8, "poison".into());
    let claims = holding_the_file(
        store,
        futures::future::join_all(
            keys.iter()
                .map(|key| store.claim_idempotency("dave", key, "h", LEASE)),
        ),
    )
    .await;
    for (key, claim) in keys.iter().zip(claims) {
        if key == "poison" {
            assert!(claim.is_err(), "{claim:?}");
        } else {
            assert!(matches!(claim, Ok(Claim::New { .. })), "{key}: {claim:?}");
            assert_eq!(
                store
                    .claim_idempotency("dave", key, "h", LEASE)
                    .await
                    .unwrap(),
                Claim::InProgress,
                "{key} was kept"
            );
        }
    }
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

/// One of the commands a busy account sees, picked by `n`; some are refused (a withdrawal
/// beyond the balance, a deposit while frozen), which writes nothing.
fn busy_account_command(n: u64) -> AccountCommand {
    match n % 7 {
        0..=2 => deposit(1 + (n % 500) as i64),
        3 => AccountCommand::Withdraw {
            transaction_id: TransactionId::new(),
            amount: amt(1 + (n % 900) as i64),
            description: Some(format!("withdrawal {n}")),
        },
        4 => AccountCommand::Freeze {
            reason: Some("review".into()),
        },
        5 => AccountCommand::Unfreeze,
        _ => AccountCommand::DebitForTransfer {
            transaction_id: TransactionId::new(),
            transfer_id: domain::TransferId::new(),
            to_account: AccountId::new(),
            amount: amt(1 + (n % 300) as i64),
            reference: None,
        },
    }
}

/// The state replayed from the first `count` events of `stream`, from nothing.
fn replayed(stream: &[cqrs_es::persist::SerializedEvent], count: usize) -> Account {
    use cqrs_es::Aggregate;
    let mut account = Account::default();
    for event in &stream[..count] {
        account.apply(domain::upcast::decode(event).unwrap());
    }
    account
}

/// Loads and states as of any version or time, read through snapshots taken every 4
/// events, equal the replay of the events from the first one.
async fn snapshots_equal_replay(fixture: &Fixture) {
    let store = fixture.second_store().await.with_snapshot_every(4);
    let id = AccountId::new();
    let key = id.to_string();
    let start = Utc::now();
    // Times mostly rise, but not always: a command's time is taken when it arrives,
    // before it waits its turn, so every third one here is earlier than the one before.
    let at = |n: u64| CommandMetadata {
        occurred_at: start + chrono::Duration::seconds(n as i64 * 2 - 3 * i64::from(n % 3 == 0)),
        idempotency_key: None,
        ..metadata()
    };
    store
        .execute::<Account>(&key, Expected::Any, &at(0), open(id, 10_000))
        .await
        .unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for n in 1..=90u64 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let _ = store
            .execute::<Account>(
                &key,
                Expected::Any,
                &at(n),
                busy_account_command(seed >> 33),
            )
            .await;
        if n % 10 != 0 {
            continue;
        }
        let stream = store.stream("account", &key).await.unwrap();
        let loaded = store.load_from_store::<Account>(&key).await.unwrap();
        assert_eq!(loaded.version, stream.len() as u64);
        assert_eq!(
            loaded.aggregate,
            replayed(&stream, stream.len()),
            "load at {n}"
        );
        for version in 1..=stream.len() {
            let state = store
                .state_at::<Account>(&key, event_store::AsOf::Version(version as u64))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(state.version, version as u64);
            assert_eq!(state.latest_version, stream.len() as u64);
            assert_eq!(
                state.aggregate,
                replayed(&stream, version),
                "version {version}"
            );
            let time = stream[version - 1].metadata["occurred_at"]
                .as_str()
                .unwrap();
            let by_time = store
                .state_at::<Account>(&key, event_store::AsOf::Time(time))
                .await
                .unwrap()
                .unwrap();
            // As of a time: every event until the first one after it.
            let through = stream
                .iter()
                .take_while(|e| e.metadata["occurred_at"].as_str().unwrap() <= time)
                .count();
            assert_eq!(by_time.version, through as u64, "as of {time}");
            assert_eq!(
                by_time.aggregate,
                replayed(&stream, through),
                "as of {time}"
            );
        }
    }
    let before = store
        .state_at::<Account>(&key, event_store::AsOf::Time("2000-01-01T00:00:00Z"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((before.version, before.aggregate), (0, Account::default()));
    assert!(store
        .state_at::<Account>(&AccountId::new().to_string(), event_store::AsOf::Latest)
        .await
        .unwrap()
        .is_none());
    if fixture.sql_backend() {
        let (kept,) = fixture
            .query_one("SELECT COUNT(*) FROM stream_snapshots")
            .await;
        assert!(kept >= 10, "snapshots were taken: {kept}");
    }
    store.close().await;
}

/// A stream of `count` deposits after the opening, on a store that snapshots every 4.
async fn deposits(store: &EventStore, count: u64) -> (String, Account) {
    let id = AccountId::new();
    let key = id.to_string();
    store
        .execute::<Account>(&key, Expected::Any, &metadata(), open(id, 0))
        .await
        .unwrap();
    let mut last = None;
    for _ in 0..count {
        let committed = store
            .execute::<Account>(&key, Expected::Any, &metadata(), deposit(5))
            .await
            .unwrap();
        last = Some(committed.aggregate);
    }
    (key, last.unwrap())
}

/// Snapshots written under an older schema (an event version or state shape since
/// changed) are ignored, remade from the events, and dropped.
async fn ignores_snapshots_of_an_older_schema(fixture: &Fixture) {
    let store = fixture.second_store().await.with_snapshot_every(4);
    let (key, account) = deposits(&store, 11).await;
    let current = domain::snapshot::schema::<Account>();
    assert_eq!(
        fixture
            .query_one(&format!("SELECT COUNT(*) FROM stream_snapshots WHERE aggregate_id = '{key}' AND schema = '{current}'"))
            .await
            .0,
        3
    );
    // As if taken before `AccountOpened` 2, with a state that no longer matches.
    fixture
        .execute_sql(&format!(
            "UPDATE stream_snapshots SET schema = 'account/1/AccountOpened@1', \
             state = replace(state, '\"amount_minor\":', '\"amount_minor\":9') WHERE aggregate_id = '{key}'"
        ))
        .await;
    let loaded = store.load_from_store::<Account>(&key).await.unwrap();
    assert_eq!(loaded.aggregate, account);
    assert_eq!(loaded.aggregate.balance.amount_minor(), 55);
    let state = store
        .state_at::<Account>(&key, event_store::AsOf::Version(9))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.aggregate.balance.amount_minor(), 40);
    // The load replayed the whole stream and took a new snapshot; the old ones are gone.
    let (old,) = fixture
        .query_one(&format!("SELECT COUNT(*) FROM stream_snapshots WHERE aggregate_id = '{key}' AND schema <> '{current}'"))
        .await;
    let (new,) = fixture
        .query_one(&format!("SELECT MAX(version) FROM stream_snapshots WHERE aggregate_id = '{key}' AND schema = '{current}'"))
        .await;
    assert_eq!((old, new), (0, 12));
    store.close().await;
}

/// A snapshot that no longer ends where its stream's chain says (the events were
/// rewritten, or the snapshot was) is ignored, and so is one that cannot be read.
async fn ignores_snapshots_that_do_not_match_the_stream(fixture: &Fixture) {
    let store = fixture.second_store().await.with_snapshot_every(4);
    let (key, account) = deposits(&store, 11).await;
    fixture
        .execute_sql(&format!(
            "UPDATE stream_snapshots SET last_hash = 'not-the-hash', \
             state = replace(state, '\"amount_minor\":', '\"amount_minor\":9') WHERE aggregate_id = '{key}' AND version = 8"
        ))
        .await;
    fixture
        .execute_sql(&format!(
            "UPDATE stream_snapshots SET state = '{{\"not\": \"an account\"}}' WHERE aggregate_id = '{key}' AND version = 4"
        ))
        .await;
    for version in [4, 5, 8, 9, 12] {
        let state = store
            .state_at::<Account>(&key, event_store::AsOf::Version(version))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            state.aggregate.balance.amount_minor(),
            5 * (version as i64 - 1),
            "version {version}"
        );
    }
    assert_eq!(
        store
            .load_from_store::<Account>(&key)
            .await
            .unwrap()
            .aggregate,
        account
    );
    store.close().await;
}

/// On PostgreSQL several processes write: a command decided on a cached copy that
/// another process has outdated is decided again on fresh state, `If-Match` is checked
/// against the store, and plain loads (authorization) never see the stale copy.
#[tokio::test]
async fn postgres_commands_are_decided_on_fresh_state_when_another_process_wrote() {
    let fixture = Fixture::postgres().await;
    let (one, other) = (&fixture.store, fixture.second_store().await);
    assert!(one.caches_aggregates());
    let id = AccountId::new();
    let key = id.to_string();
    one.execute::<Account>(&key, Expected::Any, &metadata(), open(id, 100))
        .await
        .unwrap();
    // `one` holds version 1 in its cache; `other` takes the account to version 3.
    for _ in 0..2 {
        other
            .execute::<Account>(&key, Expected::Any, &metadata(), deposit(50))
            .await
            .unwrap();
    }
    assert_eq!(one.load::<Account>(&key).await.unwrap().version, 3);
    let withdrawn = one
        .execute::<Account>(
            &key,
            Expected::Version(3),
            &metadata(),
            AccountCommand::Withdraw {
                transaction_id: TransactionId::new(),
                amount: amt(180),
                description: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(withdrawn.version, 4);
    assert_eq!(withdrawn.aggregate.balance.amount_minor(), 20);
    other
        .execute::<Account>(&key, Expected::Any, &metadata(), deposit(5))
        .await
        .unwrap();
    // A stale cache must not refuse a version the store is really at.
    assert!(matches!(
        one.execute::<Account>(&key, Expected::Version(4), &metadata(), deposit(1))
            .await,
        Err(ExecuteError::VersionMismatch {
            expected: 4,
            actual: 5
        })
    ));
    let at_five = one
        .execute::<Account>(&key, Expected::Version(5), &metadata(), deposit(1))
        .await
        .unwrap();
    assert_eq!(
        (at_five.version, at_five.aggregate.balance.amount_minor()),
        (6, 26)
    );
    // A refusal on the cached copy (26) is decided again on the store's state (526).
    other
        .execute::<Account>(&key, Expected::Any, &metadata(), deposit(500))
        .await
        .unwrap();
    let withdrawn = one
        .execute::<Account>(
            &key,
            Expected::Any,
            &metadata(),
            AccountCommand::Withdraw {
                transaction_id: TransactionId::new(),
                amount: amt(520),
                description: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            withdrawn.version,
            withdrawn.aggregate.balance.amount_minor()
        ),
        (8, 6)
    );
    // Likewise "not frozen" on the cached copy: the other process froze the account,
    // so unfreezing it writes an event.
    other
        .execute::<Account>(
            &key,
            Expected::Any,
            &metadata(),
            AccountCommand::Freeze { reason: None },
        )
        .await
        .unwrap();
    let unfrozen = one
        .execute::<Account>(&key, Expected::Any, &metadata(), AccountCommand::Unfreeze)
        .await;
    assert_eq!(
        unfrozen.map(|c| c.version).ok(),
        Some(10),
        "unfrozen on fresh state"
    );
    let stream = one.stream("account", &key).await.unwrap();
    assert_eq!(stream.len(), 10);
    assert!(verify_stream(&stream).is_empty());
    other.close().await;
    fixture.finish().await;
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
            async fn refuses_only_the_stale_appends_of_a_group() {
                let fixture = Fixture::$backend().await;
                super::refuses_only_the_stale_appends_of_a_group(&fixture.store).await;
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
            async fn verifies_in_resumable_steps() {
                let fixture = Fixture::$backend().await;
                super::verifies_in_resumable_steps(&fixture).await;
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

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn claims_many_keys_at_once() {
                let fixture = Fixture::$backend().await;
                super::claims_many_keys_at_once(&fixture.store).await;
                fixture.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn answers_each_write_of_a_group_of_distinct_keys() {
                let fixture = Fixture::$backend().await;
                super::answers_each_write_of_a_group_of_distinct_keys(&fixture.store).await;
                fixture.finish().await;
            }

            #[tokio::test]
            async fn snapshots_equal_replay() {
                let fixture = Fixture::$backend().await;
                super::snapshots_equal_replay(&fixture).await;
                fixture.finish().await;
            }
        }
    };
}

/// The tests that change tables behind the store's back with SQL: the SQL stores
/// (DynamoDB keeps no snapshots).
macro_rules! snapshot_tables {
    ($backend:ident) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            async fn ignores_snapshots_of_an_older_schema() {
                let fixture = Fixture::$backend().await;
                super::super::ignores_snapshots_of_an_older_schema(&fixture).await;
                fixture.finish().await;
            }

            #[tokio::test]
            async fn ignores_snapshots_that_do_not_match_the_stream() {
                let fixture = Fixture::$backend().await;
                super::super::ignores_snapshots_that_do_not_match_the_stream(&fixture).await;
                fixture.finish().await;
            }

            #[tokio::test]
            async fn verifies_a_long_stream_in_parts() {
                let fixture = Fixture::$backend().await;
                super::super::verifies_a_long_stream_in_parts(&fixture).await;
                fixture.finish().await;
            }
        }
    };
}

/// An append abandoned after it was handed to the group commit (its caller gone) still
/// commits; the cached copy from before it must not outlive it, or later reads and
/// commands would see the stream without the appended events.
#[tokio::test]
async fn an_abandoned_append_leaves_no_stale_copy_behind_on_sqlite() {
    let fixture = Fixture::sqlite().await;
    an_abandoned_append_leaves_no_stale_copy_behind(&fixture.store).await;
    fixture.finish().await;
}

#[tokio::test]
async fn an_abandoned_append_leaves_no_stale_copy_behind_on_postgres() {
    let fixture = Fixture::postgres().await;
    an_abandoned_append_leaves_no_stale_copy_behind(&fixture.store).await;
    fixture.finish().await;
}

async fn an_abandoned_append_leaves_no_stale_copy_behind(store: &EventStore) {
    let (key, loaded) = opened(store).await;
    let deposit = [deposited(101)];
    let meta = metadata();
    let mut append = Box::pin(store.append::<Account>(&key, &loaded, &deposit, &meta));
    // Polled once: queued for the writer, then dropped before its outcome is known.
    assert!(futures::poll!(append.as_mut()).is_pending());
    drop(append);
    for _ in 0..500 {
        if store
            .load_from_store::<Account>(&key)
            .await
            .unwrap()
            .version
            == 2
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        store
            .load_from_store::<Account>(&key)
            .await
            .unwrap()
            .version,
        2
    );
    assert_eq!(store.load::<Account>(&key).await.unwrap().version, 2);
}

/// `count` ids of streams not written yet.
fn new_keys(count: usize) -> Vec<String> {
    (0..count).map(|_| AccountId::new().to_string()).collect()
}

/// 16 new stream ids with `poison` among them, which a test's trigger refuses.
fn poisoned_keys() -> Vec<String> {
    let mut keys = new_keys(16);
    keys.insert(8, "poison".into());
    keys
}

/// Appends a deposit to each of the new streams `keys` at once: one-event appends,
/// which the group writers batch.
async fn deposit_into_each(
    store: &EventStore,
    keys: &[String],
) -> Vec<Result<Vec<cqrs_es::persist::SerializedEvent>, StoreError>> {
    let meta = metadata();
    let event = [deposited(1)];
    let fresh = store.load::<Account>("unused").await.unwrap();
    futures::future::join_all(
        keys.iter()
            .map(|key| store.append::<Account>(key, &fresh, &event, &meta)),
    )
    .await
}

/// Every append answered written is stored, and every one answered failed is not.
async fn answered_as_stored<T: std::fmt::Debug>(
    store: &EventStore,
    keys: &[String],
    outcomes: &[Result<T, StoreError>],
) {
    for (key, outcome) in keys.iter().zip(outcomes) {
        let stored = store.stream("account", key).await.unwrap().len();
        assert_eq!(stored, usize::from(outcome.is_ok()), "{key}: {outcome:?}");
    }
}

/// A group PostgreSQL refuses whole (here for one append's id, which holds a NUL byte
/// its text type cannot store) costs only that append: the others are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refuses_a_bad_append_alone() {
    let fixture = Fixture::postgres().await;
    let store = &fixture.store;
    let mut keys = new_keys(16);
    keys.push("bad\0id".into());
    let outcomes = deposit_into_each(store, &keys).await;
    for (key, outcome) in keys.iter().zip(outcomes) {
        if key.contains('\0') {
            assert!(
                matches!(outcome, Err(StoreError::Unavailable(_))),
                "{outcome:?}"
            );
        } else {
            outcome.unwrap();
            assert_eq!(store.stream("account", key).await.unwrap().len(), 1);
        }
    }
    fixture.finish().await;
}

/// A group of appends SQLite rolls back whole mid-way (here a trigger's ROLLBACK, as a
/// full disk or an I/O error would) fails every append in it: none is written and
/// answered failed, none answered written and missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_answers_each_append_of_a_rolled_back_group_as_it_is() {
    let fixture = Fixture::sqlite().await;
    fixture.execute_sql(SQLITE_POISON).await;
    let store = &fixture.store;
    let keys = poisoned_keys();
    let outcomes = holding_the_file(store, deposit_into_each(store, &keys)).await;
    answered_as_stored(store, &keys, &outcomes).await;
    let failed = outcomes.iter().filter(|outcome| outcome.is_err()).count();
    assert!(failed > 1, "the poisoned append shared its group");
    fixture.finish().await;
}

/// SQLite's group writers keep a connection each from one group to the next. Closing
/// the store waits for every connection, so it must still end, and writes asked after
/// it must fail rather than wait; the file then opens with everything written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_closes_while_its_writers_keep_connections() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = EventStore::new(Backend::open_sqlite(&path).await.unwrap());
    let keys = new_keys(8);
    for outcome in deposit_into_each(&store, &keys).await {
        outcome.unwrap();
    }
    let claim = store
        .claim_idempotency("carol", "k", "h", LEASE)
        .await
        .unwrap();
    assert!(is_fresh(&claim), "{claim:?}");
    let fresh = store.load::<Account>("unused").await.unwrap();
    let within = std::time::Duration::from_secs(30);
    tokio::time::timeout(within, store.close())
        .await
        .expect("the store closed");
    let late = tokio::time::timeout(
        within,
        store.append::<Account>(&new_keys(1)[0], &fresh, &[deposited(1)], &metadata()),
    )
    .await
    .expect("an append after closing was answered");
    assert!(late.is_err(), "{late:?}");
    let claim = tokio::time::timeout(within, store.claim_idempotency("carol", "l", "h", LEASE))
        .await
        .expect("a claim after closing was answered");
    assert!(claim.is_err(), "{claim:?}");
    let reopened = EventStore::new(Backend::open_sqlite(&path).await.unwrap());
    for key in &keys {
        assert_eq!(reopened.stream("account", key).await.unwrap().len(), 1);
    }
    let again = reopened
        .claim_idempotency("carol", "k", "h", LEASE)
        .await
        .unwrap();
    assert!(matches!(again, Claim::InProgress), "{again:?}");
    reopened.close().await;
}

/// A trigger that rolls back the transaction of any append to the stream `poison`.
const SQLITE_POISON: &str = "CREATE TRIGGER poison BEFORE INSERT ON events \
     WHEN NEW.aggregate_id = 'poison' BEGIN SELECT RAISE(ROLLBACK, 'refused'); END";

/// The same when the group first meets a taken sequence: its one INSERT fails, the
/// group is written again append by append, and the poison rolls that back mid-way.
/// Every append is still answered as it is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_answers_a_group_rolled_back_after_a_taken_sequence_as_it_is() {
    let fixture = Fixture::sqlite().await;
    fixture.execute_sql(SQLITE_POISON).await;
    let store = &fixture.store;
    let keys = poisoned_keys();
    // The fourth stream already has its first event: its append in the group is stale.
    let stale = &keys[3];
    deposit_into_each(store, std::slice::from_ref(stale)).await[0]
        .as_ref()
        .unwrap();
    let outcomes = holding_the_file(store, deposit_into_each(store, &keys)).await;
    assert!(outcomes[3].is_err(), "{:?}", outcomes[3]);
    for (key, outcome) in keys.iter().zip(&outcomes) {
        let stored = store.stream("account", key).await.unwrap().len();
        let before = usize::from(key == stale);
        assert_eq!(
            stored,
            before + usize::from(outcome.is_ok()),
            "{key}: {outcome:?}"
        );
    }
    let failed = outcomes.iter().filter(|outcome| outcome.is_err()).count();
    assert!(
        failed > 2,
        "the poisoned and the stale appends shared a group"
    );
    fixture.finish().await;
}

/// A group whose connection dies mid-statement (here a trigger makes the server end its
/// own session, as a restart or a network cut would) answers every append in it
/// "unavailable", as one append alone would be, and writes none of them; the writer
/// goes on with a new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_answers_a_group_whose_connection_died_unavailable() {
    let fixture = Fixture::postgres().await;
    fixture
        .before_insert_on_postgres(
            "end_session",
            "events",
            "IF NEW.aggregate_id = 'poison' THEN \
             PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5); END IF; \
             RETURN NEW;",
        )
        .await;
    let store = &fixture.store;
    let keys = poisoned_keys();
    let outcomes = deposit_into_each(store, &keys).await;
    answered_as_stored(store, &keys, &outcomes).await;
    let mut unavailable = 0;
    for (key, outcome) in keys.iter().zip(&outcomes) {
        if let Err(error) = outcome {
            assert!(
                matches!(error, StoreError::Unavailable(_)),
                "{key}: {error:?}"
            );
            unavailable += 1;
        }
    }
    assert!(unavailable > 1, "the poisoned append shared its group");
    for outcome in deposit_into_each(store, &new_keys(8)).await {
        outcome.unwrap();
    }
    fixture.finish().await;
}

/// Connections are pinged before use only after sitting idle (a ping before every
/// statement doubled the round trips): those the server ended while they sat idle are
/// still found dead and replaced, and no append fails for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replaces_connections_the_server_ended_while_idle() {
    let fixture = Fixture::postgres().await;
    let store = &fixture.store;
    for outcome in deposit_into_each(store, &new_keys(8)).await {
        outcome.unwrap();
    }
    let Backend::Postgres(postgres) = store.backend() else {
        unreachable!("a PostgreSQL fixture")
    };
    let (ended,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()) AS ended",
    )
    .fetch_one(postgres.pool())
    .await
    .unwrap();
    assert!(ended > 0, "the store kept connections to end");
    tokio::time::sleep(
        event_store::pool_check::IDLE_BEFORE_PING + std::time::Duration::from_millis(200),
    )
    .await;
    for outcome in deposit_into_each(store, &new_keys(8)).await {
        outcome.unwrap();
    }
    fixture.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_refuses_a_bad_record_write_alone() {
    let fixture = Fixture::sqlite().await;
    refuses_a_bad_record_write_alone(&fixture).await;
    fixture.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refuses_a_bad_record_write_alone() {
    let fixture = Fixture::postgres().await;
    refuses_a_bad_record_write_alone(&fixture).await;
    fixture.finish().await;
}

mod snapshot_table {
    use super::*;
    snapshot_tables!(sqlite);
    snapshot_tables!(postgres);
}

conformance!(sqlite);
conformance!(postgres);
#[cfg(feature = "dynamo")]
conformance!(dynamo);
