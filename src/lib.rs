//! Ledgerline's composition root: `crm serve` wires the event store, the embedded
//! identity provider and the command API into one process on the embedded default
//! (SQLite files in a data directory, no other server). Tests build the same app.

// The futures of the whole process (server, store, snapshots, projector) nest deeper
// than the compiler's default layout depth.
#![recursion_limit = "256"]

mod audit;
#[cfg(feature = "aws")]
mod aws;
pub mod cli;
pub mod config;
mod health;
mod rebuild;
pub mod replay;
pub mod serve;
mod sign_ins;

pub use config::Config;
pub use serve::{build, App};

/// The whole API's OpenAPI document: commands, reads, identity and operations.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    let mut document = command_api::ApiDoc::openapi();
    document.merge(mail::MailDoc::openapi());
    api_kit::openapi::document_commands(&mut document);
    document.merge(query_api::QueryDoc::openapi());
    document.merge(identity::IdentityDoc::openapi());
    document.merge(crate::health::OperationsDoc::openapi());
    api_kit::openapi::document_shared_answers(&mut document);
    document
}
