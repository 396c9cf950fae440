//! Tampering done as the database's superuser — with SQL on PostgreSQL, through the
//! DynamoDB API on DynamoDB Local — each kind named by the check the API runs
//! (`ledger_check::check_store`) and by the offline verifier over an export. (On SQLite
//! the same is done through the API in tests/api/ledger.rs.)

use std::sync::Arc;

use chrono::Utc;
use cqrs_es::persist::SerializedEvent;
use domain::account::{Account, AccountEvent, AccountType};
use domain::metadata::CommandMetadata;
use domain::policy::Role;
use domain::{AccountId, ClientId, Currency, Money, TransactionId};
use event_store::aws_sdk_dynamodb::primitives::Blob;
use event_store::aws_sdk_dynamodb::types::AttributeValue;
use event_store::{Backend, EventStore};
use proofs::{Digest, DigestFile, DigestSigner, Notary, Problem, PublicKeys, Report};
use serde_json::Value;
use sqlx::PgPool;

type Item = std::collections::HashMap<String, AttributeValue>;

struct Signed {
    store: Arc<EventStore>,
    notary: Notary,
    keys: PublicKeys,
    accounts: Vec<String>,
    digest: Digest,
    /// PostgreSQL's database, to drop at the end.
    url: Option<String>,
    /// DynamoDB Local, stopped at the end.
    _peer: Option<test_peers::Peer>,
    dir: tempfile::TempDir,
}

/// Four accounts of four events on a fresh PostgreSQL database, logged, and a digest
/// signed over them; both checks clean.
async fn signed_store() -> Signed {
    let url = test_peers::postgres::fresh("crm_tamper").await;
    let backend = Backend::connect_postgres(&url).await.unwrap();
    signed_on(backend, Some(url), None).await
}

/// The same on DynamoDB Local, each stream relayed to the log in a batch of its own.
async fn signed_dynamo() -> Signed {
    use event_store::aws_sdk_dynamodb::Client;
    let peer = test_peers::dynamodb_local().await;
    let config = test_peers::aws::config(&peer.endpoint).await;
    let tables = event_store::DynamoTables::with_prefix("tamper-");
    let client = Client::new(&config);
    tables.create(&client).await.unwrap();
    signed_on(Backend::dynamo(client, tables), None, Some(peer)).await
}

async fn signed_on(
    backend: Backend,
    url: Option<String>,
    peer: Option<test_peers::Peer>,
) -> Signed {
    let store = Arc::new(EventStore::new(backend));
    let eur = Currency::parse("EUR").unwrap();
    let mut accounts = Vec::new();
    for _ in 0..4 {
        let id = AccountId::new();
        let mut events = vec![AccountEvent::AccountOpened {
            account_id: id,
            client_id: ClientId::new(),
            account_type: AccountType::Checking,
            currency: eur,
            initial_deposit: Money::zero(eur),
            opening_transaction_id: TransactionId::new(),
            account_number: domain::AccountNumber::derived(id),
        }];
        for n in 1..=3 {
            events.push(AccountEvent::MoneyDeposited {
                transaction_id: TransactionId::new(),
                amount: Money::positive(10, eur).unwrap(),
                description: None,
                balance_after: Money::non_negative(10 * n, eur).unwrap(),
            });
        }
        let key = id.to_string();
        let loaded = store.load::<Account>(&key).await.unwrap();
        store
            .append::<Account>(&key, &loaded, &events, &metadata())
            .await
            .unwrap();
        if let Backend::Dynamo(dynamo) = store.backend() {
            let events = store.stream("account", &key).await.unwrap();
            dynamo.log_events(events).await.unwrap();
        }
        accounts.push(key);
    }
    let dir = tempfile::tempdir().unwrap();
    let signer = DigestSigner::new(ed25519_dalek::SigningKey::from_bytes(&[7; 32]));
    let keys: PublicKeys = [signer.public_key()].into_iter().collect();
    let notary = Notary::new(
        store.clone(),
        Arc::new(signer),
        Arc::new(DigestFile::new(dir.path().join("digests.jsonl"))),
    );
    let digest = notary.issue(false).await.unwrap().unwrap();
    assert_eq!(digest.tree_size, 16);
    let signed = Signed {
        store,
        notary,
        keys,
        accounts,
        digest,
        url,
        _peer: peer,
        dir,
    };
    let (online, offline) = signed.checks().await;
    assert!(online.ok, "{:?}", online.problems);
    assert!(offline.ok, "{:?}", offline.problems);
    signed
}

fn metadata() -> CommandMetadata {
    CommandMetadata {
        actor_id: "agent-1".into(),
        actor_role: Role::Agent,
        correlation_id: "corr-1".into(),
        causation_id: "req-1".into(),
        idempotency_key: None,
        occurred_at: Utc::now(),
    }
}

impl Signed {
    fn pool(&self) -> &PgPool {
        match self.store.backend() {
            Backend::Postgres(postgres) => postgres.pool(),
            _ => unreachable!("PostgreSQL"),
        }
    }

    fn dynamo(&self) -> &event_store::DynamoStore {
        match self.store.backend() {
            Backend::Dynamo(dynamo) => dynamo,
            _ => unreachable!("DynamoDB"),
        }
    }

    /// The items of `account`'s stream, in order, as an operator reads them.
    async fn items(&self, account: usize) -> Vec<Item> {
        let dynamo = self.dynamo();
        let stream = format!("account:{}", self.accounts[account]);
        let page = dynamo
            .client()
            .query()
            .table_name(&dynamo.tables().events)
            .key_condition_expression("AggregateTypeAndId = :stream")
            .expression_attribute_values(":stream", AttributeValue::S(stream))
            .send()
            .await
            .unwrap();
        assert!(page.last_evaluated_key().is_none());
        page.items().to_vec()
    }

    async fn put(&self, table: &str, item: Item) {
        let client = self.dynamo().client();
        let put = client.put_item().table_name(table).set_item(Some(item));
        put.send().await.unwrap();
    }

    async fn delete(&self, table: &str, key: &[(&str, AttributeValue)]) {
        let key: Item = key
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let client = self.dynamo().client();
        let delete = client.delete_item().table_name(table).set_key(Some(key));
        delete.send().await.unwrap();
    }

    async fn ledger_item(&self, key: String) -> Item {
        let dynamo = self.dynamo();
        let found = dynamo
            .client()
            .get_item()
            .table_name(&dynamo.tables().ledger)
            .key("Key", AttributeValue::S(key))
            .send()
            .await
            .unwrap();
        found.item.unwrap()
    }

    async fn sql(&self, sql: &str) {
        sqlx::query(sql).execute(self.pool()).await.unwrap();
    }

    async fn place(&self, account: usize, sequence: i64) -> i64 {
        if let Backend::Dynamo(_) = self.store.backend() {
            let log = self.store.backend().merkle().unwrap();
            let leaf = log.leaf_of("account", &self.accounts[account], sequence as u64);
            return leaf.await.unwrap().unwrap() as i64;
        }
        let (position,): (i64,) =
            sqlx::query_as("SELECT position FROM events WHERE aggregate_id = $1 AND sequence = $2")
                .bind(&self.accounts[account])
                .bind(sequence)
                .fetch_one(self.pool())
                .await
                .unwrap();
        position
    }

    /// The API's check, and the offline verifier's over a fresh export.
    async fn checks(&self) -> (Report, Report) {
        let digests = self.notary.published().read().await.unwrap();
        let log = self.store.backend().merkle().unwrap();
        let online = proofs::ledger_check::check_store(log, &digests, &self.keys)
            .await
            .unwrap();
        let export = tempfile::tempdir().unwrap();
        let out = export.path().join("export");
        proofs::export::export(log, &out).await.unwrap();
        let offline = proofs::export::verify(&out, &digests, &self.keys).unwrap();
        (online, offline)
    }

    async fn both_name(&self, wanted: &[Problem]) {
        let (online, offline) = self.checks().await;
        for (name, report) in [("API", online), ("offline", offline)] {
            assert!(!report.ok, "the {name} check found nothing");
            for want in wanted {
                assert!(
                    report.problems.contains(want),
                    "the {name} check does not name {want:?}: {:#?}",
                    report.problems
                );
            }
        }
    }

    /// What both checks name once account 2's event 2 (at leaf `a`) and account 3's
    /// event 3 (at leaf `b`) have swapped places.
    fn swapped(&self, a: i64, b: i64) -> [Problem; 2] {
        let changed = |leaf: i64, account: usize, sequence| Problem::EventChanged {
            leaf: leaf as u64,
            aggregate_type: "account".into(),
            aggregate_id: self.accounts[account].clone(),
            sequence,
        };
        [changed(a, 3, 3), changed(b, 2, 2)]
    }

    async fn finish(self) {
        self.store.close().await;
        if let Some(url) = &self.url {
            test_peers::postgres::drop(url).await;
        }
    }
}

#[tokio::test]
async fn a_payload_changed_with_its_chain_hashes_recomputed_is_named() {
    let signed = signed_store().await;
    let rows: Vec<(String, i64, String, String, String, String)> = sqlx::query_as(
        "SELECT aggregate_id, sequence, event_type, event_version, CAST(payload AS TEXT), \
         CAST(metadata AS TEXT) FROM events WHERE aggregate_id = $1 ORDER BY sequence",
    )
    .bind(&signed.accounts[0])
    .fetch_all(signed.pool())
    .await
    .unwrap();
    let mut previous = serde_json::from_str::<Value>(&rows[0].5).unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_string();
    for (id, sequence, event_type, version, payload, metadata) in &rows[1..] {
        let payload = if *sequence == 2 {
            payload.replace("\"amount_minor\":10,", "\"amount_minor\":9000,")
        } else {
            payload.clone()
        };
        let mut event = SerializedEvent::new(
            id.clone(),
            *sequence as usize,
            "account".into(),
            event_type.clone(),
            version.clone(),
            serde_json::from_str(&payload).unwrap(),
            serde_json::from_str(metadata).unwrap(),
        );
        domain::chain::seal(&mut event, &previous);
        previous = event.metadata["hash"].as_str().unwrap().to_string();
        sqlx::query(
            "UPDATE events SET payload = $1::json, metadata = $2::json \
             WHERE aggregate_id = $3 AND sequence = $4",
        )
        .bind(event.payload.to_string())
        .bind(event.metadata.to_string())
        .bind(id)
        .bind(sequence)
        .execute(signed.pool())
        .await
        .unwrap();
    }
    let chains = signed.store.verify_all_chains(&["account"]).await.unwrap();
    assert!(chains.failures.is_empty(), "the chains alone see nothing");
    let mut wanted = Vec::new();
    for sequence in 2..=4 {
        wanted.push(Problem::EventChanged {
            leaf: signed.place(0, sequence).await as u64,
            aggregate_type: "account".into(),
            aggregate_id: signed.accounts[0].clone(),
            sequence: sequence as usize,
        });
    }
    let (online, _) = signed.checks().await;
    assert!(online
        .problems
        .iter()
        .any(|p| matches!(p, Problem::DigestRootMismatch { sequence: 0, .. })));
    signed.both_name(&wanted).await;
    signed.finish().await;
}

#[tokio::test]
async fn a_whole_stream_deleted_is_named_by_its_places() {
    let signed = signed_store().await;
    let mut places = Vec::new();
    for sequence in 1..=4 {
        places.push(signed.place(1, sequence).await as u64);
    }
    places.sort_unstable();
    signed
        .sql(&format!(
            "DELETE FROM events WHERE aggregate_id = '{}'",
            signed.accounts[1]
        ))
        .await;
    // The log places a stream's events together (it takes them in stream order).
    assert_eq!(places[3] - places[0], 3);
    signed
        .both_name(&[Problem::EventsMissing {
            from: places[0],
            to: places[3],
        }])
        .await;
    signed.finish().await;
}

#[tokio::test]
async fn history_cut_short_log_and_all_is_named_against_the_digest() {
    let signed = signed_store().await;
    let size = signed.digest.tree_size as i64;
    signed
        .sql(&format!(
            "DELETE FROM events WHERE position >= {}",
            size - 3
        ))
        .await;
    signed
        .sql(&format!("UPDATE merkle_log SET size = {}", size - 3))
        .await;
    signed
        .sql(&format!(
            "DELETE FROM merkle_nodes WHERE idx >= {}",
            2 * (size - 3)
        ))
        .await;
    signed
        .both_name(&[Problem::HistoryTruncated {
            sequence: 0,
            tree_size: size as u64,
            events: size as u64 - 3,
        }])
        .await;
    assert!(matches!(
        signed.notary.issue(false).await,
        Err(proofs::NotaryError::Truncated { .. })
    ));
    signed.finish().await;
}

#[tokio::test]
async fn two_events_swapped_in_the_log_are_both_named() {
    let signed = signed_store().await;
    let (a, b) = (signed.place(2, 2).await, signed.place(3, 3).await);
    // One at a time: the places are unique.
    for (from, to) in [(a, 1_000_000), (b, a), (1_000_000, b)] {
        signed
            .sql(&format!(
                "UPDATE events SET position = {to} WHERE position = {from}"
            ))
            .await;
    }
    signed.both_name(&signed.swapped(a, b)).await;
    signed.finish().await;
}

#[tokio::test]
async fn a_digest_edited_or_taken_out_of_the_file_is_named() {
    let signed = signed_store().await;
    for _ in 0..2 {
        signed.notary.issue(false).await.unwrap();
    }
    let path = signed.dir.path().join("digests.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut first: Value = serde_json::from_str(lines[0]).unwrap();
    first["root_hash"] = Value::String("00".repeat(32));
    std::fs::write(&path, format!("{first}\n{}\n", lines[2])).unwrap();
    signed
        .both_name(&[
            Problem::DigestInvalid {
                sequence: 0,
                detail: "digest 0's signature does not match what it says (forged or altered)"
                    .into(),
            },
            Problem::DigestMissing {
                after: Some(0),
                before: 2,
            },
        ])
        .await;
    signed.finish().await;
}

// The same through the DynamoDB API, as whoever holds the tables' write permission could.

fn text(item: &Item, name: &str) -> String {
    item[name].as_s().unwrap().clone()
}

#[tokio::test]
async fn dynamodb_a_payload_changed_with_its_chain_hashes_recomputed_is_named() {
    let signed = signed_dynamo().await;
    let events = signed.dynamo().tables().events.clone();
    let items = signed.items(0).await;
    let first = event_store::event_from_item(&items[0]).unwrap();
    let mut previous = first.metadata["hash"].as_str().unwrap().to_string();
    for item in &items[1..] {
        let mut event = event_store::event_from_item(item).unwrap();
        if event.sequence == 2 {
            let text = event.payload.to_string();
            let altered = text.replace("\"amount_minor\":10", "\"amount_minor\":9000");
            assert_ne!(altered, text);
            event.payload = serde_json::from_str(&altered).unwrap();
        }
        domain::chain::seal(&mut event, &previous);
        previous = event.metadata["hash"].as_str().unwrap().to_string();
        let mut item = item.clone();
        for (name, value) in [("Payload", &event.payload), ("Metadata", &event.metadata)] {
            let bytes = serde_json::to_vec(value).unwrap();
            item.insert(name.into(), AttributeValue::B(Blob::new(bytes)));
        }
        signed.put(&events, item).await;
    }
    let chains = signed.store.verify_all_chains(&["account"]).await.unwrap();
    assert!(chains.failures.is_empty(), "the chains alone see nothing");
    let mut wanted = Vec::new();
    for sequence in 2..=4 {
        wanted.push(Problem::EventChanged {
            leaf: signed.place(0, sequence).await as u64,
            aggregate_type: "account".into(),
            aggregate_id: signed.accounts[0].clone(),
            sequence: sequence as usize,
        });
    }
    signed.both_name(&wanted).await;
    signed.finish().await;
}

#[tokio::test]
async fn dynamodb_a_whole_stream_deleted_is_named_by_its_places() {
    let signed = signed_dynamo().await;
    let events = signed.dynamo().tables().events.clone();
    let mut places = Vec::new();
    for sequence in 1..=4 {
        places.push(signed.place(1, sequence).await as u64);
    }
    places.sort_unstable();
    assert_eq!(
        places[3] - places[0],
        3,
        "relayed in one batch, placed together"
    );
    for item in signed.items(1).await {
        let key = ["AggregateTypeAndId", "AggregateIdSequence"].map(|k| (k, item[k].clone()));
        signed.delete(&events, &key).await;
    }
    signed
        .both_name(&[Problem::EventsMissing {
            from: places[0],
            to: places[3],
        }])
        .await;
    signed.finish().await;
}

#[tokio::test]
async fn dynamodb_history_cut_short_log_and_all_is_named_against_the_digest() {
    let signed = signed_dynamo().await;
    let tables = signed.dynamo().tables().clone();
    let size = signed.digest.tree_size;
    for leaf in size - 3..size {
        let placed = signed.ledger_item(format!("leaf#{leaf}")).await;
        let (id, sequence) = (text(&placed, "AggregateId"), placed["Sequence"].clone());
        let stream = AttributeValue::S(format!("account:{id}"));
        let key = [
            ("AggregateTypeAndId", stream),
            ("AggregateIdSequence", sequence.clone()),
        ];
        signed.delete(&tables.events, &key).await;
        let sequence = sequence.as_n().unwrap().clone();
        for key in [
            format!("leaf#{leaf}"),
            format!("event#account:{id}#{sequence}"),
        ] {
            signed
                .delete(&tables.ledger, &[("Key", AttributeValue::S(key))])
                .await;
        }
    }
    for node in 2 * (size - 3)..2 * size {
        let key = AttributeValue::S(format!("node#{node}"));
        signed.delete(&tables.ledger, &[("Key", key)]).await;
    }
    let shorter: Item = [
        ("Key".to_string(), AttributeValue::S("size".into())),
        (
            "Size".to_string(),
            AttributeValue::N((size - 3).to_string()),
        ),
    ]
    .into();
    signed.put(&tables.ledger, shorter).await;
    signed
        .both_name(&[Problem::HistoryTruncated {
            sequence: 0,
            tree_size: size,
            events: size - 3,
        }])
        .await;
    assert!(matches!(
        signed.notary.issue(false).await,
        Err(proofs::NotaryError::Truncated { .. })
    ));
    signed.finish().await;
}

#[tokio::test]
async fn dynamodb_two_events_swapped_in_the_log_are_both_named() {
    let signed = signed_dynamo().await;
    let ledger = signed.dynamo().tables().ledger.clone();
    let (a, b) = (signed.place(2, 2).await, signed.place(3, 3).await);
    let (first, second) = (
        signed.ledger_item(format!("leaf#{a}")).await,
        signed.ledger_item(format!("leaf#{b}")).await,
    );
    for (leaf, mut item, other) in [(a, first.clone(), second.clone()), (b, second, first)] {
        for name in ["AggregateId", "Sequence"] {
            item.insert(name.into(), other[name].clone());
        }
        let event = format!(
            "event#account:{}#{}",
            text(&other, "AggregateId"),
            other["Sequence"].as_n().unwrap()
        );
        signed.put(&ledger, item).await;
        let place: Item = [
            ("Key".to_string(), AttributeValue::S(event)),
            ("Leaf".to_string(), AttributeValue::N(leaf.to_string())),
        ]
        .into();
        signed.put(&ledger, place).await;
    }
    signed.both_name(&signed.swapped(a, b)).await;
    signed.finish().await;
}
