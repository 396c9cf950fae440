//! The Cognito pool's post-authentication trigger: each sign-in to the system log
//! (`projections::sign_in`). Configuration: `CRM_READ_DATABASE_URL` (RDS Proxy, no
//! password), `CRM_READ_DATABASE_SECRET_ARN`, and the standard AWS SDK environment. A
//! database that cannot be reached at start leaves sign-ins unrecorded (and logged as
//! such), never refused.

#![recursion_limit = "256"]

use aws_lambda_events::event::cognito::CognitoEventUserPoolsPostAuthentication;
use lambda_runtime::{service_fn, LambdaEvent};
use projections::SystemLog;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt().json().with_target(false).init();
    let database = std::env::var("CRM_READ_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .ok_or("missing configuration: CRM_READ_DATABASE_URL")?;
    let sdk = aws_config::load_from_env().await;
    let secret = std::env::var("CRM_READ_DATABASE_SECRET_ARN").ok();
    let opened = async {
        let url =
            projections::database_secret::database_url(&sdk, &database, secret.as_deref()).await?;
        SystemLog::open(&url).await.map_err(|e| e.to_string())
    };
    let log = match tokio::time::timeout(std::time::Duration::from_secs(3), opened).await {
        Ok(Ok(log)) => Some(log),
        Ok(Err(error)) => {
            tracing::error!(%error, "the system log is unavailable; sign-ins go unrecorded");
            None
        }
        Err(_) => {
            tracing::error!("the system log did not open in time; sign-ins go unrecorded");
            None
        }
    };
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    let (log, cognito) = (&log, &cognito);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<CognitoEventUserPoolsPostAuthentication>| async move {
            Ok::<_, lambda_runtime::Error>(
                projections::sign_in::handle(log.as_ref(), cognito, event.payload).await,
            )
        },
    ))
    .await
}
