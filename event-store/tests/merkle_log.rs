//! The global Merkle log kept with the store: it holds every event in commit order, and
//! its roots and proofs are checked here by an independent implementation of RFC 9162
//! (written from the RFC, sharing no code with what made them): for every tree size up
//! to a few thousand, and refused when one byte of proof, leaf or root changes.

use chrono::Utc;
use domain::account::{Account, AccountEvent, AccountType};
use domain::metadata::CommandMetadata;
use domain::policy::Role;
use domain::{AccountId, ClientId, Currency, Money, TransactionId};
use event_store::{merkle, Backend, EventStore, MerkleStorage, StoreError};
use sha2::{Digest, Sha256};

type Hash = [u8; 32];

/// RFC 9162 §2.1.1, recursively, over leaf hashes.
fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = 1 << (usize::BITS - 1 - (n - 1).leading_zeros());
            node(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

fn node(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// RFC 9162 §2.1.3.2.
fn rfc_verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn, mut r) = (index, size - 1, *leaf);
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root
}

/// RFC 9162 §2.1.4.2.
fn rfc_verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> bool {
    if first == 0 || first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if first.is_power_of_two() {
        path.insert(0, *first_root);
    }
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let Some((&start, rest)) = path.split_first() else {
        return false;
    };
    let (mut fr, mut sr) = (start, start);
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node(c, &fr);
            sr = node(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    fr == *first_root && sr == *second_root && sn == 0
}

/// A leaf as docs/audit.md defines it, for an unaltered event: SHA-256(0x00 ‖ hash ‖
/// hash), its stored hash being the hash of its content.
fn leaf_of_stored_hash(hash_hex: &str) -> Hash {
    let hash = hex::decode(hash_hex).unwrap();
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(&hash);
    h.update(&hash);
    h.finalize().into()
}

struct Ledger {
    store: EventStore,
    _dir: Option<tempfile::TempDir>,
    database: Option<String>,
    _peer: Option<test_peers::Peer>,
}

impl Ledger {
    async fn sqlite() -> Ledger {
        let dir = tempfile::tempdir().unwrap();
        let backend = Backend::open_sqlite(&dir.path().join("events.db"))
            .await
            .unwrap();
        Ledger {
            store: EventStore::new(backend),
            _dir: Some(dir),
            database: None,
            _peer: None,
        }
    }

    async fn postgres() -> Ledger {
        let url = test_peers::postgres::fresh("crm_merkle").await;
        let backend = Backend::connect_postgres(&url).await.unwrap();
        Ledger {
            store: EventStore::new(backend),
            _dir: None,
            database: Some(url),
            _peer: None,
        }
    }

    #[cfg(feature = "dynamo")]
    async fn dynamo() -> Ledger {
        use event_store::aws_sdk_dynamodb::Client;
        let peer = test_peers::dynamodb_local().await;
        let config = test_peers::aws::config(&peer.endpoint).await;
        let tables = event_store::DynamoTables::with_prefix("merkle-");
        let client = Client::new(&config);
        tables.create(&client).await.unwrap();
        Ledger {
            store: EventStore::new(Backend::dynamo(client, tables)),
            _dir: None,
            database: None,
            _peer: Some(peer),
        }
    }

    async fn finish(self) {
        self.store.close().await;
        if let Some(url) = self.database {
            test_peers::postgres::drop(&url).await;
        }
    }

    fn log(&self) -> &dyn MerkleStorage {
        self.store.backend().merkle().unwrap()
    }

    fn pool(&self) -> &sqlx::SqlitePool {
        match self.store.backend() {
            Backend::Sqlite(sqlite) => sqlite.pool(),
            _ => unreachable!("SQLite only"),
        }
    }

    /// Appends `streams` accounts of `each` events, the streams' appends interleaved so
    /// commit order is not stream order.
    async fn fill(&self, streams: usize, each: usize) -> Vec<String> {
        let eur = Currency::parse("EUR").unwrap();
        let ids: Vec<AccountId> = (0..streams).map(|_| AccountId::new()).collect();
        for round in 0..each {
            for id in &ids {
                let key = id.to_string();
                let loaded = self.store.load::<Account>(&key).await.unwrap();
                let event = if round == 0 {
                    AccountEvent::AccountOpened {
                        account_id: *id,
                        client_id: ClientId::new(),
                        account_type: AccountType::Checking,
                        currency: eur,
                        initial_deposit: Money::zero(eur),
                        opening_transaction_id: TransactionId::new(),
                        account_number: domain::AccountNumber::derived(*id),
                    }
                } else {
                    AccountEvent::MoneyDeposited {
                        transaction_id: TransactionId::new(),
                        amount: Money::positive(round as i64, eur).unwrap(),
                        description: None,
                        balance_after: Money::non_negative((round * (round + 1) / 2) as i64, eur)
                            .unwrap(),
                    }
                };
                self.store
                    .append::<Account>(&key, &loaded, &[event], &metadata())
                    .await
                    .unwrap();
            }
        }
        ids.iter().map(ToString::to_string).collect()
    }

    /// The stored hashes of the logged events, in their order in the log (rowid order
    /// in SQLite, the places the log gave them in PostgreSQL).
    async fn stored_hashes(&self) -> Vec<String> {
        let rows: Vec<(String,)> = match self.store.backend() {
            Backend::Sqlite(sqlite) => {
                sqlx::query_as("SELECT json_extract(metadata, '$.hash') FROM events ORDER BY rowid")
                    .fetch_all(sqlite.pool())
                    .await
                    .unwrap()
            }
            Backend::Postgres(postgres) => sqlx::query_as(
                "SELECT metadata->>'hash' FROM events WHERE position IS NOT NULL ORDER BY position",
            )
            .fetch_all(postgres.pool())
            .await
            .unwrap(),
            #[cfg(feature = "dynamo")]
            Backend::Dynamo(_) => unreachable!("SQL stores only"),
        };
        rows.into_iter().map(|(hash,)| hash).collect()
    }

    /// The leaves, computed here from the stored hashes in rowid order.
    async fn independent_leaves(&self) -> Vec<Hash> {
        let hashes = self.stored_hashes().await;
        hashes
            .iter()
            .map(|hash| leaf_of_stored_hash(hash))
            .collect()
    }
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

/// Flips one bit of one byte of a copy of `proof`.
fn bent(proof: &[Hash], at: usize) -> Vec<Hash> {
    let mut copy = proof.to_vec();
    copy[at / 32][at % 32] ^= 0x01;
    copy
}

#[tokio::test]
async fn sqlite_roots_and_proofs_of_every_tree_size_verify_independently() {
    roots_and_proofs_verify_independently_and_not_once_a_byte_changes(Ledger::sqlite().await).await;
}

#[tokio::test]
async fn postgres_roots_and_proofs_of_every_tree_size_verify_independently() {
    roots_and_proofs_verify_independently_and_not_once_a_byte_changes(Ledger::postgres().await)
        .await;
}

async fn roots_and_proofs_verify_independently_and_not_once_a_byte_changes(ledger: Ledger) {
    ledger.fill(7, 300).await;
    // Logged in uneven pieces, as a follower would after bursts of appends.
    let log = ledger.log();
    assert_eq!(log.log_size().await.unwrap(), 0);
    let mut size = 0;
    for piece in [1, 2, 5, 64, 1000].into_iter().cycle() {
        let grown = log.extend_log(piece).await.unwrap();
        if grown == size {
            break;
        }
        size = grown;
    }
    let leaves = ledger.independent_leaves().await;
    assert_eq!(size, leaves.len() as u64);
    assert_eq!(size, 2_100);

    let mut checked = 0;
    for tree in 1..=size {
        let root = merkle::root(log, tree).await.unwrap();
        assert_eq!(root, mth(&leaves[..tree as usize]), "root at {tree}");
        // The first, the last and one between; and from a size between.
        for leaf in [0, tree / 2, tree - 1] {
            let proof = merkle::inclusion(log, tree, leaf).await.unwrap();
            assert!(
                rfc_verify_inclusion(leaf, tree, &leaves[leaf as usize], &proof, &root),
                "inclusion of {leaf} in {tree}"
            );
            checked += 1;
        }
        let old = (tree * 7 / 11).max(1);
        let proof = merkle::consistency(log, old, tree).await.unwrap();
        let old_root = mth(&leaves[..old as usize]);
        assert!(
            rfc_verify_consistency(old, tree, &old_root, &root, &proof),
            "consistency of {old} with {tree}"
        );
        checked += 1;
    }
    assert_eq!(checked, 4 * 2_100);

    // One byte changed anywhere: refused.
    let tree = 1_337;
    let root = mth(&leaves[..tree as usize]);
    let leaf = 1_000;
    let proof = merkle::inclusion(log, tree, leaf).await.unwrap();
    for at in 0..proof.len() * 32 {
        assert!(!rfc_verify_inclusion(
            leaf,
            tree,
            &leaves[leaf as usize],
            &bent(&proof, at),
            &root
        ));
    }
    for at in 0..32 {
        let mut other = leaves[leaf as usize];
        other[at] ^= 0x80;
        assert!(!rfc_verify_inclusion(leaf, tree, &other, &proof, &root));
        let mut other_root = root;
        other_root[at] ^= 0x80;
        assert!(!rfc_verify_inclusion(
            leaf,
            tree,
            &leaves[leaf as usize],
            &proof,
            &other_root
        ));
    }
    let old = 999;
    let old_root = mth(&leaves[..old as usize]);
    let proof = merkle::consistency(log, old, tree).await.unwrap();
    for at in 0..proof.len() * 32 {
        assert!(!rfc_verify_consistency(
            old,
            tree,
            &old_root,
            &root,
            &bent(&proof, at)
        ));
    }
    for at in 0..32 {
        let mut other = old_root;
        other[at] ^= 0x02;
        assert!(!rfc_verify_consistency(old, tree, &other, &root, &proof));
    }
    // The product's own check agrees, given the leaf's value (an unaltered event's
    // hash, twice).
    let hash: Hash = hex::decode(&ledger.stored_hashes().await[leaf as usize])
        .unwrap()
        .try_into()
        .unwrap();
    let value = domain::merkle::leaf_value(&hash, &hash);
    let proof = merkle::inclusion(log, tree, leaf).await.unwrap();
    domain::merkle::verify_inclusion(&root, tree, leaf, &value, &proof).unwrap();
    assert!(domain::merkle::verify_inclusion(&root, tree, leaf, &value, &bent(&proof, 5)).is_err());
    ledger.finish().await;
}

#[tokio::test]
async fn sqlite_the_log_refuses_sizes_and_leaves_it_does_not_hold() {
    the_log_refuses_sizes_and_leaves_it_does_not_hold(Ledger::sqlite().await).await;
}

#[tokio::test]
async fn postgres_the_log_refuses_sizes_and_leaves_it_does_not_hold() {
    the_log_refuses_sizes_and_leaves_it_does_not_hold(Ledger::postgres().await).await;
}

async fn the_log_refuses_sizes_and_leaves_it_does_not_hold(ledger: Ledger) {
    ledger.fill(2, 3).await;
    let log = ledger.log();
    assert!(matches!(
        merkle::root(log, 1).await,
        Err(StoreError::OutOfRange(_))
    ));
    assert_eq!(merkle::catch_up(log).await.unwrap(), 6);
    assert!(matches!(
        merkle::root(log, 7).await,
        Err(StoreError::OutOfRange(_))
    ));
    assert!(matches!(
        merkle::root(log, 0).await,
        Err(StoreError::OutOfRange(_))
    ));
    assert!(matches!(
        merkle::inclusion(log, 4, 4).await,
        Err(StoreError::OutOfRange(_))
    ));
    assert!(matches!(
        merkle::consistency(log, 5, 4).await,
        Err(StoreError::OutOfRange(_))
    ));
    assert!(merkle::consistency(log, 4, 4).await.unwrap().is_empty());
    ledger.finish().await;
}

#[tokio::test]
async fn sqlite_an_event_deleted_before_it_was_logged_stops_the_log_naming_the_gap() {
    let ledger = Ledger::sqlite().await;
    ledger.fill(3, 4).await;
    let log = ledger.log();
    assert_eq!(log.extend_log(5).await.unwrap(), 5);
    sqlx::query("DELETE FROM events WHERE rowid = 8")
        .execute(ledger.pool())
        .await
        .unwrap();
    let refused = merkle::catch_up(log).await.unwrap_err();
    assert!(
        matches!(&refused, StoreError::Corrupt(m) if m.contains("skips from position 7 to 9")),
        "{refused}"
    );
    // What came before the gap is logged, nothing after it.
    assert_eq!(log.log_size().await.unwrap(), 5);
}

/// On DynamoDB the relay places events in the log as the table's stream delivers them:
/// each shard's batches in order, several shards at once, a batch now and then
/// delivered again. Every event is placed once, each stream's in sequence order, and
/// the log's roots and proofs verify independently of the code that made them.
#[cfg(feature = "dynamo")]
#[tokio::test]
async fn dynamodb_the_relay_logs_every_event_once_in_stream_order_and_its_proofs_verify() {
    use cqrs_es::persist::SerializedEvent;
    use event_store::DynamoStore;
    use std::collections::HashMap;

    let ledger = Ledger::dynamo().await;
    let ids = ledger.fill(8, 30).await;
    let Backend::Dynamo(dynamo) = ledger.store.backend() else {
        unreachable!("DynamoDB")
    };
    let mut streams = Vec::new();
    for id in &ids {
        streams.push(ledger.store.stream("account", id).await.unwrap());
    }
    // Two shards of four streams each, their events interleaved round by round (the
    // order the stream delivers them in), cut into uneven batches.
    let shard = |which: usize| -> Vec<SerializedEvent> {
        (0..30)
            .flat_map(|round| {
                streams
                    .iter()
                    .skip(which)
                    .step_by(2)
                    .map(move |stream| stream[round].clone())
            })
            .collect()
    };
    let relay = |store: DynamoStore, events: Vec<SerializedEvent>| async move {
        let mut at = 0;
        for (n, size) in [1, 7, 3, 25, 40, 100].into_iter().cycle().enumerate() {
            if at >= events.len() {
                break;
            }
            let batch = events[at..(at + size).min(events.len())].to_vec();
            store.log_events(batch.clone()).await.unwrap();
            // Lambda retrying a batch it thinks failed: nothing is placed twice.
            if n % 3 == 1 {
                store.log_events(batch).await.unwrap();
            }
            at += size;
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(relay(dynamo.clone(), shard(0))),
        tokio::spawn(relay(dynamo.clone(), shard(1)))
    );
    a.unwrap();
    b.unwrap();
    // The whole stream delivered again: still nothing twice.
    assert_eq!(dynamo.log_events(shard(0)).await.unwrap(), 240);

    let log = ledger.log();
    assert_eq!(log.log_size().await.unwrap(), 240);
    let placed = log.leaf_events(0, 1_000).await.unwrap();
    assert_eq!(
        placed.iter().map(|(leaf, _)| *leaf).collect::<Vec<_>>(),
        (0..240).collect::<Vec<_>>()
    );
    let mut last: HashMap<String, usize> = HashMap::new();
    for (leaf, event) in &placed {
        let before = last.insert(event.aggregate_id.clone(), event.sequence);
        assert_eq!(
            before.map_or(1, |s| s + 1),
            event.sequence,
            "leaf {leaf}: stream order"
        );
        assert_eq!(
            log.leaf_of("account", &event.aggregate_id, event.sequence as u64)
                .await
                .unwrap(),
            Some(*leaf)
        );
    }
    assert_eq!(log.leaf_of("account", "nobody", 1).await.unwrap(), None);

    // The leaves, computed here from the stored hashes in the log's order.
    let leaves: Vec<Hash> = placed
        .iter()
        .map(|(_, event)| leaf_of_stored_hash(event.metadata["hash"].as_str().unwrap()))
        .collect();
    for tree in 1..=240u64 {
        let root = merkle::root(log, tree).await.unwrap();
        assert_eq!(root, mth(&leaves[..tree as usize]), "root at {tree}");
        let leaf = tree / 2;
        let proof = merkle::inclusion(log, tree, leaf).await.unwrap();
        assert!(rfc_verify_inclusion(
            leaf,
            tree,
            &leaves[leaf as usize],
            &proof,
            &root
        ));
        let old = (tree * 7 / 11).max(1);
        let proof = merkle::consistency(log, old, tree).await.unwrap();
        let old_root = mth(&leaves[..old as usize]);
        assert!(rfc_verify_consistency(old, tree, &old_root, &root, &proof));
        if old < tree {
            let bent = bent(&proof, 7);
            assert!(!rfc_verify_consistency(old, tree, &old_root, &root, &bent));
        }
    }
    // An event not placed yet (its batch not relayed) lies past every tree so far.
    let later = ledger.fill(1, 1).await;
    assert_eq!(
        log.leaf_of("account", &later[0], 1).await.unwrap(),
        Some(240)
    );
    assert_eq!(merkle::catch_up(log).await.unwrap(), 240);
    ledger.finish().await;
}
