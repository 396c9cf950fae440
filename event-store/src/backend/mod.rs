//! The databases the store runs on, each a type implementing the capabilities it has
//! ([`crate::capabilities`]), and [`Backend`], the closed set the [`crate::EventStore`]
//! is built over.

mod data_keys;
#[cfg(feature = "dynamo")]
pub(crate) mod dynamo;
#[cfg(feature = "dynamo")]
mod dynamo_keys;
#[cfg(feature = "dynamo")]
mod dynamo_merkle;
mod group;
pub mod pool_check;
mod postgres;
mod postgres_merkle;
mod postgres_writer;
pub(crate) mod repository;
pub(crate) mod sql;
mod sqlite;
mod sqlite_merkle;
mod sqlite_records;
mod sqlite_writer;

use cqrs_es::persist::SerializedEvent;
use cqrs_es::Aggregate;
use std::path::Path;

use crate::capabilities::{
    DataKeys, EventLog, IdempotencyRecords, KeyOrderScan, MerkleStorage, NumberSequence,
    SnapshotStore,
};
use crate::error::StoreError;

#[cfg(feature = "dynamo")]
pub use dynamo::DynamoStore;
pub use postgres::PostgresStore;
pub use sqlite::{SqliteFeed, SqliteOptions, SqliteStore};

/// The database behind an [`crate::EventStore`]. An enum, not a trait object, because
/// appends are generic over the aggregate (cqrs-es's repositories take its type); every
/// other capability is reached through its own trait.
pub enum Backend {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
    #[cfg(feature = "dynamo")]
    Dynamo(DynamoStore),
}

/// Runs `$body` with `$store` bound to whichever store the backend holds: the one place
/// the set of backends is spelt out.
macro_rules! dispatch {
    ($backend:expr, $store:ident => $body:expr) => {
        match $backend {
            Backend::Sqlite($store) => $body,
            Backend::Postgres($store) => $body,
            #[cfg(feature = "dynamo")]
            Backend::Dynamo($store) => $body,
        }
    };
}

impl Backend {
    /// Opens (creating if needed) the SQLite store at `path` ([`SqliteStore::open`]).
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        Ok(SqliteStore::open(path).await?.into())
    }

    /// Connects to PostgreSQL at `url` ([`PostgresStore::connect`]).
    pub async fn connect_postgres(url: &str) -> Result<Self, StoreError> {
        Ok(PostgresStore::connect(url).await?.into())
    }

    /// As [`Backend::connect_postgres`], with up to `connections` connections.
    pub async fn connect_postgres_with(url: &str, connections: u32) -> Result<Self, StoreError> {
        Ok(PostgresStore::connect_with(url, connections).await?.into())
    }

    /// The store on DynamoDB, in `tables` ([`DynamoStore::new`]).
    #[cfg(feature = "dynamo")]
    pub fn dynamo(client: aws_sdk_dynamodb::Client, tables: crate::DynamoTables) -> Self {
        DynamoStore::new(client, tables).into()
    }

    /// The embedded store's settings, as it runs; `None` on the other backends.
    pub fn sqlite_options(&self) -> Option<SqliteOptions> {
        match self {
            Backend::Sqlite(store) => Some(store.options()),
            _ => None,
        }
    }

    /// Whether other processes may write the same store (PostgreSQL).
    pub(crate) fn shared(&self) -> bool {
        matches!(self, Backend::Postgres(_))
    }

    pub(crate) fn records(&self) -> &dyn IdempotencyRecords {
        dispatch!(self, store => store)
    }

    pub(crate) fn numbers(&self) -> &dyn NumberSequence {
        dispatch!(self, store => store)
    }

    /// Where snapshots are kept; `None` on a backend without them.
    pub(crate) fn snapshots(&self) -> Option<&dyn SnapshotStore> {
        match self {
            Backend::Sqlite(store) => Some(store),
            Backend::Postgres(store) => Some(store),
            #[cfg(feature = "dynamo")]
            Backend::Dynamo(_) => None,
        }
    }

    /// The global Merkle log; `None` on a backend that does not keep one.
    pub fn merkle(&self) -> Option<&dyn MerkleStorage> {
        match self {
            Backend::Sqlite(store) => Some(store),
            Backend::Postgres(store) => Some(store),
            #[cfg(feature = "dynamo")]
            Backend::Dynamo(store) => Some(store),
        }
    }

    /// Clients' data keys; `None` on a backend that does not keep them.
    pub fn data_keys(&self) -> Option<std::sync::Arc<dyn DataKeys>> {
        match self {
            Backend::Sqlite(store) => Some(std::sync::Arc::new(store.keys())),
            Backend::Postgres(store) => Some(std::sync::Arc::new(store.keys())),
            #[cfg(feature = "dynamo")]
            Backend::Dynamo(store) => Some(std::sync::Arc::new(store.clone())),
        }
    }

    /// Reading streams in key order; `None` on a backend without it.
    pub(crate) fn key_order_scan(&self) -> Option<&dyn KeyOrderScan> {
        match self {
            Backend::Sqlite(store) => Some(store),
            Backend::Postgres(store) => Some(store),
            #[cfg(feature = "dynamo")]
            Backend::Dynamo(_) => None,
        }
    }

    /// Whether one query reads a stream whole whatever the bounds asked (DynamoDB):
    /// reading such a stream in parts would read it whole once per part.
    pub(crate) fn reads_streams_whole(&self) -> bool {
        #[cfg(feature = "dynamo")]
        if let Backend::Dynamo(_) = self {
            return true;
        }
        false
    }
}

impl From<SqliteStore> for Backend {
    fn from(store: SqliteStore) -> Self {
        Backend::Sqlite(store)
    }
}

impl From<PostgresStore> for Backend {
    fn from(store: PostgresStore) -> Self {
        Backend::Postgres(store)
    }
}

#[cfg(feature = "dynamo")]
impl From<DynamoStore> for Backend {
    fn from(store: DynamoStore) -> Self {
        Backend::Dynamo(store)
    }
}

impl EventLog for Backend {
    fn name(&self) -> &'static str {
        dispatch!(self, store => store.name())
    }

    async fn append<A: Aggregate>(&self, sealed: &[SerializedEvent]) -> Result<(), StoreError> {
        dispatch!(self, store => store.append::<A>(sealed).await)
    }

    async fn read_stream(
        &self,
        aggregate_type: &str,
        id: &str,
        from: u64,
        to: u64,
        limit: u64,
    ) -> Result<Vec<SerializedEvent>, StoreError> {
        dispatch!(self, store => store.read_stream(aggregate_type, id, from, to, limit).await)
    }

    async fn read_stream_raw(
        &self,
        aggregate_type: &str,
        id: &str,
        from: u64,
        to: u64,
        limit: u64,
    ) -> Result<Vec<domain::chain::RawEvent>, StoreError> {
        dispatch!(self, store => store.read_stream_raw(aggregate_type, id, from, to, limit).await)
    }

    async fn stream_length(&self, aggregate_type: &str, id: &str) -> Result<u64, StoreError> {
        dispatch!(self, store => store.stream_length(aggregate_type, id).await)
    }

    async fn open_streams(
        &self,
        aggregate_type: &str,
        terminal_events: &[&str],
    ) -> Result<Vec<String>, StoreError> {
        dispatch!(self, store => store.open_streams(aggregate_type, terminal_events).await)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, store => store.ping().await)
    }

    async fn close(&self) {
        dispatch!(self, store => store.close().await)
    }
}
