//! The projector under at-least-once, unordered delivery: duplicates are skipped, a gap is
//! filled from the event store, out-of-order delivery ends in the same state as in-order,
//! a poison event is dead-lettered without stopping other streams, and a lock timeout is
//! retried, not dead-lettered.

use chrono::Utc;
use domain::account::{Account, AccountCommand, AccountType};
use domain::client::{Client, ClientCommand};
use domain::contact::{Address, PersonalDetails};
use domain::metadata::CommandMetadata;
use domain::policy::Role;
use domain::{AccountId, Amount, ClientId, Currency, StaffId, TransactionId};
use event_store::{
    Backend, CommitFeed, EventStore, Expected, SqliteFeed, SqliteStore, StoredEvent,
};
use projections::models::{accounts, clients, transactions};
use projections::{sqlite_url, CatchUp, Projector, ReadStore, SystemLog};
use std::sync::Arc;

struct Setup {
    store: Arc<EventStore>,
    feed: SqliteFeed,
    read: Arc<ReadStore>,
    log: Arc<SystemLog>,
    projector: Projector<SqliteFeed>,
    _dir: tempfile::TempDir,
}

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

fn eur(amount: i64) -> Amount {
    Amount::new(amount, Currency::parse("EUR").unwrap()).unwrap()
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("ledger.db"))
        .await
        .unwrap();
    let feed = sqlite.feed();
    let store = Arc::new(EventStore::new(sqlite.into()));
    let read = Arc::new(
        ReadStore::open(&sqlite_url(&dir.path().join("read.db")))
            .await
            .unwrap(),
    );
    let log = Arc::new(
        SystemLog::open(&sqlite_url(&dir.path().join("log.db")))
            .await
            .unwrap(),
    );
    let projector = Projector::following(store.clone(), feed.clone(), read.clone(), log.clone());
    Setup {
        store,
        feed,
        read,
        log,
        projector,
        _dir: dir,
    }
}

/// Onboards `client` for `agent`, named Ada Lovelace, with `email`.
async fn onboard(store: &EventStore, client: ClientId, agent: StaffId, email: &str) {
    let details = PersonalDetails::builder()
        .first_name("Ada")
        .last_name("Lovelace")
        .date_of_birth("1990-01-01")
        .gender("female")
        .email(email)
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
            &client.to_string(),
            Expected::Any,
            &metadata(),
            ClientCommand::Onboard {
                client_id: client,
                agent_id: agent,
                details,
            },
        )
        .await
        .unwrap();
}

/// Opens an empty EUR checking account for `client`; returns its id.
async fn open_account(store: &EventStore, client: ClientId) -> String {
    let account = AccountId::new();
    let open = AccountCommand::Open {
        account_id: account,
        client_id: client,
        client: domain::client::ClientStanding::Active,
        account_type: AccountType::Checking,
        currency: Currency::parse("EUR").unwrap(),
        initial_deposit: None,
        opening_transaction_id: TransactionId::new(),
        account_number: domain::AccountNumber::derived(account),
    };
    store
        .execute::<Account>(&account.to_string(), Expected::Any, &metadata(), open)
        .await
        .unwrap();
    account.to_string()
}

/// A client with one account that saw `deposits` deposits of 10; returns the account id.
async fn account_with_deposits(store: &EventStore, deposits: usize) -> String {
    let client = ClientId::new();
    onboard(store, client, StaffId::new(), "ada@example.com").await;
    let account = open_account(store, client).await;
    deposit_tens(store, &account, deposits).await;
    account
}

/// `deposits` deposits of 10 into `account`.
async fn deposit_tens(store: &EventStore, account: &str, deposits: usize) {
    for _ in 0..deposits {
        let deposit = AccountCommand::Deposit {
            transaction_id: TransactionId::new(),
            amount: eur(10),
            description: None,
        };
        store
            .execute::<Account>(account, Expected::Any, &metadata(), deposit)
            .await
            .unwrap();
    }
}

async fn deliver(setup: &Setup, events: &[StoredEvent]) -> CatchUp {
    let pool = setup.read.pool();
    let mut tx = pool.begin().await.unwrap();
    let mut stats = CatchUp::default();
    for event in events {
        setup
            .projector
            .deliver(&mut tx, event, &mut stats)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    stats
}

/// Writes the first event of account stream `id` straight into the store's table,
/// bypassing the aggregate, as only a tool could.
async fn insert_first_event(
    setup: &Setup,
    id: &str,
    event_type: &str,
    event_version: &str,
    payload: &str,
    metadata: &str,
) {
    let Backend::Sqlite(sqlite) = setup.store.backend() else {
        unreachable!()
    };
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('account', $1, 1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(event_type)
    .bind(event_version)
    .bind(payload)
    .bind(metadata)
    .execute(sqlite.pool())
    .await
    .unwrap();
}

async fn balance(setup: &Setup, account: &str) -> (i64, i64) {
    let view = accounts::get(&setup.read.pool(), account)
        .await
        .unwrap()
        .expect("the account is projected");
    (view.balance.amount_minor, view.version)
}

async fn history_len(setup: &Setup, account: &str) -> usize {
    let filter = transactions::TransactionFilter {
        account_id: account.into(),
        limit: 200,
        ..Default::default()
    };
    transactions::list(&setup.read.pool(), filter)
        .await
        .unwrap()
        .items
        .len()
}

#[tokio::test]
async fn duplicates_are_skipped() {
    let setup = setup().await;
    let account = account_with_deposits(&setup.store, 3).await;
    let events = setup.feed.read_after(0, 100).await.unwrap();
    let first = deliver(&setup, &events).await;
    assert_eq!((first.applied, first.skipped), (5, 0));
    let again = deliver(&setup, &events).await;
    assert_eq!((again.applied, again.skipped), (0, 5));
    assert_eq!(balance(&setup, &account).await, (30, 4));
    assert_eq!(
        history_len(&setup, &account).await,
        3,
        "no movement is counted twice"
    );
}

#[tokio::test]
async fn out_of_order_delivery_ends_in_the_same_state() {
    let setup = setup().await;
    let account = account_with_deposits(&setup.store, 4).await;
    let mut events = setup.feed.read_after(0, 100).await.unwrap();
    events.reverse();
    let stats = deliver(&setup, &events).await;
    assert_eq!(
        stats.applied, 6,
        "the first delivery (the last event) pulls in every earlier one"
    );
    assert_eq!(stats.skipped, 4);
    assert_eq!(balance(&setup, &account).await, (40, 5));
    let view = accounts::get(&setup.read.pool(), &account)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !view.agent_id.is_empty(),
        "the client, projected after its account, named the agent"
    );
    assert_eq!(history_len(&setup, &account).await, 4);
}

#[tokio::test]
async fn a_gap_is_filled_from_the_store() {
    let setup = setup().await;
    let account = account_with_deposits(&setup.store, 2).await;
    let events = setup.feed.read_after(0, 100).await.unwrap();
    // Client, account opened, then the second deposit without the first.
    let stats = deliver(
        &setup,
        &[events[0].clone(), events[1].clone(), events[3].clone()],
    )
    .await;
    assert_eq!(stats.applied, 4);
    assert_eq!(balance(&setup, &account).await, (20, 3));
}

#[tokio::test]
async fn a_poison_event_is_dead_lettered_and_blocks_only_its_stream() {
    let setup = setup().await;
    let healthy = account_with_deposits(&setup.store, 1).await;
    let broken = account_with_deposits(&setup.store, 0).await;
    let events = setup.feed.read_after(0, 100).await.unwrap();
    deliver(&setup, &events).await;

    let template = events.last().unwrap().clone();
    let mut poison = template.clone();
    poison.position = 10_000;
    poison.event.sequence = 2;
    poison.event.event_type = "MoneyDeposited".into();
    poison.event.payload = serde_json::json!({"MoneyDeposited": {"amount": "lots"}});
    let mut after = poison.clone();
    after.position = 10_001;
    after.event.sequence = 3;
    let stats = deliver(&setup, &[poison, after]).await;
    assert_eq!((stats.applied, stats.dead_lettered), (0, 2));

    // Other streams carry on.
    let deposit = AccountCommand::Deposit {
        transaction_id: TransactionId::new(),
        amount: eur(5),
        description: None,
    };
    setup
        .store
        .execute::<Account>(&healthy, Expected::Any, &metadata(), deposit)
        .await
        .unwrap();
    let caught_up = setup.projector.catch_up().await.unwrap();
    assert!(caught_up.applied >= 1);
    assert_eq!(balance(&setup, &healthy).await, (15, 3));
    assert_eq!(balance(&setup, &broken).await, (0, 1));

    let pool = setup.read.pool();
    let (dead,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM dead_letters WHERE aggregate_id = $1")
            .bind(&broken)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(dead, 2);
    let logged = setup
        .log
        .list(projections::system_log::LogFilter {
            category: Some("projection".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(logged.items.len(), 1);
    assert_eq!(logged.items[0].level, "error");
}

#[tokio::test]
async fn a_crash_mid_batch_resumes_from_the_checkpoint() {
    let setup = setup().await;
    let account = account_with_deposits(&setup.store, 3).await;
    // A batch that applied but never committed leaves nothing behind.
    {
        let pool = setup.read.pool();
        let mut tx = pool.begin().await.unwrap();
        let mut stats = CatchUp::default();
        for event in setup.feed.read_after(0, 100).await.unwrap() {
            setup
                .projector
                .deliver(&mut tx, &event, &mut stats)
                .await
                .unwrap();
        }
        tx.rollback().await.unwrap();
    }
    assert!(accounts::get(&setup.read.pool(), &account)
        .await
        .unwrap()
        .is_none());
    let resumed = setup.projector.catch_up().await.unwrap();
    assert_eq!(resumed.applied, 5);
    assert_eq!(balance(&setup, &account).await, (30, 4));
    assert_eq!(setup.projector.catch_up().await.unwrap().applied, 0);
}

/// The same events projected into PostgreSQL (as on Aurora) give the same views as in
/// SQLite: one schema and one set of queries serve both.
#[tokio::test]
async fn postgres_read_models_match_sqlite() {
    let setup = setup().await;
    let client = ClientId::new();
    onboard(&setup.store, client, StaffId::new(), "ada@example.com").await;
    let account = open_account(&setup.store, client).await;
    deposit_tens(&setup.store, &account, 3).await;
    assert_eq!(setup.projector.catch_up().await.unwrap().redone, 0);

    let url = test_peers::postgres::fresh("crm_read").await;
    let pg_read = Arc::new(ReadStore::open(&url).await.unwrap());
    let pg_log = Arc::new(SystemLog::open(&url).await.unwrap());
    let pg_projector = Projector::following(
        setup.store.clone(),
        setup.feed.clone(),
        pg_read.clone(),
        pg_log,
    );
    let caught_up = pg_projector.catch_up().await.unwrap();
    assert_eq!((caught_up.applied, caught_up.redone), (5, 0));
    assert_eq!(
        clients::get(&setup.read.pool(), &client.to_string())
            .await
            .unwrap(),
        clients::get(&pg_read.pool(), &client.to_string())
            .await
            .unwrap()
    );

    let sqlite_view = accounts::get(&setup.read.pool(), &account).await.unwrap();
    let pg_view = accounts::get(&pg_read.pool(), &account).await.unwrap();
    assert_eq!(sqlite_view, pg_view);
    let history = |pool| {
        let filter = transactions::TransactionFilter {
            account_id: account.clone(),
            limit: 2,
            ..Default::default()
        };
        async move { transactions::list(&pool, filter).await.unwrap() }
    };
    let (sqlite_page, pg_page) = (
        history(setup.read.pool()).await,
        history(pg_read.pool()).await,
    );
    assert_eq!(sqlite_page.items, pg_page.items);
    assert_eq!(sqlite_page.next_cursor, pg_page.next_cursor);
    let clients = projections::models::clients::list(
        &pg_read.pool(),
        projections::models::clients::ClientFilter {
            q: Some("love".into()),
            limit: 10,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(clients.items.len(), 1);

    pg_read.close().await;
    test_peers::postgres::drop(&url).await;
}

/// Poison met while following the store: the fast batch fails, the batch is redone
/// event by event, and everything but the poison (and what follows it in its stream)
/// is applied.
#[tokio::test]
async fn poison_in_the_feed_is_set_aside_and_the_batch_goes_on() {
    let setup = setup().await;
    let before = account_with_deposits(&setup.store, 1).await;
    let nonsense = r#"{"AccountOpened": {"nonsense": true}}"#;
    insert_first_event(
        &setup,
        "broken-account",
        "AccountOpened",
        "1",
        nonsense,
        "{}",
    )
    .await;
    let after = account_with_deposits(&setup.store, 2).await;
    let caught_up = setup.projector.catch_up().await.unwrap();
    assert_eq!(caught_up.dead_lettered, 1);
    assert_eq!(balance(&setup, &before).await, (10, 2));
    assert_eq!(balance(&setup, &after).await, (20, 3));
    assert_eq!(history_len(&setup, &after).await, 2);
}

/// A batch writes its onboardings together: an account opened in the same batch as its
/// client, or before it (streams arrive unordered), gets the client's agent, and a later
/// event of a client onboarded in the batch applies to the client's row and its search
/// text.
#[tokio::test]
async fn onboardings_written_together_end_as_applied_one_by_one() {
    let setup = setup().await;
    let (a, b, c) = (ClientId::new(), ClientId::new(), ClientId::new());
    let (agent_a, agent_b, agent_c) = (StaffId::new(), StaffId::new(), StaffId::new());
    let before_its_client = open_account(&setup.store, c).await;
    onboard(&setup.store, a, agent_a, "ada@example.com").await;
    let account_a = open_account(&setup.store, a).await;
    setup
        .store
        .execute::<Client>(
            &a.to_string(),
            Expected::Any,
            &metadata(),
            ClientCommand::UpdateContact(domain::client::ContactChange {
                email: Some(domain::contact::Email::parse("grace@example.org").unwrap()),
                phone: None,
                address: None,
            }),
        )
        .await
        .unwrap();
    onboard(&setup.store, b, agent_b, "bob@example.com").await;
    let account_b = open_account(&setup.store, b).await;
    onboard(&setup.store, c, agent_c, "cy@example.com").await;

    let caught_up = setup.projector.catch_up().await.unwrap();
    assert_eq!(
        (caught_up.applied, caught_up.dead_lettered, caught_up.redone),
        (7, 0, 0),
        "applied in one batch, not redone event by event"
    );
    let pool = setup.read.pool();
    for (account, agent) in [
        (&before_its_client, agent_c),
        (&account_a, agent_a),
        (&account_b, agent_b),
    ] {
        let view = accounts::get(&pool, account).await.unwrap().unwrap();
        assert_eq!(view.agent_id, agent.to_string(), "the agent of {account}");
    }
    let client_a = clients::get(&pool, &a.to_string()).await.unwrap().unwrap();
    assert_eq!(client_a.email.as_deref(), Some("grace@example.org"));
    assert_eq!(client_a.version, 2);
    let found = |q: &str| {
        let pool = pool.clone();
        let q = q.to_string();
        async move {
            let filter = clients::ClientFilter {
                q: Some(q),
                limit: 50,
                ..Default::default()
            };
            let mut ids: Vec<String> = clients::list(&pool, filter)
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|client| client.id)
                .collect();
            ids.sort();
            ids
        }
    };
    let mut others = vec![b.to_string(), c.to_string()];
    others.sort();
    assert_eq!(found("example.org").await, vec![a.to_string()]);
    assert_eq!(found("example.com").await, others);
    assert_eq!(found("lovelace").await.len(), 3);

    // The same events delivered one by one, as from a queue, into a second read store.
    let one_by_one = Arc::new(
        ReadStore::open(&sqlite_url(&setup._dir.path().join("one-by-one.db")))
            .await
            .unwrap(),
    );
    let delivering = Projector::new(setup.store.clone(), one_by_one.clone(), setup.log.clone());
    for event in setup.feed.read_after(0, 100).await.unwrap() {
        delivering.deliver_one(&event).await.unwrap();
    }
    let other = one_by_one.pool();
    for client in [a, b, c] {
        let id = client.to_string();
        assert_eq!(
            clients::get(&pool, &id).await.unwrap(),
            clients::get(&other, &id).await.unwrap()
        );
    }
    for account in [&before_its_client, &account_a, &account_b] {
        assert_eq!(
            accounts::get(&pool, account).await.unwrap(),
            accounts::get(&other, account).await.unwrap()
        );
    }
}

/// A catch-up reads the next batch while it applies one: over several batches, with
/// poison in the middle one, every event is applied once, in order, and a second
/// catch-up finds nothing to do.
#[tokio::test]
async fn a_catch_up_over_several_batches_applies_each_event_once() {
    let setup = setup().await;
    let first = account_with_deposits(&setup.store, 600).await;
    insert_first_event(
        &setup,
        "broken-account",
        "AccountOpened",
        "1",
        r#"{"AccountOpened": {"nonsense": true}}"#,
        "{}",
    )
    .await;
    let second = account_with_deposits(&setup.store, 700).await;
    let head = setup.feed.head().await.unwrap();
    assert!(head > 2 * 512, "more than two of the follower's batches");

    let caught_up = setup.projector.catch_up().await.unwrap();
    assert_eq!(caught_up.position, head);
    assert_eq!(
        caught_up.redone, 1,
        "only the batch with the poison is redone"
    );
    assert_eq!(caught_up.applied, head as u64 - 1);
    assert_eq!((caught_up.dead_lettered, caught_up.skipped), (1, 0));
    assert_eq!(balance(&setup, &first).await, (6_000, 601));
    assert_eq!(balance(&setup, &second).await, (7_000, 701));
    // Every history row and audit entry once: sequences 2..=n, and one entry per event.
    for (account, deposits) in [(&first, 600), (&second, 700)] {
        let (rows, lowest, highest): (i64, i64, i64) = sqlx::query_as(
            "SELECT COUNT(DISTINCT sequence), MIN(sequence), MAX(sequence) FROM transactions WHERE account_id = $1",
        )
        .bind(account.as_str())
        .fetch_one(&setup.read.pool())
        .await
        .unwrap();
        assert_eq!((rows, lowest, highest), (deposits, 2, deposits + 1));
    }
    let (entries, distinct): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT position) FROM audit_log")
            .fetch_one(&setup.read.pool())
            .await
            .unwrap();
    assert_eq!((entries, distinct), (head - 1, head - 1));
    assert_eq!(
        Projector::<SqliteFeed>::checkpoint(&setup.read.pool())
            .await
            .unwrap(),
        head
    );

    let again = setup.projector.catch_up().await.unwrap();
    assert_eq!((again.applied, again.skipped, again.position), (0, 0, head));
}

/// The fast path writes a batch's account updates in one statement; an account the read
/// model lacks still fails only its own event, named in the dead letter.
#[tokio::test]
async fn a_deposit_to_an_account_the_read_model_lacks_is_set_aside_and_the_batch_goes_on() {
    let setup = setup().await;
    let before = account_with_deposits(&setup.store, 1).await;
    let deposit = setup
        .feed
        .read_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.event.event_type == "MoneyDeposited")
        .unwrap();
    // Its own transaction id, so nothing but the missing account can fail it.
    let mut payload = deposit.event.payload.clone();
    payload["MoneyDeposited"]["transaction_id"] = TransactionId::new().to_string().into();
    insert_first_event(
        &setup,
        "unopened-account",
        "MoneyDeposited",
        &deposit.event.event_version,
        &payload.to_string(),
        &deposit.event.metadata.to_string(),
    )
    .await;
    let after = account_with_deposits(&setup.store, 2).await;
    let caught_up = setup.projector.catch_up().await.unwrap();
    assert_eq!(caught_up.dead_lettered, 1);
    assert_eq!(balance(&setup, &before).await, (10, 2));
    assert_eq!(balance(&setup, &after).await, (20, 3));
    let (error,): (String,) =
        sqlx::query_as("SELECT error FROM dead_letters WHERE aggregate_id = 'unopened-account'")
            .fetch_one(&setup.read.pool())
            .await
            .unwrap();
    assert!(
        error.contains("account unopened-account is not in the read model"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_timeouts_are_retried_and_nothing_is_dead_lettered() {
    use sqlx::Connection;

    let setup = setup().await;
    let account = account_with_deposits(&setup.store, 3).await;
    // Every statement of the projector gives up on a lock after 100 ms (55P03), as a
    // busy Aurora would under load.
    let url = test_peers::postgres::fresh("crm_read").await;
    let (server, name) = url.rsplit_once('/').unwrap();
    let admin = sqlx::PgPool::connect(&format!("{server}/postgres"))
        .await
        .unwrap();
    sqlx::query(&format!("ALTER DATABASE {name} SET lock_timeout = '100ms'"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let read = Arc::new(ReadStore::open(&url).await.unwrap());
    let log = Arc::new(SystemLog::open(&url).await.unwrap());
    let mut blocker = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query("LOCK TABLE clients, accounts, transactions IN ACCESS EXCLUSIVE MODE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let projector = Arc::new(Projector::following(
        setup.store.clone(),
        setup.feed.clone(),
        read.clone(),
        log,
    ));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(projector.clone().run(stopped));
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (applied, dead_lettered, _) = projector.stats();
    assert_eq!(
        (applied, dead_lettered),
        (0, 0),
        "a lock timeout is not poison"
    );
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();

    // Retried with backoff: every event applied, once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while projector.stats().0 < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "never applied after the lock went"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let view = accounts::get(&read.pool(), &account)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((view.balance.amount_minor, view.version), (30, 4));
    let (dead,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM dead_letters")
        .fetch_one(&read.pool())
        .await
        .unwrap();
    assert_eq!((dead, projector.stats().1), (0, 0));
    stop.send(true).unwrap();
    running.await.unwrap();
    read.close().await;
    test_peers::postgres::drop(&url).await;
}

/// The mail sent to a client is listed once however often its event is delivered, and
/// its recipient goes when the client's personal data is erased.
#[tokio::test]
async fn communications_are_listed_once_and_forget_the_recipient_on_erasure() {
    let setup = setup().await;
    let account = account_with_deposits(&setup.store, 0).await;
    setup.projector.catch_up().await.unwrap();
    let client = accounts::get(&setup.read.pool(), &account)
        .await
        .unwrap()
        .unwrap()
        .client_id;
    let run = |command: ClientCommand| {
        let store = setup.store.clone();
        let client = client.clone();
        async move {
            store
                .execute::<Client>(&client, Expected::Any, &metadata(), command)
                .await
                .unwrap()
        }
    };
    run(ClientCommand::RecordCommunication {
        recipient: domain::contact::Email::parse("ada@example.com").unwrap(),
        subject: "Welcome".into(),
        body_sha256: "ab".repeat(32),
    })
    .await;
    setup.projector.catch_up().await.unwrap();
    // Delivered again (at least once): still one.
    let everything = setup.feed.read_after(0, 100).await.unwrap();
    deliver(&setup, &everything).await;
    let listed =
        projections::models::clients::communications(&setup.read.pool(), &client, None, 50)
            .await
            .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].subject, "Welcome");
    assert_eq!(
        listed.items[0].recipient.as_deref(),
        Some("ada@example.com")
    );
    assert_eq!(listed.items[0].sent_by, "agent");

    run(ClientCommand::Deactivate { reason: None }).await;
    run(ClientCommand::Erase {
        reason: "asked to be forgotten".into(),
    })
    .await;
    setup.projector.catch_up().await.unwrap();
    let listed =
        projections::models::clients::communications(&setup.read.pool(), &client, None, 50)
            .await
            .unwrap();
    assert_eq!(listed.items.len(), 1, "the fact stays");
    assert_eq!(listed.items[0].recipient, None, "the address goes");
}

/// Rows projected before account numbers existed get, when the read models open, the
/// number their opening event has once upcast; rows that have one keep it.
#[tokio::test]
async fn accounts_projected_before_numbers_get_theirs_when_the_read_models_open() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir.path().join("read.db"));
    let (old, numbered) = (AccountId::new(), AccountId::new());
    let kept = domain::AccountNumber::allocated(7).unwrap();
    let read = ReadStore::open(&url).await.unwrap();
    for (id, number) in [(old, None), (numbered, Some(kept.compact()))] {
        sqlx::query(
            "INSERT INTO accounts (id, client_id, agent_id, account_type, currency, balance_minor, status, version, \
             opened_at, updated_at, account_number) VALUES ($1, 'c', 'a', 'checking', 'EUR', 0, 'open', 1, 't', 't', $2)",
        )
        .bind(id.to_string())
        .bind(number)
        .execute(&read.pool())
        .await
        .unwrap();
    }
    read.close().await;

    let reopened = ReadStore::open(&url).await.unwrap();
    let stored = |id: AccountId| {
        let pool = reopened.pool();
        async move {
            sqlx::query_as::<_, (Option<String>,)>(
                "SELECT account_number FROM accounts WHERE id = $1",
            )
            .bind(id.to_string())
            .fetch_one(&pool)
            .await
            .unwrap()
            .0
        }
    };
    assert_eq!(
        stored(old).await,
        Some(domain::AccountNumber::derived(old).compact())
    );
    assert_eq!(stored(numbered).await, Some(kept.compact()));
    reopened.close().await;
}
