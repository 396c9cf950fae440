//! The read side's HTTP API (`/v1`, GET): staff, clients, accounts and transaction
//! history from the read models; the system log for admins; and for auditors, event
//! streams, state as of a version or time (replayed through the aggregate, not read
//! from the read models), chain verification and the audit log. Every endpoint runs the
//! domain policy; an agent sees only their own clients.

mod audit;
mod clients;
mod ledger;
mod openapi;
mod params;
mod payee_limit;
#[cfg(feature = "aws")]
pub mod service;
mod staff;
mod system_log;
mod verifications;
pub mod verifier;

use api_kit::Authenticator;
use async_trait::async_trait;
use axum::extract::FromRef;
use axum::routing::{get, post};
use axum::Router;
use event_store::EventStore;
use projections::{ReadStore, SystemLog};
use std::sync::Arc;

pub use ledger::{digest_entry, notarize, refusal_entry, LedgerProofs};
pub use openapi::QueryDoc;
pub use verifier::{Verifications, Verifier};

/// Rebuilds the read models (implemented by the composition root, which knows where
/// they live).
#[async_trait]
pub trait Rebuild: Send + Sync {
    /// Returns the store position the new read models were built up to.
    async fn rebuild(&self) -> Result<i64, String>;
}

pub use payee_limit::PayeeLimit;

#[derive(Clone)]
pub struct QueryState {
    pub read: Arc<ReadStore>,
    pub log: Arc<SystemLog>,
    pub store: Arc<EventStore>,
    pub auth: Arc<Authenticator>,
    pub rebuild: Arc<dyn Rebuild>,
    pub payee_limit: Arc<PayeeLimit>,
    pub verifications: Verifications,
    /// Signed digests and proofs; `None` where the store keeps no Merkle log.
    pub proofs: Option<LedgerProofs>,
}

impl FromRef<QueryState> for Arc<Authenticator> {
    fn from_ref(state: &QueryState) -> Self {
        state.auth.clone()
    }
}

pub fn router(state: QueryState) -> Router {
    Router::new()
        .route("/v1/staff", get(staff::list))
        .route("/v1/staff/{id}", get(staff::get))
        .route("/v1/clients", get(clients::list))
        .route("/v1/clients/{id}", get(clients::get))
        .route("/v1/clients/{id}/accounts", get(clients::accounts))
        .route(
            "/v1/clients/{id}/communications",
            get(clients::communications),
        )
        .route("/v1/accounts/{id}", get(clients::account))
        .route("/v1/payees/{number}", get(clients::payee))
        .route("/v1/accounts/{id}/transactions", get(clients::transactions))
        .route(
            "/v1/audit/streams/{aggregate_type}/{id}/events",
            get(audit::events),
        )
        .route(
            "/v1/audit/streams/{aggregate_type}/{id}/state",
            get(audit::state),
        )
        .route("/v1/audit/verify", get(audit::verify))
        .route("/v1/audit/log", get(audit::log))
        .route("/v1/audit/digests", get(ledger::list).post(ledger::issue))
        .route("/v1/audit/digests/latest", get(ledger::latest))
        .route("/v1/audit/digest-keys", get(ledger::keys))
        .route("/v1/audit/proofs/inclusion", get(ledger::inclusion))
        .route("/v1/audit/proofs/consistency", get(ledger::consistency))
        .route("/v1/audit/ledger/verify", get(ledger::verify))
        .route(
            "/v1/audit/verifications",
            post(verifications::start).get(verifications::list),
        )
        .route("/v1/audit/verifications/{id}", get(verifications::get))
        .route("/v1/system-log", get(system_log::list))
        .route("/v1/admin/rebuild", post(system_log::rebuild))
        .with_state(state)
}
