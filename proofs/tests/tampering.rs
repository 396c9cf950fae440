//! Tampering done with SQL as the database's superuser on PostgreSQL, each kind named by
//! the check the API runs (`ledger_check::check_store`) and by the offline verifier over
//! an export. (On SQLite the same is done through the API in tests/api/ledger.rs.)

use std::sync::Arc;

use chrono::Utc;
use cqrs_es::persist::SerializedEvent;
use domain::account::{Account, AccountEvent, AccountType};
use domain::metadata::CommandMetadata;
use domain::policy::Role;
use domain::{AccountId, ClientId, Currency, Money, TransactionId};
use event_store::{Backend, EventStore};
use proofs::{Digest, DigestFile, DigestSigner, Notary, Problem, PublicKeys, Report};
use serde_json::Value;
use sqlx::PgPool;

struct Signed {
    store: Arc<EventStore>,
    notary: Notary,
    keys: PublicKeys,
    accounts: Vec<String>,
    digest: Digest,
    url: String,
    dir: tempfile::TempDir,
}

/// Four accounts of four events on a fresh PostgreSQL database, logged, and a digest
/// signed over them; both checks clean.
async fn signed_store() -> Signed {
    let url = test_peers::postgres::fresh("crm_tamper").await;
    let store = Arc::new(EventStore::new(
        Backend::connect_postgres(&url).await.unwrap(),
    ));
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
        accounts.push(key);
    }
    let dir = tempfile::tempdir().unwrap();
    let signer = DigestSigner::new(ed25519_dalek::SigningKey::from_bytes(&[7; 32]));
    let keys: PublicKeys = [signer.public_key()].into_iter().collect();
    let notary = Notary::new(
        store.clone(),
        signer,
        DigestFile::new(dir.path().join("digests.jsonl")),
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

    async fn sql(&self, sql: &str) {
        sqlx::query(sql).execute(self.pool()).await.unwrap();
    }

    async fn place(&self, account: usize, sequence: i64) -> i64 {
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
        let digests = self.notary.file().read().await.unwrap();
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

    async fn finish(self) {
        self.store.close().await;
        test_peers::postgres::drop(&self.url).await;
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
    signed
        .both_name(&[
            Problem::EventChanged {
                leaf: a as u64,
                aggregate_type: "account".into(),
                aggregate_id: signed.accounts[3].clone(),
                sequence: 3,
            },
            Problem::EventChanged {
                leaf: b as u64,
                aggregate_type: "account".into(),
                aggregate_id: signed.accounts[2].clone(),
                sequence: 2,
            },
        ])
        .await;
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
