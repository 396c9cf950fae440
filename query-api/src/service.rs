//! The query API as a standalone service in AWS (ECS Fargate): read models in Aurora
//! PostgreSQL (built by the projector Lambdas), the DynamoDB event store for auditors,
//! tokens verified against the Cognito user pool, the ledger's digests signed by a KMS
//! key and published to S3 with Object Lock. Configuration from the environment; a
//! missing variable stops the start with a message naming every one that is missing.

use async_trait::async_trait;
use axum::routing::get;
use axum::{Json, Router};
use event_store::{DynamoTables, EventStore};
use identity::{required_vars, CognitoConfig};
use projections::{ReadStore, SystemLog};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::{QueryState, Rebuild};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    pub addr: SocketAddr,
    pub read_database_url: String,
    pub table_prefix: String,
    pub cognito: CognitoConfig,
    pub digests: DigestConfig,
    /// The KMS key clients' personal data is encrypted under (`CRM_DATA_KEY_KMS_KEY`).
    pub data_key: Option<String>,
}

/// Where the ledger's digests are signed and published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestConfig {
    /// The KMS key that signs them (`CRM_DIGEST_KMS_KEY`: id, ARN or alias; ECC_NIST_P256).
    pub kms_key: String,
    /// The S3 bucket with Object Lock they are published to (`CRM_DIGEST_BUCKET`).
    pub bucket: String,
    /// KMS keys rotated out, whose digests stay verifiable
    /// (`CRM_DIGEST_RETIRED_KMS_KEYS`, comma-separated).
    pub retired_keys: Vec<String>,
    /// How often a digest is signed while the ledger grows (`CRM_DIGEST_INTERVAL_SECS`,
    /// default 300).
    pub interval: std::time::Duration,
}

impl ServiceConfig {
    /// Reads `CRM_ADDR` (default 0.0.0.0:8080), `CRM_READ_DATABASE_URL`,
    /// `CRM_DYNAMODB_TABLE_PREFIX`, the user pool's variables and the digests' (see
    /// [`DigestConfig`]).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut missing = Vec::new();
        let mut values = required_vars(
            &var,
            &[
                "CRM_READ_DATABASE_URL",
                "CRM_DYNAMODB_TABLE_PREFIX",
                "CRM_DIGEST_KMS_KEY",
                "CRM_DIGEST_BUCKET",
            ],
            &mut missing,
        );
        let cognito = CognitoConfig::from_env(&var, &mut missing);
        let (Some(cognito), true) = (cognito, missing.is_empty()) else {
            return Err(format!(
                "missing configuration: {} (see docs/architecture.md)",
                missing.join(", ")
            ));
        };
        let addr = var("CRM_ADDR").unwrap_or_else(|| "0.0.0.0:8080".into());
        let addr = addr
            .parse()
            .map_err(|_| format!("CRM_ADDR `{addr}` is not an address:port"))?;
        let interval = match var("CRM_DIGEST_INTERVAL_SECS") {
            None => 300,
            Some(text) => text
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|secs| *secs > 0)
                .ok_or(format!(
                    "CRM_DIGEST_INTERVAL_SECS `{text}` is not a number of seconds above 0"
                ))?,
        };
        let retired_keys = var("CRM_DIGEST_RETIRED_KMS_KEYS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .map(String::from)
            .collect();
        let bucket = values.pop().unwrap_or_default();
        let kms_key = values.pop().unwrap_or_default();
        let table_prefix = values.pop().unwrap_or_default();
        let read_database_url = values.pop().unwrap_or_default();
        Ok(ServiceConfig {
            addr,
            read_database_url,
            table_prefix,
            data_key: event_store::kms_master::data_key_from(&var),
            cognito,
            digests: DigestConfig {
                kms_key,
                bucket,
                retired_keys,
                interval: std::time::Duration::from_secs(interval),
            },
        })
    }
}

/// In AWS the read models are rebuilt by replaying events into a fresh database, which
/// this service does not do; it says so rather than pretend.
struct NoRebuildHere;

#[async_trait]
impl Rebuild for NoRebuildHere {
    async fn rebuild(&self) -> Result<i64, String> {
        Err("rebuilding the Aurora read models is not offered by the query service".into())
    }
}

/// The clients digests are signed and published with.
#[derive(Clone, Debug)]
pub struct DigestClients {
    pub kms: aws_sdk_kms::Client,
    pub s3: aws_sdk_s3::Client,
}

impl DigestClients {
    /// From the SDK's configuration, S3 addressed by path when the environment points
    /// S3 at an endpoint of its own (`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`).
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Self {
        let custom_s3_endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .any(|name| std::env::var_os(name).is_some());
        Self::new(sdk, custom_s3_endpoint)
    }

    /// From the SDK's configuration. S3 behind an endpoint of its own (an emulator, a
    /// VPC endpoint) is addressed by path, where a bucket's host name would not resolve.
    pub fn new(sdk: &aws_config::SdkConfig, custom_s3_endpoint: bool) -> Self {
        let s3 = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(custom_s3_endpoint)
            .build();
        DigestClients {
            kms: aws_sdk_kms::Client::new(sdk),
            s3: aws_sdk_s3::Client::from_conf(s3),
        }
    }
}

/// The notary of the configured KMS key and bucket, and the keys digests verify with.
async fn ledger_proofs(
    config: &DigestConfig,
    clients: DigestClients,
    store: Arc<EventStore>,
) -> Result<crate::LedgerProofs, String> {
    let signer = proofs::aws::KmsSigner::connect(clients.kms.clone(), &config.kms_key)
        .await
        .map_err(|e| e.to_string())?;
    let mut keys = proofs::PublicKeys::default();
    for retired in &config.retired_keys {
        let key = proofs::aws::public_key(&clients.kms, retired);
        keys.add(key.await.map_err(|e| e.to_string())?);
    }
    keys.add(proofs::Signer::public_key(&signer));
    let published = proofs::aws::S3Digests::new(clients.s3, &config.bucket);
    let notary = proofs::Notary::new(store, Arc::new(signer), Arc::new(published));
    Ok(crate::LedgerProofs {
        notary: Arc::new(notary.trusting(&keys)),
        keys,
    })
}

/// Connects to the read models, the store and the digests' key and bucket, and builds
/// the service's router.
pub async fn router(
    config: &ServiceConfig,
    dynamo: event_store::aws_sdk_dynamodb::Client,
    cognito: aws_sdk_cognitoidentityprovider::Client,
    digests: DigestClients,
) -> Result<Router, String> {
    let read = Arc::new(
        ReadStore::open(&config.read_database_url)
            .await
            .map_err(|e| format!("read models: {e}"))?,
    );
    let log = Arc::new(
        SystemLog::open(&config.read_database_url)
            .await
            .map_err(|e| format!("system log: {e}"))?,
    );
    let store = Arc::new(
        event_store::kms_master::dynamo_store(
            dynamo,
            DynamoTables::with_prefix(&config.table_prefix),
            &digests.kms,
            config.data_key.as_deref(),
        )
        .map_err(|e| format!("event store: {e}"))?,
    );
    let (_, auth) = config.cognito.connect(cognito);
    let ready = read.clone();
    let observer = api_kit::observe::Observer::new(Some(log.clone()));
    let verifications = crate::Verifications::new(&log);
    let verifier = crate::Verifier {
        store: store.clone(),
        verifications: verifications.clone(),
        log: log.clone(),
        pace: crate::verifier::Pace::DEFAULT,
    };
    // Runs as long as the service: the sender lives in the task, so `stop` never fires.
    tokio::spawn(async move {
        let (_running, stop) = tokio::sync::watch::channel(false);
        verifier.run(stop).await
    });
    let proofs = ledger_proofs(&config.digests, digests, store.clone()).await?;
    // A digest at the interval while the ledger grows. Every task of the service runs
    // one: a sequence another task published first is signed again after it.
    tokio::spawn({
        let (log, notary) = (log.clone(), proofs.notary.clone());
        let interval = config.digests.interval;
        async move {
            let (_running, stop) = tokio::sync::watch::channel(false);
            crate::notarize(notary, interval, stop, log).await
        }
    });
    let state = QueryState {
        read,
        log,
        store,
        auth,
        rebuild: Arc::new(NoRebuildHere),
        payee_limit: Default::default(),
        verifications,
        proofs: Some(proofs),
    };
    let router = crate::router(state)
        .route(
            "/health/live",
            get(|| async { Json(json!({"status": "live"})) }),
        )
        .route(
            "/health/ready",
            get(move || {
                let read = ready.clone();
                async move {
                    match read.ping().await {
                        Ok(()) => (axum::http::StatusCode::OK, Json(json!({"status": "ready"}))),
                        Err(error) => (
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            Json(json!({"status": "unavailable", "error": error.to_string()})),
                        ),
                    }
                }
            }),
        );
    Ok(observer.service(router))
}
