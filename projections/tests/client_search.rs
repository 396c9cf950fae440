//! The client search reads a text index (SQLite FTS5 trigram, PostgreSQL pg_trgm) and
//! finds exactly the clients the old scan (`search LIKE '%text%'`) found, on both
//! dialects, as names and emails change and personal data is erased.

use chrono::Utc;
use domain::client::{Client, ClientCommand, ContactChange};
use domain::contact::{Address, Email, PersonalDetails};
use domain::metadata::CommandMetadata;
use domain::policy::Role;
use domain::{ClientId, StaffId};
use event_store::{EventStore, Expected, SqliteFeed, SqliteStore};
use projections::models::clients::{self, ClientFilter};
use projections::{sqlite_url, Projector, ReadStore, SystemLog};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::AnyPool;
use std::collections::BTreeSet;
use std::sync::Arc;

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

/// Names from a small alphabet, so that substrings are shared by many clients.
fn word(rng: &mut StdRng, letters: &[char]) -> String {
    let len = rng.gen_range(3..9);
    (0..len)
        .map(|i| {
            let c = letters[rng.gen_range(0..letters.len())];
            if i == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn details(first: &str, last: &str, email: &str) -> PersonalDetails {
    PersonalDetails::builder()
        .first_name(first)
        .last_name(last)
        .date_of_birth("1980-02-03")
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
        .unwrap()
}

async fn store_in(dir: &std::path::Path) -> (Arc<EventStore>, SqliteFeed) {
    let sqlite = SqliteStore::open(&dir.join("ledger.db")).await.unwrap();
    let feed = sqlite.feed();
    (Arc::new(EventStore::new(sqlite.into())), feed)
}

/// Projects everything in `store` into `read`, with a system log at `log`.
async fn project(
    (store, feed): &(Arc<EventStore>, SqliteFeed),
    read: &Arc<ReadStore>,
    log: &std::path::Path,
) {
    let log = Arc::new(SystemLog::open(&sqlite_url(log)).await.unwrap());
    Projector::following(store.clone(), feed.clone(), read.clone(), log)
        .catch_up()
        .await
        .unwrap();
}

async fn run(store: &EventStore, client: &str, command: ClientCommand) {
    store
        .execute::<Client>(client, Expected::Any, &metadata(), command)
        .await
        .unwrap();
}

/// Every client id the list finds for `q`, page by page.
async fn found(pool: &AnyPool, q: &str) -> BTreeSet<String> {
    found_for(pool, q, None).await
}

/// Every client id the list finds for `q` among `agent`'s clients (all when `None`);
/// the total the first page gives must count them (through the clients table or, for a
/// search with no other filter, through the text index alone).
async fn found_for(pool: &AnyPool, q: &str, agent: Option<&str>) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut cursor = None;
    let mut total = None;
    loop {
        let page = clients::list(
            pool,
            ClientFilter {
                q: Some(q.to_string()),
                agent: agent.map(String::from),
                cursor,
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        total = total.or(page.total);
        ids.extend(page.items.into_iter().map(|c| c.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => {
                assert_eq!(total, Some(ids.len() as i64), "the total for {q:?}");
                return ids;
            }
        }
    }
}

/// What the query before the index returned: a scan of every client (of `agent`'s).
async fn scanned(pool: &AnyPool, q: &str, agent: Option<&str>) -> BTreeSet<String> {
    let pattern = format!(
        "%{}%",
        q.trim()
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    sqlx::query_as::<_, (String,)>(
        "SELECT id FROM clients WHERE search LIKE $1 ESCAPE '\\' AND ($2 IS NULL OR agent_id = $2)",
    )
    .bind(pattern)
    .bind(agent)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(id,)| id)
    .collect()
}

#[tokio::test]
async fn the_index_finds_the_same_clients_as_the_scan_on_both_dialects() {
    let dir = tempfile::tempdir().unwrap();
    let (store, feed) = store_in(dir.path()).await;
    let followed = (store.clone(), feed);
    let mut rng = StdRng::seed_from_u64(13);
    let letters: Vec<char> = "aeinorst".chars().collect();
    let mut ids = Vec::new();
    let mut names = Vec::new();
    let agents = [StaffId::new(), StaffId::new(), StaffId::new()];
    for n in 0..240 {
        let (first, last) = (word(&mut rng, &letters), word(&mut rng, &letters));
        // Some addresses hold LIKE's wildcards, which must match literally.
        let email = match n % 3 {
            0 => format!("{}_{n}@example.com", first.to_lowercase()),
            1 => format!("{}%{n}@example.com", last.to_lowercase()),
            _ => format!("{}'{n}@example.com", first.to_lowercase()),
        };
        let id = ClientId::new();
        run(
            &store,
            &id.to_string(),
            ClientCommand::Onboard {
                client_id: id,
                agent_id: agents[n % 4 % 3],
                details: details(&first, &last, &email),
            },
        )
        .await;
        ids.push(id.to_string());
        names.push((first, last));
    }
    // Changes after onboarding move a client in and out of results.
    for (n, id) in ids.iter().enumerate().step_by(7) {
        let email = Email::parse(&format!("moved.{n}@bank.example")).unwrap();
        let change = ContactChange {
            email: Some(email),
            phone: None,
            address: None,
        };
        run(&store, id, ClientCommand::UpdateContact(change)).await;
    }
    for id in ids.iter().step_by(11) {
        run(&store, id, ClientCommand::Deactivate { reason: None }).await;
        run(
            &store,
            id,
            ClientCommand::Erase {
                reason: "asked to be forgotten".into(),
            },
        )
        .await;
    }

    let sqlite = Arc::new(
        ReadStore::open(&sqlite_url(&dir.path().join("read.db")))
            .await
            .unwrap(),
    );
    let url = test_peers::postgres::fresh("crm_search").await;
    let postgres = Arc::new(ReadStore::open(&url).await.unwrap());
    for (n, read) in [&sqlite, &postgres].into_iter().enumerate() {
        project(&followed, read, &dir.path().join(format!("log-{n}.db"))).await;
    }

    let mut queries: Vec<String> = vec![
        "a".into(),
        "st".into(),
        "ORA".into(),
        "moved".into(),
        "bank.example".into(),
        "_".into(),
        "%".into(),
        "\"".into(),
        "_1".into(),
        "%2".into(),
        "\"a".into(),
        "\"ora\"".into(),
        "'1@".into(),
        "@example".into(),
        " tr".into(),
        "nobody-has-this".into(),
    ];
    for (first, last) in names.iter().step_by(9) {
        let full = format!("{first} {last}");
        let start = rng.gen_range(0..full.len() - 2);
        let end = rng.gen_range(start + 1..=full.len());
        queries.push(full[start..end].to_string());
        queries.push(full.clone());
        queries.push(last.to_uppercase());
    }
    for _ in 0..40 {
        let len = rng.gen_range(1..6);
        queries.push(
            (0..len)
                .map(|_| letters[rng.gen_range(0..letters.len())])
                .collect(),
        );
    }
    let mut nonempty = 0;
    for q in &queries {
        let expected = scanned(&sqlite.pool(), q, None).await;
        assert_eq!(found(&sqlite.pool(), q).await, expected, "SQLite, {q:?}");
        assert_eq!(
            found(&postgres.pool(), q).await,
            expected,
            "PostgreSQL, {q:?}"
        );
        nonempty += usize::from(!expected.is_empty());
        // An agent searches their own clients.
        let agent = agents[q.len() % 3].to_string();
        let theirs = scanned(&sqlite.pool(), q, Some(&agent)).await;
        assert!(theirs.is_subset(&expected));
        for read in [&sqlite, &postgres] {
            assert_eq!(
                found_for(&read.pool(), q, Some(&agent)).await,
                theirs,
                "{q:?} for one agent"
            );
        }
    }
    assert!(nonempty > queries.len() / 2, "the queries find clients");

    // SQLite reads the search from the index, not by scanning the clients.
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN SELECT id FROM clients WHERE rowid IN \
         (SELECT rowid FROM clients_search WHERE clients_search MATCH '\"ora\"')",
    )
    .fetch_all(&sqlite.pool())
    .await
    .unwrap();
    let plan: Vec<String> = plan.into_iter().map(|row| row.3).collect();
    assert!(
        plan.iter().any(|step| step.contains("VIRTUAL TABLE INDEX")),
        "{plan:?}"
    );
    assert!(!plan.iter().any(|step| step == "SCAN clients"), "{plan:?}");
    // PostgreSQL has the trigram index on the column the query filters.
    let (index,): (String,) = sqlx::query_as(
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'clients' AND indexname = 'clients_search_trigrams'",
    )
    .fetch_one(&postgres.pool())
    .await
    .unwrap();
    assert!(index.contains("gin_trgm_ops"), "{index}");

    postgres.close().await;
    test_peers::postgres::drop(&url).await;
}

/// A read-model file from before the index gets it, filled, when it next opens.
#[tokio::test]
async fn a_database_from_before_the_index_is_indexed_when_it_opens() {
    let dir = tempfile::tempdir().unwrap();
    let (store, feed) = store_in(dir.path()).await;
    let followed = (store.clone(), feed);
    let id = ClientId::new();
    run(
        &store,
        &id.to_string(),
        ClientCommand::Onboard {
            client_id: id,
            agent_id: StaffId::new(),
            details: details("Grace", "Hopper", "grace@example.com"),
        },
    )
    .await;
    let url = sqlite_url(&dir.path().join("read.db"));
    let read = Arc::new(ReadStore::open(&url).await.unwrap());
    project(&followed, &read, &dir.path().join("log.db")).await;
    sqlx::raw_sql(
        "DROP TRIGGER clients_search_insert; DROP TRIGGER clients_search_update; \
         DROP TRIGGER clients_search_delete; DROP TABLE clients_search;",
    )
    .execute(&read.pool())
    .await
    .unwrap();
    read.close().await;

    let reopened = ReadStore::open(&url).await.unwrap();
    assert_eq!(
        found(&reopened.pool(), "hopp").await,
        BTreeSet::from([id.to_string()])
    );
    assert!(found(&reopened.pool(), "turing").await.is_empty());
    reopened.close().await;
}

/// Services and Lambdas open the read models together on a new PostgreSQL database:
/// every one of them opens, and the index is made once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_openers_at_once_on_a_new_postgres_database_all_open() {
    let url = test_peers::postgres::fresh("crm_search_race").await;
    // The schema first, as the first service's migrations would make it.
    ReadStore::open(&url).await.unwrap().close().await;
    sqlx::raw_sql("DROP INDEX clients_search_trigrams; DROP EXTENSION pg_trgm;")
        .execute(&sqlx::PgPool::connect(&url).await.unwrap())
        .await
        .unwrap();
    let openers: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { ReadStore::open(&url).await.map(|read| read.pool()) })
        })
        .collect();
    for opener in openers {
        let pool = opener.await.unwrap().expect("every opener opens");
        pool.close().await;
    }
    let read = ReadStore::open(&url).await.unwrap();
    assert!(found(&read.pool(), "nobody").await.is_empty());
    read.close().await;
    test_peers::postgres::drop(&url).await;
}
