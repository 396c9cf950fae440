//! The command-api service for AWS. Configuration: see `command_api::service`.
//! `command-api health` checks the running service (the container's health check).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // `command-api health`: the container's health check (see api_kit::serve::probe).
    if std::env::args().nth(1).as_deref() == Some("health") {
        return api_kit::serve::probe("command-api").await;
    }
    tracing_subscriber::fmt().json().init();
    let config =
        match command_api::service::ServiceConfig::from_env(|name| std::env::var(name).ok()) {
            Ok(config) => config,
            Err(message) => {
                eprintln!("command-api: {message}");
                return std::process::ExitCode::FAILURE;
            }
        };
    let sdk = aws_config::load_from_env().await;
    let router = match command_api::service::router(
        &config,
        event_store::aws_sdk_dynamodb::Client::new(&sdk),
        aws_sdk_cognitoidentityprovider::Client::new(&sdk),
        event_store::aws_sdk_kms::Client::new(&sdk),
    )
    .await
    {
        Ok(router) => router,
        Err(message) => {
            eprintln!("command-api: {message}");
            return std::process::ExitCode::FAILURE;
        }
    };
    api_kit::serve::run("command-api", config.addr, router).await
}
