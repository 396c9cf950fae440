//! Digests in AWS on the emulators: a DynamoDB store (DynamoDB Local) whose log the
//! relay keeps, digests signed by a KMS key and published to an S3 bucket with Object
//! Lock in compliance mode (moto). Two issuers at once publish one digest per sequence,
//! chained; a published digest can be neither overwritten nor deleted; the ledger
//! check passes against them with nothing but the key's public half.

use std::sync::Arc;

use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use aws_sdk_s3::types::{
    DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode,
    ObjectLockRule,
};
use chrono::Utc;
use domain::account::{Account, AccountEvent, AccountType};
use domain::metadata::CommandMetadata;
use domain::policy::Role;
use domain::{AccountId, ClientId, Currency, Money, TransactionId};
use event_store::{Backend, DynamoTables, EventStore};
use proofs::aws::{KmsSigner, S3Digests};
use proofs::{DigestLog, DigestLogError, Notary, PublicKeys};

const BUCKET: &str = "ledger-digests";

struct Peers {
    _dynamo: test_peers::Peer,
    _moto: test_peers::Peer,
    store: Arc<EventStore>,
    kms: aws_sdk_kms::Client,
    s3: aws_sdk_s3::Client,
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

/// The emulators, a bucket with Object Lock (compliance, one day), and a store of two
/// accounts' events, logged as the relay logs them.
async fn peers() -> Peers {
    let (dynamo, moto) = (test_peers::dynamodb_local().await, test_peers::moto().await);
    let store_config = test_peers::aws::config(&dynamo.endpoint).await;
    let aws = test_peers::aws::config(&moto.endpoint).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&aws)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(BUCKET)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    let retention = DefaultRetention::builder()
        .mode(ObjectLockRetentionMode::Compliance)
        .days(1)
        .build();
    s3.put_object_lock_configuration()
        .bucket(BUCKET)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(retention)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();

    let tables = DynamoTables::with_prefix("digests-");
    let client = event_store::aws_sdk_dynamodb::Client::new(&store_config);
    tables.create(&client).await.unwrap();
    let store = Arc::new(EventStore::new(Backend::dynamo(client, tables)));
    let eur = Currency::parse("EUR").unwrap();
    for _ in 0..2 {
        let id = AccountId::new();
        let events = [AccountEvent::AccountOpened {
            account_id: id,
            client_id: ClientId::new(),
            account_type: AccountType::Checking,
            currency: eur,
            initial_deposit: Money::zero(eur),
            opening_transaction_id: TransactionId::new(),
            account_number: domain::AccountNumber::derived(id),
        }];
        let key = id.to_string();
        let loaded = store.load::<Account>(&key).await.unwrap();
        store
            .append::<Account>(&key, &loaded, &events, &metadata())
            .await
            .unwrap();
        let Backend::Dynamo(dynamo) = store.backend() else {
            unreachable!("DynamoDB")
        };
        let stored = store.stream("account", &key).await.unwrap();
        dynamo.log_events(stored).await.unwrap();
    }
    Peers {
        _dynamo: dynamo,
        _moto: moto,
        store,
        kms: aws_sdk_kms::Client::new(&aws),
        s3,
    }
}

async fn signing_key(kms: &aws_sdk_kms::Client, spec: KeySpec) -> String {
    let made = kms
        .create_key()
        .key_spec(spec)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap();
    made.key_metadata().unwrap().key_id().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_signed_by_kms_are_published_once_each_and_cannot_be_rewritten() {
    let peers = peers().await;
    let key = signing_key(&peers.kms, KeySpec::EccNistP256).await;
    let notary = || async {
        let signer = KmsSigner::connect(peers.kms.clone(), &key).await.unwrap();
        let published = S3Digests::new(peers.s3.clone(), BUCKET);
        Notary::new(peers.store.clone(), Arc::new(signer), Arc::new(published))
    };
    let (one, two) = (notary().await, notary().await);
    let keys: PublicKeys = [one.signer().public_key()].into_iter().collect();
    assert_eq!(one.signer().public_key().algorithm(), "ecdsa-p256-sha256");

    // Two services issuing at once: each publishes a digest, one sequence each, chained.
    let (a, b) = tokio::join!(one.issue(false), two.issue(false));
    let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
    let mut sequences = [a.sequence, b.sequence];
    sequences.sort_unstable();
    assert_eq!(sequences, [0, 1]);
    let published = one.published().read().await.unwrap();
    assert_eq!(published.len(), 2);
    assert_eq!(published[1].previous, published[0].chain_hash());
    for digest in &published {
        digest.verify(&keys).unwrap();
        assert_eq!(digest.tree_size, 2);
    }
    assert_eq!(two.published().last().await.unwrap().unwrap(), published[1]);

    // A reader that took the last digest first still reads them all; one that read
    // them all before sees the next one too (each fetches only what is new).
    let reader = S3Digests::new(peers.s3.clone(), BUCKET);
    assert_eq!(reader.last().await.unwrap().unwrap(), published[1]);
    assert_eq!(reader.read().await.unwrap(), published);
    let third = one.issue(false).await.unwrap().unwrap();
    assert_eq!(third.sequence, 2);
    assert_eq!(reader.read().await.unwrap().len(), 3);
    assert_eq!(reader.last().await.unwrap().unwrap(), third);
    let published = one.published().read().await.unwrap();

    // The ledger checks out against them with the public key alone.
    let log = peers.store.backend().merkle().unwrap();
    let report = proofs::ledger_check::check_store(log, &published, &keys)
        .await
        .unwrap();
    assert!(report.ok, "{:?}", report.problems);
    assert_eq!(report.digests, 3);

    // A digest published cannot be replaced by another of its sequence...
    let mut forged = published[0].clone();
    forged.root_hash = "00".repeat(32);
    let again = S3Digests::new(peers.s3.clone(), BUCKET)
        .append(&forged)
        .await;
    assert!(matches!(again, Err(DigestLogError::Taken(0))), "{again:?}");
    // ...nor deleted, by anyone, while Object Lock keeps it.
    let versions = peers
        .s3
        .list_object_versions()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let first = &versions.versions()[0];
    let deleted = peers
        .s3
        .delete_object()
        .bucket(BUCKET)
        .key(first.key().unwrap())
        .version_id(first.version_id().unwrap())
        .send()
        .await;
    let error = deleted.expect_err("a locked digest was deleted");
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&error),
        Some("AccessDenied")
    );
    assert_eq!(one.published().read().await.unwrap(), published);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kms_key_that_is_not_p256_is_refused_by_name() {
    let peers = peers().await;
    let rsa = signing_key(&peers.kms, KeySpec::Rsa2048).await;
    let refused = KmsSigner::connect(peers.kms.clone(), &rsa).await;
    let message = refused.err().expect("an RSA key was taken").to_string();
    assert!(
        message.contains("is not an ECC_NIST_P256 signing key"),
        "{message}"
    );
    let missing = KmsSigner::connect(peers.kms.clone(), "alias/no-such-key").await;
    assert!(missing.is_err());
}
