//! The scheduled reader of the Cognito pool's sign-in histories: failed sign-ins to the
//! system log (`projections::sign_in_failures`). Configuration: `CRM_USER_POOL_ID`,
//! `CRM_READ_DATABASE_URL` (RDS Proxy, no password), `CRM_READ_DATABASE_SECRET_ARN`, and
//! the standard AWS SDK environment. A run that fails is reported as failed and read
//! again by the next one; nothing is recorded twice.

#![recursion_limit = "256"]

use lambda_runtime::{service_fn, LambdaEvent};
use projections::SystemLog;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt().json().with_target(false).init();
    let [pool, database] =
        projections::lambda::required(["CRM_USER_POOL_ID", "CRM_READ_DATABASE_URL"])?;
    let sdk = aws_config::load_from_env().await;
    let secret = std::env::var("CRM_READ_DATABASE_SECRET_ARN").ok();
    let url =
        projections::database_secret::database_url(&sdk, &database, secret.as_deref()).await?;
    let log = SystemLog::open(&url).await?;
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    let (log, cognito, pool) = (&log, &cognito, pool.as_str());
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            let run = projections::sign_in_failures::collect(cognito, log, pool).await?;
            tracing::info!(
                users = run.users,
                failures = run.failures,
                "sign-in histories read"
            );
            Ok::<_, lambda_runtime::Error>(serde_json::json!({
                "users": run.users, "failures": run.failures
            }))
        },
    ))
    .await
}
