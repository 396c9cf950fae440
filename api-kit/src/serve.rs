//! Running a service: bind, serve, stop gracefully on SIGTERM (how ECS stops a task) or
//! SIGINT, and turn failures into an exit code with a message naming the service.

use axum::Router;
use std::net::SocketAddr;
use std::process::ExitCode;

pub async fn run(name: &str, addr: SocketAddr, router: Router) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("{name}: binding {addr}: {error}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(%addr, service = name, "serving");
    match axum::serve(listener, router)
        .with_graceful_shutdown(stopped())
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn stopped() {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminated = async {
            match terminate.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminated => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
