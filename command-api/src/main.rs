//! The command-api service for AWS. Configuration: see `command_api::service`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
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
    match Ok::<_, String>(command_api::service::router(&config, &sdk)) {
        Ok(router) => api_kit::serve::run("command-api", config.addr, router).await,
        Err(message) => {
            eprintln!("command-api: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
