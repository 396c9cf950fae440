//! What a backend can do, one trait per capability, implemented by the backends that
//! have it:
//!
//! | capability | SQLite | PostgreSQL | DynamoDB |
//! |---|---|---|---|
//! | [`EventLog`]: append and read streams | yes | yes | yes |
//! | [`IdempotencyRecords`] | yes | yes | yes |
//! | [`NumberSequence`]: account numbers | yes | yes | yes |
//! | [`SnapshotStore`] | yes | yes | no: every load replays |
//! | [`KeyOrderScan`]: streams in key order | yes | yes | no: scans have no order |
//! | [`CommitFeed`]: every event in commit order | yes | no | no: the table's stream |
//! | [`MerkleStorage`]: the global Merkle log | yes | yes | not yet |
//! | [`DataKeys`]: each client's wrapped data key | yes | yes | not yet |
//!
//! What needs a capability asks for its trait, so "needs SQLite" is a compile-time
//! fact: the in-process projector follows a [`CommitFeed`], which only the SQLite store
//! hands out. The event log appends for one aggregate type at a time (cqrs-es's
//! repositories take it as a type parameter), so it is used through the closed set of
//! backends in [`crate::Backend`]; the others are object-safe and used as `dyn`.
//!
//! Following the store in commit order compiles against the SQLite store:
//!
//! ```no_run
//! use event_store::{CommitFeed, SqliteStore};
//! # async fn follow() -> Result<(), event_store::StoreError> {
//! let store = SqliteStore::open(std::path::Path::new("ledger.db")).await?;
//! let head = store.feed().head().await?;
//! # Ok(()) }
//! ```
//!
//! and not against PostgreSQL, which has no feed:
//!
//! ```compile_fail
//! use event_store::{CommitFeed, PostgresStore};
//! # async fn follow() -> Result<(), event_store::StoreError> {
//! let store = PostgresStore::connect("postgres://localhost/ledger").await?;
//! let head = store.feed().head().await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use async_trait::async_trait;
use cqrs_es::persist::SerializedEvent;
use cqrs_es::Aggregate;
use domain::chain::RawEvent;

use crate::error::StoreError;
use crate::feed::StoredEvent;
use crate::idempotency::{Claim, StoredResponse};

/// The events themselves: appending sealed events to a stream, and reading streams back.
pub trait EventLog: Send + Sync {
    /// The backend's name, as the health endpoint reports it.
    fn name(&self) -> &'static str;

    /// Appends `sealed` (one stream's next events, in order) atomically; fails with
    /// [`StoreError::Conflict`] when one of their sequences is taken.
    fn append<A: Aggregate>(
        &self,
        sealed: &[SerializedEvent],
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;

    /// At most `limit` events of one stream with sequences in `from..=to`, in order, as
    /// stored.
    fn read_stream(
        &self,
        aggregate_type: &str,
        id: &str,
        from: u64,
        to: u64,
        limit: u64,
    ) -> impl std::future::Future<Output = Result<Vec<SerializedEvent>, StoreError>> + Send;

    /// As [`EventLog::read_stream`], each payload left as the JSON text it was stored
    /// as: verification hashes that text without parsing it, and a fold decodes it
    /// straight into the event type.
    fn read_stream_raw(
        &self,
        aggregate_type: &str,
        id: &str,
        from: u64,
        to: u64,
        limit: u64,
    ) -> impl std::future::Future<Output = Result<Vec<RawEvent>, StoreError>> + Send;

    /// The stream's last sequence (0 when it has no events).
    fn stream_length(
        &self,
        aggregate_type: &str,
        id: &str,
    ) -> impl std::future::Future<Output = Result<u64, StoreError>> + Send;

    /// Ids of the streams of `aggregate_type` holding none of `terminal_events`.
    fn open_streams(
        &self,
        aggregate_type: &str,
        terminal_events: &[&str],
    ) -> impl std::future::Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Whether the database answers.
    fn ping(&self) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;

    /// Closes the connections (a no-op where there are none).
    fn close(&self) -> impl std::future::Future<Output = ()> + Send;
}

/// Durable idempotency records (see [`crate::idempotency`]).
#[async_trait]
pub trait IdempotencyRecords: Send + Sync {
    async fn claim(
        &self,
        caller: &str,
        key: &str,
        request_hash: &str,
        lease: Duration,
    ) -> Result<Claim, StoreError>;
    async fn renew(&self, caller: &str, key: &str, lease: Duration) -> Result<(), StoreError>;
    async fn complete(
        &self,
        caller: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError>;
    async fn release(&self, caller: &str, key: &str) -> Result<(), StoreError>;
}

/// A sequence that hands each key one number, once: account numbers.
#[async_trait]
pub trait NumberSequence: Send + Sync {
    /// The number of `key`, allocated on first call (the same on every later call).
    async fn allocate(&self, key: &str) -> Result<i64, StoreError>;
}

/// Reading every stream of a type in key order (stream id, then sequence), a page at a
/// time: a whole-store verification in one sequential pass instead of a query per
/// stream. The SQL stores have it (their primary key is that order); DynamoDB's scan
/// has no order.
#[async_trait]
pub trait KeyOrderScan: Send + Sync {
    /// Up to `limit` events of `aggregate_type` after (`after_id`, `after_sequence`) in
    /// key order, payloads as stored text.
    async fn read_key_order(
        &self,
        aggregate_type: &str,
        after_id: &str,
        after_sequence: i64,
        limit: u64,
    ) -> Result<Vec<RawEvent>, StoreError>;
}

/// A stored snapshot: a stream's state after `version`, whose event carried `last_hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    pub version: u64,
    pub last_hash: String,
    /// The latest time among the events folded in.
    pub occurred_at: String,
    /// What the state was written under ([`domain::snapshot::schema`]).
    pub schema: String,
    pub state: String,
}

/// Snapshots of aggregate state, a derived cache (see [`crate::loading`]).
#[async_trait]
pub trait SnapshotStore: Send + Sync {
    /// The latest snapshot of the stream under `schema` at or before `version` whose
    /// events all happened at or before `time`.
    async fn nearest(
        &self,
        aggregate_type: &str,
        id: &str,
        schema: &str,
        version: u64,
        time: &str,
    ) -> Result<Option<SnapshotRow>, StoreError>;

    /// Keeps `row`, and drops the stream's snapshots of other schemas.
    async fn save(
        &self,
        aggregate_type: &str,
        id: &str,
        row: &SnapshotRow,
    ) -> Result<(), StoreError>;
}

/// Every event of the store in commit order, each with its position: what an
/// in-process projector follows from a checkpoint.
#[async_trait]
pub trait CommitFeed: Send + Sync {
    /// Up to `limit` events committed after `position`, in commit order.
    async fn read_after(&self, position: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError>;

    /// The events of one stream after `sequence`, with their positions: how a follower
    /// fills a gap.
    async fn stream_after(
        &self,
        aggregate_type: &str,
        id: &str,
        sequence: i64,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// The position of the last committed event (0 when empty).
    async fn head(&self) -> Result<i64, StoreError>;
}

/// Where the global Merkle log is kept (see [`crate::merkle`]): how many events it holds,
/// the hashes of its perfect subtrees, and the events behind its leaves. Leaf `i` is the
/// `i`-th event in commit order, counted from 0.
#[async_trait]
pub trait MerkleStorage: Send + Sync {
    /// How many events the log holds.
    async fn log_size(&self) -> Result<u64, StoreError>;

    /// The stored nodes of `indices` that exist (see [`domain::merkle`]).
    async fn log_nodes(
        &self,
        indices: &[u64],
    ) -> Result<std::collections::HashMap<u64, domain::merkle::Hash>, StoreError>;

    /// Logs up to `limit` of the events committed after those logged, in commit order;
    /// returns the new size. Refuses with [`StoreError::Corrupt`] a gap in the commit
    /// order (an event deleted), which would shift every later leaf.
    async fn extend_log(&self, limit: u64) -> Result<u64, StoreError>;

    /// The leaf of an event (`None`: no such event). One not yet logged is past every
    /// tree so far: its leaf is the log's size or more.
    async fn leaf_of(
        &self,
        aggregate_type: &str,
        id: &str,
        sequence: u64,
    ) -> Result<Option<u64>, StoreError>;

    /// Up to `limit` events from leaf `from` on, each with its leaf, as stored. A leaf
    /// whose event is gone is missing from the list.
    async fn leaf_events(&self, from: u64, limit: u64) -> Result<Vec<(u64, RawEvent)>, StoreError>;
}

/// A client's data key as the store keeps it (see [`crate::personal`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataKey {
    /// Wrapped under the master key.
    Live(Vec<u8>),
    /// Destroyed when the client was erased; never made again.
    Destroyed,
}

/// Each owner's (client's) data key, wrapped under the master key.
#[async_trait]
pub trait DataKeys: Send + Sync {
    /// `owner`'s key; `None` when none was ever made.
    async fn data_key(&self, owner: &str) -> Result<Option<DataKey>, StoreError>;

    /// Keeps `wrapped` as `owner`'s key unless it has (or had) one, durably, and answers
    /// the key it has: of two writers racing, both get the one that was kept.
    async fn create_data_key(&self, owner: &str, wrapped: &[u8]) -> Result<DataKey, StoreError>;

    /// Destroys `owner`'s key, leaving a tombstone (made even if it had no key) dated
    /// `at`, so that none is made again; and makes sure the database holds no copy of
    /// the wrapped key it could still read (SQLite: the freed bytes are zeroed and the
    /// write-ahead log emptied).
    async fn destroy_data_key(&self, owner: &str, at: &str) -> Result<(), StoreError>;

    /// Clients whose stream records their erasure but whose key is still live: an
    /// erasure interrupted between its event and the key's destruction.
    async fn erased_with_live_keys(&self) -> Result<Vec<String>, StoreError>;

    /// Some live key and its owner, if any: to check the master key opens them.
    async fn any_live_key(&self) -> Result<Option<(String, Vec<u8>)>, StoreError>;
}
