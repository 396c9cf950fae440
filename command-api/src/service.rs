//! The command API as a standalone service in AWS (ECS Fargate): the DynamoDB event
//! store, the Cognito staff directory, tokens verified against the user pool, and the
//! system log (in the read-model database) for the requests it refuses. All
//! configuration comes from the environment; a missing variable stops the start with a
//! message naming every one that is missing.

use axum::routing::get;
use axum::{Json, Router};
use event_store::DynamoTables;
use identity::{required_vars, CognitoConfig};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

/// What the service reads from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    pub addr: SocketAddr,
    pub table_prefix: String,
    /// The read-model database, where the system log is.
    pub read_database_url: String,
    pub cognito: CognitoConfig,
    /// The KMS key clients' personal data is encrypted under (`CRM_DATA_KEY_KMS_KEY`).
    pub data_key: Option<String>,
}

impl ServiceConfig {
    /// Reads `CRM_ADDR` (default 0.0.0.0:8080), `CRM_DYNAMODB_TABLE_PREFIX`,
    /// `CRM_READ_DATABASE_URL`, the user pool's variables ([`CognitoConfig::from_env`])
    /// and, if the store encrypts personal data, `CRM_DATA_KEY_KMS_KEY`.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut missing = Vec::new();
        let mut values = required_vars(
            &var,
            &["CRM_DYNAMODB_TABLE_PREFIX", "CRM_READ_DATABASE_URL"],
            &mut missing,
        );
        let read_database_url = values.pop().unwrap_or_default();
        let table_prefix = values.pop().unwrap_or_default();
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
        Ok(ServiceConfig {
            addr,
            table_prefix,
            read_database_url,
            data_key: event_store::kms_master::data_key_from(&var),
            cognito,
        })
    }
}

/// The service's router (commands, health, metrics) over the given AWS clients, every
/// request observed ([`api_kit::observe`]).
pub async fn router(
    config: &ServiceConfig,
    dynamo: event_store::aws_sdk_dynamodb::Client,
    cognito: aws_sdk_cognitoidentityprovider::Client,
    kms: event_store::aws_sdk_kms::Client,
) -> Result<Router, String> {
    let log = Arc::new(
        projections::SystemLog::open(&config.read_database_url)
            .await
            .map_err(|e| format!("system log: {e}"))?,
    );
    let store = Arc::new(
        event_store::kms_master::dynamo_store(
            dynamo,
            DynamoTables::with_prefix(&config.table_prefix),
            &kms,
            config.data_key.as_deref(),
        )
        .map_err(|e| format!("event store: {e}"))?,
    );
    if let Some(vault) = store.vault() {
        // Erasures a stop interrupted between their event and their key's destruction
        // are finished at start and every hour: finding them scans the events table, too
        // dear to do often on a bank's history (asking to erase again finishes one at once).
        tokio::spawn(async move {
            loop {
                if let Err(error) = vault.shred_erased().await {
                    tracing::error!(%error, "the data keys of erased clients could not be destroyed");
                }
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            }
        });
    }
    let (directory, auth) = config.cognito.connect(cognito);
    let health = store.clone();
    // Several services share the store: each finds the transfers left unfinished by any
    // of them, after giving their own driver time.
    let transfers = crate::TransferManager::new(store.clone(), crate::Pace::SHARED);
    let (keep_running, running) = tokio::sync::watch::channel(false);
    tokio::spawn({
        let transfers = transfers.clone();
        async move {
            let _keep_running = keep_running;
            transfers.run(running).await;
        }
    });
    let router = crate::router(crate::AppState {
        store,
        auth,
        directory,
        transfers,
    })
    .route(
        "/health/live",
        get(|| async { Json(json!({"status": "live"})) }),
    )
    .route(
        "/health/ready",
        get(move || {
            let store = health.clone();
            async move {
                match store.ping().await {
                    Ok(()) => (axum::http::StatusCode::OK, Json(json!({"status": "ready"}))),
                    Err(error) => (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        Json(json!({"status": "unavailable", "error": error.to_string()})),
                    ),
                }
            }
        }),
    );
    Ok(api_kit::observe::Observer::new(Some(log)).service(router))
}
