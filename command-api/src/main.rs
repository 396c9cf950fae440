//! The command API service for AWS. Configuration: see `command_api::service`.

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
    let router = command_api::service::router(&config, &sdk);
    let listener = match tokio::net::TcpListener::bind(config.addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("command-api: binding {}: {error}", config.addr);
            return std::process::ExitCode::FAILURE;
        }
    };
    tracing::info!(addr = %config.addr, "serving commands");
    // ECS stops a task with SIGTERM; a terminal with SIGINT.
    let stop = async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match terminate.as_mut() { Some(signal) => { signal.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
    };
    match axum::serve(listener, router)
        .with_graceful_shutdown(stop)
        .await
    {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("command-api: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
