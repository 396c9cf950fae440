//! Ledgerline's business rules. Everything here is pure: aggregates decide on commands
//! and evolve from events, value types refuse invalid values, the authorization policy
//! is a function of actor and action, and the event hash chain is computed and checked
//! over plain data. IO (stores, HTTP, clocks) lives in the crates around this one.

pub mod account;
pub mod chain;
pub mod client;
pub mod contact;
pub mod error;
pub mod ids;
pub mod metadata;
pub mod money;
pub mod policy;
pub mod staff;
pub mod transfer;

pub use error::{Refusal, RefusalKind, ValidationError, ValidationErrors};
pub use ids::{AccountId, ClientId, StaffId, TransactionId, TransferId};
pub use money::{Currency, Money};
