//! The write side's HTTP API (`/v1`): every command of the API contract, each
//! authenticated, authorized through the domain policy, idempotent under an
//! `Idempotency-Key`, optionally guarded by `If-Match`, and answered with the aggregate's
//! id and new version. `/openapi.json` describes it.

mod accounts;
pub mod bootstrap;
mod clients;
pub mod context;
pub mod detach;
pub mod idempotency;
mod input;
mod openapi;
mod owners;
mod reply;
#[cfg(feature = "aws")]
pub mod service;
mod staff;
pub mod transfer_manager;
mod transfers;

use api_kit::json::BODY_LIMIT;
use api_kit::Authenticator;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::{delete, get, patch, post, MethodRouter};
use axum::Router;
use event_store::EventStore;
use identity::StaffDirectory;
use std::sync::Arc;

pub use openapi::ApiDoc;
pub use transfer_manager::{Pace, TransferManager};

/// What the command handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<EventStore>,
    pub auth: Arc<Authenticator>,
    pub directory: Arc<dyn StaffDirectory>,
    /// Drives transfers apart from the requests that ask for them.
    pub transfers: Arc<TransferManager>,
}

impl FromRef<AppState> for Arc<EventStore> {
    fn from_ref(state: &AppState) -> Self {
        state.store.clone()
    }
}

impl FromRef<AppState> for Arc<Authenticator> {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

/// The command API's routes, with idempotency and the body limit applied. The OpenAPI
/// document ([`ApiDoc`]) is served by the composition, merged with the read side's.
pub fn router(state: AppState) -> Router {
    let command = |route| command(&state, route);
    Router::new()
        .route("/v1/staff", command(post(staff::create)))
        .route(
            "/v1/staff/{id}",
            command(delete(staff::delete).patch(staff::change)),
        )
        .route(
            "/v1/staff/{id}/password",
            command(post(staff::reset_password)),
        )
        .route("/v1/staff/{id}/disable", command(post(staff::disable)))
        .route("/v1/staff/{id}/enable", command(post(staff::enable)))
        .route("/v1/staff/{id}/unlock", command(post(staff::unlock)))
        .route("/v1/clients", command(post(clients::onboard)))
        .route("/v1/clients/{id}", command(patch(clients::update_contact)))
        .route(
            "/v1/clients/{id}/deactivate",
            command(post(clients::deactivate)),
        )
        .route("/v1/clients/{id}/erase", command(post(clients::erase)))
        .route("/v1/clients/{id}/accounts", command(post(accounts::open)))
        .route(
            "/v1/accounts/{id}/deposits",
            command(post(accounts::deposit)),
        )
        .route(
            "/v1/accounts/{id}/withdrawals",
            command(post(accounts::withdraw)),
        )
        .route(
            "/v1/accounts/{id}/external-transactions",
            command(post(accounts::record_external)),
        )
        .route("/v1/accounts/{id}/freeze", command(post(accounts::freeze)))
        .route(
            "/v1/accounts/{id}/unfreeze",
            command(post(accounts::unfreeze)),
        )
        .route("/v1/accounts/{id}/close", command(post(accounts::close)))
        .route("/v1/transfers", command(post(transfers::request)))
        .route("/v1/transfers/{id}", get(transfers::get))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// A command route: idempotent under an `Idempotency-Key`, and run apart from its
/// connection. Layered on the method's own route, so a method the path does not take
/// is a plain 405, never claimed as an idempotent request.
pub fn command<S>(state: &S, route: MethodRouter<S>) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Authenticator>: FromRef<S>,
    Arc<EventStore>: FromRef<S>,
{
    route
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::middleware::<S>,
        ))
        .route_layer(axum::middleware::from_fn(detach::middleware))
}
