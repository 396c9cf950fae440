//! The command API as a standalone service in AWS (ECS Fargate): the DynamoDB event
//! store, the Cognito staff directory, and tokens verified against the user pool. All
//! configuration comes from the environment; a missing variable stops the start with a
//! message naming every one that is missing.

use api_kit::auth::{HttpKeySource, TokenVerifier};
use api_kit::Authenticator;
use axum::routing::get;
use axum::{Json, Router};
use event_store::{Backend, DynamoTables, EventStore};
use identity::CognitoDirectory;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

/// What the service reads from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    pub addr: SocketAddr,
    pub table_prefix: String,
    pub user_pool_id: String,
    pub client_ids: Vec<String>,
    pub issuer: String,
    pub jwks_url: String,
}

impl ServiceConfig {
    /// Reads `CRM_ADDR` (default 0.0.0.0:8080), `CRM_DYNAMODB_TABLE_PREFIX`,
    /// `CRM_COGNITO_USER_POOL_ID`, `CRM_COGNITO_CLIENT_IDS` (comma-separated), `AWS_REGION`,
    /// and optionally `CRM_COGNITO_ISSUER` and `CRM_COGNITO_JWKS_URL` (derived from the pool
    /// by default; the JWKS URL can differ from the issuer, as with an emulator).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut missing = Vec::new();
        let mut required = |name: &'static str| {
            let value = var(name).filter(|v| !v.trim().is_empty());
            if value.is_none() {
                missing.push(name);
            }
            value.unwrap_or_default()
        };
        let table_prefix = required("CRM_DYNAMODB_TABLE_PREFIX");
        let user_pool_id = required("CRM_COGNITO_USER_POOL_ID");
        let client_ids = required("CRM_COGNITO_CLIENT_IDS");
        let region = required("AWS_REGION");
        if !missing.is_empty() {
            return Err(format!(
                "missing configuration: {} (see docs/architecture.md)",
                missing.join(", ")
            ));
        }
        let addr = var("CRM_ADDR").unwrap_or_else(|| "0.0.0.0:8080".into());
        let addr = addr
            .parse()
            .map_err(|_| format!("CRM_ADDR `{addr}` is not an address:port"))?;
        let issuer = var("CRM_COGNITO_ISSUER").unwrap_or_else(|| {
            format!("https://cognito-idp.{region}.amazonaws.com/{user_pool_id}")
        });
        let jwks_url = var("CRM_COGNITO_JWKS_URL")
            .unwrap_or_else(|| format!("{issuer}/.well-known/jwks.json"));
        Ok(ServiceConfig {
            addr,
            table_prefix,
            user_pool_id,
            client_ids: client_ids
                .split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect(),
            issuer,
            jwks_url,
        })
    }
}

/// The service's router (commands, health, OpenAPI) over AWS clients built from `sdk`.
pub fn router(config: &ServiceConfig, sdk: &aws_config::SdkConfig) -> Router {
    let store = Arc::new(EventStore::new(Backend::dynamo(
        event_store::aws_sdk_dynamodb::Client::new(sdk),
        DynamoTables::with_prefix(&config.table_prefix),
    )));
    let directory = Arc::new(CognitoDirectory::new(
        aws_sdk_cognitoidentityprovider::Client::new(sdk),
        &config.user_pool_id,
    ));
    let verifier = TokenVerifier::new(
        &config.issuer,
        Arc::new(HttpKeySource::new(&config.jwks_url)),
    )
    .with_client_ids(config.client_ids.clone());
    let auth = Arc::new(Authenticator::new(verifier, directory.clone()));
    let health = store.clone();
    crate::router(crate::AppState {
        store,
        auth,
        directory,
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
                match store.backend().ping().await {
                    Ok(()) => (axum::http::StatusCode::OK, Json(json!({"status": "ready"}))),
                    Err(error) => (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        Json(json!({"status": "unavailable", "error": error.to_string()})),
                    ),
                }
            }
        }),
    )
}
