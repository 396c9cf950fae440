//! Running a service: bind, serve, stop gracefully on SIGTERM (how ECS stops a task) or
//! SIGINT, and turn failures into an exit code with a message naming the service.
//!
//! Serving is hardened against clients that would hold the server: a connection must
//! deliver its request headers within [`Limits::header_read_timeout`] (also the idle
//! time allowed between keep-alive requests), a request gets its answer within
//! [`Limits::request_timeout`] or a 503 (work that must finish carries on apart from it:
//! see the command API's `detach`), and at most [`Limits::max_connections`] are open at
//! once; past that, new connections wait in the listen backlog. Each request carries the
//! peer's address as `ConnectInfo<SocketAddr>`.

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::Service;

use crate::ApiError;

/// What one client may hold of the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// How long open connections get to finish after shutdown was asked for.
const DRAIN: Duration = Duration::from_secs(20);

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then lets
/// the open requests finish (for up to 20 s).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let router = router.layer(axum::middleware::from_fn_with_state(
        limits.request_timeout,
        answer_within,
    ));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = TowerToHyperService::new(tower::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                router.clone().call(request.map(axum::body::Body::new))
            },
        ));
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain period were closed");
    }
    Ok(())
}

/// A request not answered within the limit gets a 503; its task is dropped (commands
/// run apart from it and finish regardless).
async fn answer_within(
    axum::extract::State(limit): axum::extract::State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Unavailable(format!(
            "the request was not answered within {} s; if it was a command, retry it with the same Idempotency-Key to learn its outcome",
            limit.as_secs()
        ))
        .into_response(),
    }
}

/// Binds `addr` and serves `router` with the default [`Limits`] until SIGTERM or SIGINT.
pub async fn run(name: &str, addr: SocketAddr, router: Router) -> ExitCode {
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("{name}: binding {addr}: {error}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(%addr, service = name, "serving");
    match serve(listener, router, Limits::default(), stopped()).await {
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

/// `<service> health`: whether the service running on this machine (its `CRM_ADDR`,
/// default port 8080) answers `GET /health/ready` with 200 within 3 s — the container's
/// own health check, since the image has no shell or HTTP client to run one with.
pub async fn probe(name: &str) -> ExitCode {
    let addr = std::env::var("CRM_ADDR").unwrap_or_else(|_| "0.0.0.0:8080".into());
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        eprintln!("{name}: CRM_ADDR `{addr}` is not an address:port");
        return ExitCode::FAILURE;
    };
    // The service listens on every interface or on one: ask it where it listens, or on
    // loopback when that is everywhere.
    let host = if addr.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        addr.ip()
    };
    let url = format!("http://{}/health/ready", SocketAddr::new(host, addr.port()));
    let answer = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .map_err(|e| e.to_string());
    let answer = match answer {
        Ok(client) => client.get(&url).send().await.map_err(|e| e.to_string()),
        Err(error) => Err(error),
    };
    match answer {
        Ok(response) if response.status().is_success() => ExitCode::SUCCESS,
        Ok(response) => {
            eprintln!("{name}: {url} answered {}", response.status());
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("{name}: {url}: {error}");
            ExitCode::FAILURE
        }
    }
}
