//! Clients' personal data in the store: encrypted under each client's own key before it
//! is hashed, so the raw files hold ciphertext only; opened for every reader that folds
//! events; and after an erasure destroyed the key, gone for good while every event and
//! hash stays as it was. On SQLite, on PostgreSQL and on DynamoDB (DynamoDB Local, its
//! data keys wrapped by a KMS key on moto), whose files are searched byte by byte.

use chrono::{NaiveDate, Utc};
use domain::client::{Client, ClientCommand, ClientError, ContactChange};
use domain::contact::{Address, Email, PersonalDetails};
use domain::metadata::CommandMetadata;
use domain::personal::Personal;
use domain::policy::Role;
use domain::{ClientId, StaffId};
use event_store::personal::{LocalMaster, MasterKey, Vault};
use event_store::{Backend, CommitFeed, DataKey, EventStore, ExecuteError, Expected};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Letters no other test writes, so finding them in a file can only mean this test's.
fn marker() -> String {
    rand::random::<[u8; 14]>()
        .iter()
        .map(|b| (b'a' + b % 26) as char)
        .collect()
}

struct Person {
    first: String,
    last: String,
    street: String,
    email: String,
    new_email: String,
    mailed: String,
}

impl Person {
    fn new() -> Self {
        Person {
            first: marker(),
            last: marker(),
            street: format!("{} Street", marker()),
            email: format!("{}@example.com", marker()),
            new_email: format!("{}@example.org", marker()),
            mailed: format!("{}@example.net", marker()),
        }
    }

    fn secrets(&self) -> Vec<&[u8]> {
        [
            &self.first,
            &self.last,
            &self.street,
            &self.email,
            &self.new_email,
            &self.mailed,
        ]
        .map(|s| s.as_bytes())
        .to_vec()
    }

    fn details(&self) -> PersonalDetails {
        PersonalDetails::builder()
            .first_name(&self.first)
            .last_name(&self.last)
            .date_of_birth("1970-01-01")
            .gender("female")
            .email(&self.email)
            .phone("+15550100")
            .address(
                Address::builder()
                    .line1(&self.street)
                    .city("Arlington")
                    .state("VA")
                    .country("US")
                    .postal_code("22202"),
            )
            .build(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap())
            .unwrap()
    }
}

struct Ledger {
    store: EventStore,
    master: Arc<dyn MasterKey>,
    /// SQLite's directory, or DynamoDB Local's.
    dir: Option<tempfile::TempDir>,
    database: Option<String>,
    /// DynamoDB Local and moto, and the store's SDK configuration.
    #[cfg(feature = "dynamo")]
    aws: Option<(Vec<test_peers::Peer>, event_store::aws_config::SdkConfig)>,
}

fn local_master() -> Arc<dyn MasterKey> {
    Arc::new(LocalMaster::new(&Vault::generate_master()))
}

impl Ledger {
    async fn sqlite() -> Ledger {
        let dir = tempfile::tempdir().unwrap();
        let backend = Backend::open_sqlite(&dir.path().join("events.db"))
            .await
            .unwrap();
        let master = local_master();
        Ledger {
            store: EventStore::new(backend)
                .with_master(master.clone())
                .unwrap(),
            master,
            dir: Some(dir),
            database: None,
            #[cfg(feature = "dynamo")]
            aws: None,
        }
    }

    async fn postgres() -> Ledger {
        let url = test_peers::postgres::fresh("crm_personal").await;
        let backend = Backend::connect_postgres(&url).await.unwrap();
        let master = local_master();
        Ledger {
            store: EventStore::new(backend)
                .with_master(master.clone())
                .unwrap(),
            master,
            dir: None,
            database: Some(url),
            #[cfg(feature = "dynamo")]
            aws: None,
        }
    }

    /// DynamoDB Local keeping its tables in files, data keys wrapped by a KMS key.
    #[cfg(feature = "dynamo")]
    async fn dynamo() -> Ledger {
        let dir = tempfile::tempdir().unwrap();
        let (dynamo, moto) = (
            test_peers::dynamodb_local_in(dir.path()).await,
            test_peers::moto().await,
        );
        let config = test_peers::aws::config(&dynamo.endpoint).await;
        let kms = aws_sdk_kms::Client::new(&test_peers::aws::config(&moto.endpoint).await);
        let key = kms.create_key().send().await.unwrap();
        let key = key.key_metadata().unwrap().key_id().to_string();
        let master: Arc<dyn MasterKey> =
            Arc::new(event_store::kms_master::KmsMaster::new(kms, key));
        let tables = event_store::DynamoTables::with_prefix("personal-");
        let client = event_store::aws_sdk_dynamodb::Client::new(&config);
        tables.create(&client).await.unwrap();
        let backend = Backend::dynamo(client, tables);
        Ledger {
            store: EventStore::new(backend)
                .with_master(master.clone())
                .unwrap(),
            master,
            dir: Some(dir),
            database: None,
            aws: Some((vec![dynamo, moto], config)),
        }
    }

    /// The same store opened again (a restart), with the same master key.
    async fn reopened(&self) -> EventStore {
        let backend = match self.store.backend() {
            Backend::Sqlite(_) => {
                let dir = self.dir.as_ref().unwrap();
                Backend::open_sqlite(&dir.path().join("events.db"))
                    .await
                    .unwrap()
            }
            Backend::Postgres(_) => Backend::connect_postgres(self.database.as_ref().unwrap())
                .await
                .unwrap(),
            #[cfg(feature = "dynamo")]
            Backend::Dynamo(dynamo) => {
                let (_, config) = self.aws.as_ref().unwrap();
                let client = event_store::aws_sdk_dynamodb::Client::new(config);
                Backend::dynamo(client, dynamo.tables().clone())
            }
        };
        EventStore::new(backend)
            .with_master(self.master.clone())
            .unwrap()
    }

    /// Every file the database keeps this store in (SQLite: the database, its log and
    /// shared memory; PostgreSQL: the database's directory and the server's log), after
    /// everything written reached them.
    async fn files(&self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        match self.store.backend() {
            Backend::Sqlite(_) => dirs.push(self.dir.as_ref().unwrap().path().to_path_buf()),
            Backend::Postgres(postgres) => {
                let pool = postgres.pool();
                sqlx::query("CHECKPOINT").execute(pool).await.unwrap();
                let (data,): (String,) = sqlx::query_as("SHOW data_directory")
                    .fetch_one(pool)
                    .await
                    .unwrap();
                let (oid,): (i64,) = sqlx::query_as(
                    "SELECT oid::bigint FROM pg_database WHERE datname = current_database()",
                )
                .fetch_one(pool)
                .await
                .unwrap();
                let data = PathBuf::from(data);
                dirs.push(data.join("base").join(oid.to_string()));
                dirs.push(data.join("pg_wal"));
            }
            // DynamoDB Local's tables, in the files under its directory.
            #[cfg(feature = "dynamo")]
            Backend::Dynamo(_) => dirs.push(self.dir.as_ref().unwrap().path().to_path_buf()),
        }
        let mut files = Vec::new();
        for dir in dirs {
            walk(&dir, &mut files);
        }
        assert!(!files.is_empty(), "the store's files must be readable");
        files
    }

    /// Which of `needles` are in which files, searched in their raw bytes: each
    /// finding as "<needle> in <file>".
    async fn holding(&self, needles: &[&[u8]]) -> Vec<String> {
        let mut found = Vec::new();
        for file in self.files().await {
            // A file the server removed meanwhile (a recycled log segment) holds nothing.
            let Ok(bytes) = std::fs::read(&file) else {
                assert!(!file.exists(), "the test must read {}", file.display());
                continue;
            };
            for needle in needles {
                // As written, or base64-encoded (DynamoDB Local keeps binary attributes,
                // such as an event's payload, as base64 in its files).
                let mut forms = vec![needle.to_vec()];
                forms.extend(base64_forms(needle));
                if forms
                    .iter()
                    .any(|form| memchr::memmem::find(&bytes, form).is_some())
                {
                    found.push(format!(
                        "{} in {}",
                        String::from_utf8_lossy(needle),
                        file.display()
                    ));
                }
            }
        }
        found
    }

    async fn wrapped_key(&self, owner: &str) -> Option<DataKey> {
        self.store
            .backend()
            .data_keys()
            .unwrap()
            .data_key(owner)
            .await
            .unwrap()
    }

    async fn finish(self) {
        self.store.close().await;
        if let Some(url) = self.database {
            test_peers::postgres::drop(&url).await;
        }
    }
}

/// What `needle` looks like inside any base64 text that holds it, at each of the three
/// alignments: the characters that encode its bytes alone.
fn base64_forms(needle: &[u8]) -> Vec<Vec<u8>> {
    use base64::Engine;
    (0..3)
        .map(|pad| {
            let mut padded = vec![0u8; pad];
            padded.extend_from_slice(needle);
            let text = base64::engine::general_purpose::STANDARD.encode(&padded);
            // Skip the groups that hold padding, and the last group, which depends on
            // what follows the needle.
            let start = pad.div_ceil(3) * 4;
            let end = (padded.len() / 3) * 4;
            text.as_bytes()[start..end].to_vec()
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn metadata(role: Role) -> CommandMetadata {
    CommandMetadata {
        actor_id: "staff-1".into(),
        actor_role: role,
        correlation_id: "corr-1".into(),
        causation_id: "req-1".into(),
        idempotency_key: None,
        occurred_at: Utc::now(),
    }
}

async fn run(
    store: &EventStore,
    id: &str,
    command: ClientCommand,
) -> Result<u64, ExecuteError<ClientError>> {
    let role = match command {
        ClientCommand::Erase { .. } => Role::Admin,
        _ => Role::Agent,
    };
    store
        .execute::<Client>(id, Expected::Any, &metadata(role), command)
        .await
        .map(|committed| committed.version)
}

/// Onboards `person`, changes their email and records a mail sent to them.
async fn onboard(store: &EventStore, person: &Person) -> String {
    let id = ClientId::new();
    let key = id.to_string();
    run(
        store,
        &key,
        ClientCommand::Onboard {
            client_id: id,
            agent_id: StaffId::new(),
            details: person.details(),
        },
    )
    .await
    .unwrap();
    run(
        store,
        &key,
        ClientCommand::UpdateContact(ContactChange {
            email: Some(Email::parse(&person.new_email).unwrap()),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    run(
        store,
        &key,
        ClientCommand::RecordCommunication {
            recipient: Email::parse(&person.mailed).unwrap(),
            subject: "Your statement".into(),
            body_sha256: "ab".repeat(32),
        },
    )
    .await
    .unwrap();
    key
}

async fn erase(store: &EventStore, id: &str) {
    run(store, id, ClientCommand::Deactivate { reason: None })
        .await
        .unwrap();
    run(
        store,
        id,
        ClientCommand::Erase {
            reason: "asked to be forgotten (ticket 123)".into(),
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn sqlite_personal_data_is_ciphertext_at_rest_and_gone_once_erased() {
    personal_data_is_ciphertext_at_rest_and_gone_once_erased(Ledger::sqlite().await).await;
}

#[tokio::test]
async fn postgres_personal_data_is_ciphertext_at_rest_and_gone_once_erased() {
    personal_data_is_ciphertext_at_rest_and_gone_once_erased(Ledger::postgres().await).await;
}

#[cfg(feature = "dynamo")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_personal_data_is_ciphertext_at_rest_and_gone_once_erased() {
    personal_data_is_ciphertext_at_rest_and_gone_once_erased(Ledger::dynamo().await).await;
}

async fn personal_data_is_ciphertext_at_rest_and_gone_once_erased(ledger: Ledger) {
    let store = &ledger.store;
    let person = Person::new();
    let id = onboard(store, &person).await;
    let kept = Person::new();
    let other = onboard(store, &kept).await;

    // Readers that fold events see the data; the files hold none of it.
    let client = store.load::<Client>(&id).await.unwrap().aggregate;
    let details = client.details.expect("known before the erasure");
    assert_eq!(details.first_name, person.first);
    assert_eq!(details.email.as_str(), person.new_email);
    assert_eq!(
        ledger.holding(&person.secrets()).await,
        Vec::<String>::new()
    );
    let stored_before = store.stream("client", &id).await.unwrap();
    let payloads =
        serde_json::to_string(&stored_before.iter().map(|e| &e.payload).collect::<Vec<_>>())
            .unwrap();
    assert!(payloads.contains("sealed_v1"), "{payloads}");
    let Some(DataKey::Live(wrapped)) = ledger.wrapped_key(&id).await else {
        panic!("the client has a live key");
    };
    if let Backend::Sqlite(sqlite) = store.backend() {
        // The projector's feed opens it too.
        let feed = sqlite.feed().opened(store.vault());
        let events = feed.read_after(0, 100).await.unwrap();
        let opened =
            serde_json::to_string(&events.iter().map(|e| &e.event.payload).collect::<Vec<_>>())
                .unwrap();
        assert!(
            opened.contains(&person.first) && opened.contains(&person.mailed),
            "{opened}"
        );
    }

    erase(store, &id).await;
    store.shred(&id).await.unwrap();

    // Gone for every reader, after a restart too; the other client untouched.
    let restarted = ledger.reopened().await;
    for store in [store, &restarted] {
        let client = store
            .load_from_store::<Client>(&id)
            .await
            .unwrap()
            .aggregate;
        assert!(client.erased && client.details.is_none());
        let state = store
            .state_at::<Client>(&id, event_store::AsOf::Version(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            state.aggregate.details, None,
            "its history as of before the erasure"
        );
        let kept_client = store
            .load_from_store::<Client>(&other)
            .await
            .unwrap()
            .aggregate;
        assert_eq!(kept_client.details.unwrap().first_name, kept.first);
        let gaps = store.stream_after("client", &id, 0).await.unwrap();
        assert!(gaps
            .iter()
            .all(|e| !e.event.payload.to_string().contains("sealed_v1")));
        let onboarded: domain::client::ClientEvent =
            domain::upcast::decode(&gaps[0].event).unwrap();
        assert!(matches!(
            onboarded,
            domain::client::ClientEvent::ClientOnboarded {
                details: Personal::Shredded,
                ..
            }
        ));
    }
    restarted.close().await;

    // The events and their hashes are as they were; every chain still verifies.
    let stored_after = store.stream("client", &id).await.unwrap();
    assert_eq!(stored_after[..stored_before.len()], stored_before[..]);
    let check = store.verify_all_chains(&["client"]).await.unwrap();
    assert!(check.failures.is_empty(), "{:?}", check.failures);
    assert_eq!(check.streams, 2);

    // The key is destroyed and never made again: nothing new is written about them.
    assert_eq!(ledger.wrapped_key(&id).await, Some(DataKey::Destroyed));
    assert!(matches!(
        run(
            store,
            &id,
            ClientCommand::UpdateContact(ContactChange {
                email: Some(Email::parse("back@example.com").unwrap()),
                ..Default::default()
            })
        )
        .await,
        Err(ExecuteError::Refused(ClientError::Erased))
    ));
    if let Backend::Sqlite(_) = store.backend() {
        // No copy of the wrapped key is left in the file, its log or free space.
        assert_eq!(ledger.holding(&[&wrapped]).await, Vec::<String>::new());
    }
    assert_eq!(
        ledger.holding(&person.secrets()).await,
        Vec::<String>::new()
    );
    ledger.finish().await;
}

#[tokio::test]
async fn sqlite_an_erasure_interrupted_before_its_key_was_destroyed_is_finished_by_the_sweep() {
    an_erasure_interrupted_before_its_key_was_destroyed_is_finished_by_the_sweep(
        Ledger::sqlite().await,
    )
    .await;
}

#[cfg(feature = "dynamo")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_an_erasure_interrupted_before_its_key_was_destroyed_is_finished_by_the_sweep() {
    an_erasure_interrupted_before_its_key_was_destroyed_is_finished_by_the_sweep(
        Ledger::dynamo().await,
    )
    .await;
}

async fn an_erasure_interrupted_before_its_key_was_destroyed_is_finished_by_the_sweep(
    ledger: Ledger,
) {
    let store = &ledger.store;
    let person = Person::new();
    let id = onboard(store, &person).await;
    let kept = onboard(store, &Person::new()).await;
    // The erasure's event, then a stop before the key went.
    erase(store, &id).await;
    let vault = store.vault().unwrap();
    assert!(matches!(
        ledger.wrapped_key(&id).await,
        Some(DataKey::Live(_))
    ));

    // The master opens the live keys it finds (the check made before serving).
    vault.check_master().await.unwrap();
    assert_eq!(vault.shred_erased().await.unwrap(), 1);
    assert_eq!(ledger.wrapped_key(&id).await, Some(DataKey::Destroyed));
    assert!(matches!(
        ledger.wrapped_key(&kept).await,
        Some(DataKey::Live(_))
    ));
    assert_eq!(vault.shred_erased().await.unwrap(), 0);
    ledger.finish().await;
}

#[tokio::test]
async fn another_master_key_opens_nothing() {
    let ledger = Ledger::sqlite().await;
    let id = onboard(&ledger.store, &Person::new()).await;
    let backend = Backend::open_sqlite(&ledger.dir.as_ref().unwrap().path().join("events.db"))
        .await
        .unwrap();
    let stranger = EventStore::new(backend)
        .with_master(local_master())
        .unwrap();
    assert!(matches!(
        stranger.load_from_store::<Client>(&id).await,
        Err(event_store::StoreError::Corrupt(_))
    ));
    stranger.close().await;
    ledger.finish().await;
}
