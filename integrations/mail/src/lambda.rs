//! The mail service as a Lambda behind an ALB (feature `lambda`): the same router as in
//! `crm serve`, with Cognito tokens, the DynamoDB event store, the Aurora read models,
//! Bedrock (or an OpenAI-compatible endpoint) and SES. lambda_http turns ALB events into
//! requests and responses back into the ALB format.

use std::sync::Arc;

use event_store::{DynamoTables, EventStore};
use identity::{required_vars, CognitoConfig};
use projections::ReadStore;

use crate::bedrock::Bedrock;
use crate::config::MailSettings;
use crate::drafter::Drafter;
use crate::ses::Ses;
use crate::MailState;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaConfig {
    pub table_prefix: String,
    pub read_database_url: String,
    pub cognito: CognitoConfig,
    pub mail: MailSettings,
    /// The KMS key clients' personal data is encrypted under (`CRM_DATA_KEY_KMS_KEY`).
    pub data_key: Option<String>,
}

impl LambdaConfig {
    /// `CRM_DYNAMODB_TABLE_PREFIX`, `CRM_READ_DATABASE_URL`, `CRM_MAIL_FROM` (an SES
    /// verified identity), the user pool's variables and the model's
    /// ([`MailSettings::from_env`]), and `CRM_DATA_KEY_KMS_KEY` if the store encrypts
    /// personal data; every missing one is named.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut missing = Vec::new();
        let values = required_vars(
            &var,
            &[
                "CRM_DYNAMODB_TABLE_PREFIX",
                "CRM_READ_DATABASE_URL",
                "CRM_MAIL_FROM",
            ],
            &mut missing,
        );
        let cognito = CognitoConfig::from_env(&var, &mut missing);
        let (Some(cognito), true) = (cognito, missing.is_empty()) else {
            return Err(format!("missing configuration: {}", missing.join(", ")));
        };
        Ok(LambdaConfig {
            table_prefix: values[0].clone(),
            read_database_url: values[1].clone(),
            mail: MailSettings::from_env(&var)?,
            data_key: event_store::kms_master::data_key_from(&var),
            cognito,
        })
    }
}

/// The clients the Lambda talks to.
pub struct AwsClients {
    pub dynamo: event_store::aws_sdk_dynamodb::Client,
    pub cognito: aws_sdk_cognitoidentityprovider::Client,
    pub ses: aws_sdk_sesv2::Client,
    pub bedrock: aws_sdk_bedrockruntime::Client,
    pub kms: event_store::aws_sdk_kms::Client,
}

impl AwsClients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        AwsClients {
            dynamo: event_store::aws_sdk_dynamodb::Client::new(sdk),
            cognito: aws_sdk_cognitoidentityprovider::Client::new(sdk),
            ses: aws_sdk_sesv2::Client::new(sdk),
            bedrock: aws_sdk_bedrockruntime::Client::new(sdk),
            kms: event_store::aws_sdk_kms::Client::new(sdk),
        }
    }
}

pub async fn state(config: &LambdaConfig, clients: AwsClients) -> Result<MailState, String> {
    let store = Arc::new(
        event_store::kms_master::dynamo_store(
            clients.dynamo,
            DynamoTables::with_prefix(&config.table_prefix),
            &clients.kms,
            config.data_key.as_deref(),
        )
        .map_err(|e| format!("event store: {e}"))?,
    );
    let read = Arc::new(
        ReadStore::open(&config.read_database_url)
            .await
            .map_err(|e| format!("read models: {e}"))?,
    );
    let (_, auth) = config.cognito.connect(clients.cognito);
    let drafter: Option<Arc<dyn Drafter>> = match (&config.mail.provider, &config.mail.model) {
        (Some(provider), Some(model)) if provider == "bedrock" => {
            Some(Arc::new(Bedrock::new(clients.bedrock, model)))
        }
        _ => config.mail.openai_drafter(),
    };
    Ok(MailState {
        store,
        auth,
        read,
        drafter,
        sender: Some(Arc::new(Ses::new(clients.ses, &config.mail.from))),
    })
}

/// The Lambda's whole router: the mail route, `/health/live`, `/health/ready` (the store
/// and the read models answer) and `/metrics`, every request observed and its refusals
/// in the system log, as the other services are. (Behind the ALB only `/v1/mail` is
/// routed here; the rest serves the ALB's health check and the local AWS mode.)
pub async fn router(config: &LambdaConfig, clients: AwsClients) -> Result<axum::Router, String> {
    let state = state(config, clients).await?;
    let log = Arc::new(
        projections::SystemLog::open(&config.read_database_url)
            .await
            .map_err(|e| format!("system log: {e}"))?,
    );
    let (store, read) = (state.store.clone(), state.read.clone());
    let router = crate::router(state)
        .route(
            "/health/live",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "live"})) }),
        )
        .route(
            "/health/ready",
            axum::routing::get(move || {
                let (store, read) = (store.clone(), read.clone());
                async move { ready(&store, &read).await }
            }),
        );
    Ok(api_kit::observe::Observer::new(Some(log)).service(router))
}

async fn ready(
    store: &EventStore,
    read: &ReadStore,
) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    let store = store.ping().await.err().map(|e| e.to_string());
    let read = read.ping().await.err().map(|e| e.to_string());
    if store.is_none() && read.is_none() {
        (
            axum::http::StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ready"})),
        )
    } else {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(
                serde_json::json!({"status": "unavailable", "event_store": store, "read_models": read}),
            ),
        )
    }
}
