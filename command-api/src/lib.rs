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
use axum::routing::{delete, get, patch, post};
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
    Router::new()
        .route("/v1/staff", post(staff::create))
        .route("/v1/staff/{id}", delete(staff::delete))
        .route("/v1/staff/{id}/disable", post(staff::disable))
        .route("/v1/staff/{id}/enable", post(staff::enable))
        .route("/v1/staff/{id}/unlock", post(staff::unlock))
        .route("/v1/clients", post(clients::onboard))
        .route("/v1/clients/{id}", patch(clients::update_contact))
        .route("/v1/clients/{id}/deactivate", post(clients::deactivate))
        .route("/v1/clients/{id}/accounts", post(accounts::open))
        .route("/v1/accounts/{id}/deposits", post(accounts::deposit))
        .route("/v1/accounts/{id}/withdrawals", post(accounts::withdraw))
        .route(
            "/v1/accounts/{id}/external-transactions",
            post(accounts::record_external),
        )
        .route("/v1/accounts/{id}/freeze", post(accounts::freeze))
        .route("/v1/accounts/{id}/unfreeze", post(accounts::unfreeze))
        .route("/v1/accounts/{id}/close", post(accounts::close))
        .route("/v1/transfers", post(transfers::request))
        .route("/v1/transfers/{id}", get(transfers::get))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::middleware::<AppState>,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(detach::middleware))
        .with_state(state)
}
