//! The SFTP worker Lambda. Configuration: the `CRM_SFTP_*` variables of
//! `sftp_worker::service` except the key file and client secret, which come from the
//! Secrets Manager secret `CRM_SFTP_SECRET_ARN`; `CRM_API_URL` and `CRM_TOKEN_URL` (the
//! product's API and the user pool's token endpoint); `CRM_READ_DATABASE_URL` (Aurora:
//! the ledger and the system log); `CRM_DYNAMODB_TABLE_PREFIX` (the event store).

#![recursion_limit = "256"]

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;
use std::sync::Arc;

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt().json().with_target(false).init();
    let missing: Vec<&str> = [
        "CRM_SFTP_SECRET_ARN",
        "CRM_API_URL",
        "CRM_TOKEN_URL",
        "CRM_READ_DATABASE_URL",
        "CRM_DYNAMODB_TABLE_PREFIX",
    ]
    .into_iter()
    .filter(|name| var(name).is_none())
    .collect();
    if !missing.is_empty() {
        return Err(format!("missing configuration: {}", missing.join(", ")).into());
    }
    let sdk = aws_config::load_from_env().await;
    let key_file = std::env::temp_dir().join("sftp_key");
    let client_secret = sftp_worker::lambda::secret(
        &aws_sdk_secretsmanager::Client::new(&sdk),
        &var("CRM_SFTP_SECRET_ARN").unwrap_or_default(),
        &key_file,
    )
    .await?;
    let key_path = key_file.display().to_string();
    let settings = sftp_worker::SftpSettings::from_env(|name| match name {
        "CRM_SFTP_KEY_FILE" => Some(key_path.clone()),
        "CRM_SFTP_CLIENT_SECRET" => Some(client_secret.clone()),
        other => var(other),
    })?
    .ok_or("CRM_SFTP_HOST is required")?;
    let database = projections::database_secret::database_url(
        &sdk,
        &var("CRM_READ_DATABASE_URL").unwrap_or_default(),
        var("CRM_READ_DATABASE_SECRET_ARN").as_deref(),
    )
    .await?;
    let worker = sftp_worker::lambda::Worker {
        api: sftp_worker::ProductApi::new(
            &var("CRM_API_URL").unwrap_or_default(),
            &var("CRM_TOKEN_URL").unwrap_or_default(),
            &settings.client_id,
            &settings.client_secret,
        ),
        sftp: settings.sftp,
        ledger: sftp_worker::Ledger::connect(&database).await?,
        log: Arc::new(projections::SystemLog::open(&database).await?),
        store: Arc::new(event_store::kms_master::dynamo_store(
            event_store::aws_sdk_dynamodb::Client::new(&sdk),
            event_store::DynamoTables::with_prefix(
                &var("CRM_DYNAMODB_TABLE_PREFIX").unwrap_or_default(),
            ),
            &event_store::aws_sdk_kms::Client::new(&sdk),
            event_store::kms_master::data_key_from(var).as_deref(),
        )?),
    };
    let worker = &worker;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let invocation = sftp_worker::lambda::invocation(&event.payload)?;
        let response = worker.handle(invocation).await?;
        Ok::<_, lambda_runtime::Error>(serde_json::to_value(response)?)
    }))
    .await
}
