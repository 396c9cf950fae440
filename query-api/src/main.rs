//! The query-api service for AWS. Configuration: see `query_api::service`.
//! `query-api health` checks the running service (the container's health check).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // `query-api health`: the container's health check (see api_kit::serve::probe).
    if std::env::args().nth(1).as_deref() == Some("health") {
        return api_kit::serve::probe("query-api").await;
    }
    tracing_subscriber::fmt().json().init();
    let config = match query_api::service::ServiceConfig::from_env(|name| std::env::var(name).ok())
    {
        Ok(config) => config,
        Err(message) => {
            eprintln!("query-api: {message}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let sdk = aws_config::load_from_env().await;
    let router = query_api::service::router(
        &config,
        event_store::aws_sdk_dynamodb::Client::new(&sdk),
        aws_sdk_cognitoidentityprovider::Client::new(&sdk),
        query_api::service::DigestClients::from_env(&sdk),
    );
    match router.await {
        Ok(router) => api_kit::serve::run("query-api", config.addr, router).await,
        Err(message) => {
            eprintln!("query-api: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
