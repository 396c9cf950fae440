//! The projector Lambda binary. Configuration (all required): `CRM_READ_DATABASE_URL`
//! (Aurora PostgreSQL, read models and system log), `CRM_DYNAMODB_TABLE_PREFIX` (the
//! event store, for gaps), and the standard AWS SDK environment; optionally
//! `CRM_READ_DATABASE_SECRET_ARN`, the secret holding the database's password, and
//! `CRM_DATA_KEY_KMS_KEY`, the KMS key clients' personal data is encrypted under.

#![recursion_limit = "256"]

use std::sync::Arc;

use event_store::DynamoTables;
use lambda_runtime::{service_fn, LambdaEvent};
use projections::{Projector, ReadStore, SystemLog};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt().json().with_target(false).init();
    let [database, prefix] =
        projections::lambda::required(["CRM_READ_DATABASE_URL", "CRM_DYNAMODB_TABLE_PREFIX"])?;
    let config = aws_config::load_from_env().await;
    let secret = std::env::var("CRM_READ_DATABASE_SECRET_ARN").ok();
    let database =
        projections::database_secret::database_url(&config, &database, secret.as_deref()).await?;
    let store = Arc::new(event_store::kms_master::dynamo_store(
        event_store::aws_sdk_dynamodb::Client::new(&config),
        DynamoTables::with_prefix(&prefix),
        &event_store::aws_sdk_kms::Client::new(&config),
        event_store::kms_master::data_key_from(|name| std::env::var(name).ok()).as_deref(),
    )?);
    let read = Arc::new(ReadStore::open(&database).await?);
    let log = Arc::new(SystemLog::open(&database).await?);
    let projector = Projector::new(store, read, log);
    let projector = &projector;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| async move {
            Ok::<_, lambda_runtime::Error>(
                projections::lambda::handle(projector, event.payload).await,
            )
        },
    ))
    .await
}
