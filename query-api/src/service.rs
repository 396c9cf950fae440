//! The query API as a standalone service in AWS (ECS Fargate): read models in Aurora
//! PostgreSQL (built by the projector Lambdas), the DynamoDB event store for auditors,
//! tokens verified against the Cognito user pool. Configuration from the environment;
//! a missing variable stops the start with a message naming every one that is missing.

use async_trait::async_trait;
use axum::routing::get;
use axum::{Json, Router};
use event_store::{Backend, DynamoTables, EventStore};
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
}

impl ServiceConfig {
    /// Reads `CRM_ADDR` (default 0.0.0.0:8080), `CRM_READ_DATABASE_URL`,
    /// `CRM_DYNAMODB_TABLE_PREFIX` and the user pool's variables.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut missing = Vec::new();
        let mut values = required_vars(
            &var,
            &["CRM_READ_DATABASE_URL", "CRM_DYNAMODB_TABLE_PREFIX"],
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
        let table_prefix = values.pop().unwrap_or_default();
        let read_database_url = values.pop().unwrap_or_default();
        Ok(ServiceConfig {
            addr,
            read_database_url,
            table_prefix,
            cognito,
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

/// Connects to the read models and the store and builds the service's router.
pub async fn router(
    config: &ServiceConfig,
    dynamo: event_store::aws_sdk_dynamodb::Client,
    cognito: aws_sdk_cognitoidentityprovider::Client,
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
    let store = Arc::new(EventStore::new(Backend::dynamo(
        dynamo,
        DynamoTables::with_prefix(&config.table_prefix),
    )));
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
    let state = QueryState {
        read,
        log,
        store,
        auth,
        rebuild: Arc::new(NoRebuildHere),
        payee_limit: Default::default(),
        verifications,
        // The AWS store keeps no Merkle log yet: the digest endpoints answer 404.
        proofs: None,
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
