//! The write side's persistence: an event store that seals every event into its stream's
//! hash chain, over cqrs-es's `PersistedEventRepository` implementations (`sqlite-es`
//! embedded, `postgres-es` self-hosted); the command executor with optimistic concurrency
//! and retries; and the durable idempotency records.

mod backend;
mod cache;
#[cfg(feature = "dynamo")]
mod dynamo;
mod error;
mod executor;
mod feed;
pub mod idempotency;
mod numbers;
mod postgres_writer;
mod repository;
mod snapshots;
mod sqlite_writer;
mod store;
mod verify;

pub use backend::{Backend, SqliteOptions};
#[cfg(feature = "dynamo")]
pub use dynamo::{event_from_item, DynamoTables, KeyAttribute, ScanCursor, TableSchema};
pub use error::{is_transient, StoreError};
pub use executor::{is_recovering, recovering, Committed, ExecuteError, Expected};
pub use feed::{time_position, Appended, StoredEvent};
pub use snapshots::{AsOf, StateAt, SNAPSHOT_EVERY};
pub use store::{EventStore, Loaded};
pub use verify::ChainCheck;
/// The AWS SDK crates this store is built with, for callers that configure clients.
#[cfg(feature = "dynamo")]
pub use {aws_config, aws_sdk_dynamodb};
