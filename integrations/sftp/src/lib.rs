//! The SFTP worker (DESIGN.md §6): transaction files from the core system's SFTP inbox
//! are checked whole and recorded through the worker role's own command — all or
//! nothing, never twice — then archived, or quarantined with a report. The file format
//! is in [`format`]; a run in [`inbound`]. Exports (clients, accounts, daily
//! statements) follow the product's events to the outbox ([`outbound`]).

pub mod api;
pub mod format;
pub mod inbound;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod ledger;
pub mod outbound;
pub mod remote;
pub mod service;

pub use api::ProductApi;
pub use inbound::{run, FileOutcome, RunReport};
pub use ledger::Ledger;
pub use remote::{HostKey, SftpConfig};
pub use service::SftpSettings;
