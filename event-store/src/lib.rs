//! The write side's persistence: an event store that seals every event into its stream's
//! hash chain, over cqrs-es's `PersistedEventRepository` implementations (`sqlite-es`
//! embedded, `postgres-es` self-hosted, `dynamo-es` in AWS); the command executor with
//! optimistic concurrency and retries; and the durable idempotency records.
//!
//! Modules depend in one direction: the capabilities and state types; the backends
//! implementing them; the store (appends and stream reads); loading (snapshots and
//! folds); then the executor, verification, idempotency and account numbers over them.

mod backend;
mod cache;
pub mod capabilities;
mod error;
mod executor;
mod feed;
pub mod idempotency;
#[cfg(feature = "dynamo")]
pub mod kms_master;
mod loading;
pub mod merkle;
mod numbers;
pub mod personal;
mod state;
mod store;
mod verify;

#[cfg(feature = "dynamo")]
pub use backend::dynamo::{event_from_item, DynamoTables, KeyAttribute, ScanCursor, TableSchema};
pub use backend::pool_check;
#[cfg(feature = "dynamo")]
pub use backend::DynamoStore;
pub use backend::{Backend, PostgresStore, SqliteFeed, SqliteOptions, SqliteStore};
pub use capabilities::{CommitFeed, DataKey, DataKeys, MerkleStorage};
pub use error::{is_transient, StoreError};
pub use executor::{is_recovering, recovering, Committed, ExecuteError, Expected};
pub use feed::{time_position, Appended, StoredEvent};
pub use state::{AsOf, Loaded, StateAt};
pub use store::{EventStore, SNAPSHOT_EVERY};
pub use verify::{ChainCheck, StreamListing, VerifyCursor, VerifyStep};
/// The AWS SDK crates this store is built with, for callers that configure clients.
#[cfg(feature = "dynamo")]
pub use {aws_config, aws_sdk_dynamodb, aws_sdk_kms};
