//! The embedded store: one SQLite file, written by this process alone. It has every
//! capability, and is the only one with a commit-order feed (rowids follow commits,
//! since there is one writer).

use cqrs_es::persist::SerializedEvent;
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::sql::{self, PositionedRow, RecordWrite};
use super::sqlite_records::RecordWriter;
use super::sqlite_writer::{SqliteRepository, WriteGate};
use crate::capabilities::CommitFeed;
use crate::error::StoreError;
use crate::feed::StoredEvent;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How the embedded store runs; both on by default. Turning them off is for measuring
/// what they are worth (docs/performance.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Batch concurrent appends into one durable commit, and concurrent idempotency
    /// record writes into one transaction.
    pub group_commit: bool,
    /// Keep aggregates in memory between commands.
    pub aggregate_cache: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            group_commit: true,
            aggregate_cache: true,
        }
    }
}

/// The SQLite store: sqlite-es for reads, our group-commit writer for appends, and a
/// second pool on the same file for records that need no fsync of their own.
pub struct SqliteStore {
    repository: SqliteRepository,
    pub(super) pool: SqlitePool,
    /// The same file for idempotency records and snapshots, without an fsync per
    /// commit: see [`SqliteStore::open_with`].
    pub(super) records: SqlitePool,
    /// Idempotency records, written in groups through `records` (with group commit).
    record_writer: Option<RecordWriter>,
    options: SqliteOptions,
    /// Held by every write to the file: see [`SqliteStore::exclusive`].
    writes: Arc<WriteGate>,
}

impl SqliteStore {
    /// Opens (creating if needed) the SQLite store at `path`. WAL with
    /// `synchronous=FULL`: a commit that returned is on disk, even after power loss.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    pub async fn open_with(path: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Statement journals (one per statement of a group commit's transaction)
            // and sorts in memory, not in files under /var/tmp: docs/performance.md.
            .pragma("temp_store", "memory")
            // What a change frees inside a page is zeroed (at no extra I/O), so a wrapped
            // data key moved within its table leaves no copy behind; destroying one
            // zeroes it whatever the I/O (`data_keys`).
            .pragma("secure_delete", "fast");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(connect.clone())
            .await?;
        MIGRATIONS.run(&pool).await?;
        // Idempotency records need no fsync of their own. In WAL mode commits reach the
        // log in order, and a durable commit makes every earlier one durable: a claim is
        // on disk before the events it guards are acknowledged. A claim or a stored
        // answer lost to a power cut only leaves a retry to run as a recovery, which finds
        // the events by their key. Without the fsyncs, a keyed command costs one durable
        // commit (the events', shared by group commit) instead of three. Snapshots are a
        // cache: losing one costs only a longer replay.
        let records = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(connect.synchronous(SqliteSynchronous::Normal))
            .await?;
        let writes = Arc::new(WriteGate::default());
        Ok(SqliteStore {
            repository: SqliteRepository::new(pool.clone(), options.group_commit, writes.clone()),
            pool,
            record_writer: options
                .group_commit
                .then(|| RecordWriter::start(records.clone(), writes.clone())),
            records,
            options,
            writes,
        })
    }

    /// The settings it runs with.
    pub fn options(&self) -> SqliteOptions {
        self.options
    }

    /// The store's events in commit order, for an in-process follower.
    pub fn feed(&self) -> SqliteFeed {
        SqliteFeed {
            pool: self.pool.clone(),
            vault: None,
        }
    }

    /// Clients' data keys in this file.
    pub(super) fn keys(&self) -> super::data_keys::SqliteKeys {
        super::data_keys::SqliteKeys {
            pool: self.pool.clone(),
            records: self.records.clone(),
            writer: self.record_writer.clone(),
            writes: self.writes.clone(),
        }
    }

    /// The durable pool, for tools and tests that read or alter the file directly.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

impl SqliteStore {
    /// Taken before every write to the file (a group of appends, a group of idempotency
    /// record writes, a snapshot, an account number); the two group writers lock the
    /// gate itself. SQLite has one writer at a time; a second
    /// connection that tries to write meanwhile is refused BUSY and its busy handler
    /// sleeps 1, 2, 5, 10 … ms before trying again: a keyed command (a claim, the events,
    /// the stored answer) slept several times per request. Queued here, each write
    /// starts the moment the one before it commits.
    pub(super) async fn exclusive(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        Some(self.writes.lock().await)
    }

    /// An idempotency record write, made by the record writer in a group (see
    /// [`super::sqlite_records`]), or, without group commit, in a transaction of its own.
    async fn record(
        &self,
        write: RecordWrite,
    ) -> Result<Option<crate::idempotency::Claim>, StoreError> {
        if let Some(writer) = &self.record_writer {
            return writer.write(write).await;
        }
        let _exclusive = self.exclusive().await;
        let mut connection = self.records.acquire().await?;
        let mut transaction = sqlx::Acquire::begin(&mut connection).await?;
        let outcome = Self::write_record(&mut transaction, &write).await?;
        transaction.commit().await?;
        Ok(outcome)
    }
}

type EventRow = (String, String, i64, String, String, String, String);

impl SqliteStore {
    /// An event as SQLite stores it: payload and metadata as JSON text.
    fn event_from_row((t, i, s, e, v, p, m): EventRow) -> Result<SerializedEvent, StoreError> {
        Ok(SerializedEvent::new(
            i,
            s as usize,
            t,
            e,
            v,
            serde_json::from_str::<Value>(&p)?,
            serde_json::from_str::<Value>(&m)?,
        ))
    }
}

sql::sql_capabilities!(
    SqliteStore,
    "sqlite",
    events: pool,
    records: records,
    connection: sqlx::SqliteConnection
);

/// The SQLite store's events in commit order: the rowid is the position.
#[derive(Clone)]
pub struct SqliteFeed {
    pool: SqlitePool,
    /// Opens the personal data of the events it hands out, when set.
    vault: Option<Arc<crate::personal::Vault>>,
}

impl SqliteFeed {
    /// This feed, handing out events with their personal data opened by `vault` (the
    /// store's: [`crate::EventStore::vault`]); as stored when `None`.
    pub fn opened(mut self, vault: Option<Arc<crate::personal::Vault>>) -> Self {
        self.vault = vault;
        self
    }

    async fn open(&self, rows: Vec<PositionedRow>) -> Result<Vec<StoredEvent>, StoreError> {
        let mut events = rows
            .into_iter()
            .map(positioned)
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(vault) = &self.vault {
            for stored in &mut events {
                match vault.open(&mut stored.event).await {
                    Ok(()) => {}
                    // Handed on as stored: the projector sets that one event aside
                    // (it does not decode) instead of the whole feed stopping at it.
                    Err(error @ StoreError::Corrupt(_)) => {
                        tracing::error!(%error, position = stored.position, "an event's personal data does not open");
                    }
                    Err(other) => return Err(other),
                }
            }
        }
        Ok(events)
    }
}

fn positioned((position, t, i, s, e, v, p, m): PositionedRow) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        position,
        event: SqliteStore::event_from_row((t, i, s, e, v, p, m))?,
    })
}

const COLUMNS: &str =
    "rowid, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata";

#[async_trait::async_trait]
impl CommitFeed for SqliteFeed {
    async fn read_after(&self, position: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError> {
        let rows: Vec<PositionedRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM events WHERE rowid > $1 ORDER BY rowid LIMIT $2"
        ))
        .bind(position)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        self.open(rows).await
    }

    async fn stream_after(
        &self,
        aggregate_type: &str,
        id: &str,
        sequence: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows: Vec<PositionedRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
             AND sequence > $3 ORDER BY sequence"
        ))
        .bind(aggregate_type)
        .bind(id)
        .bind(sequence)
        .fetch_all(&self.pool)
        .await?;
        self.open(rows).await
    }

    async fn head(&self) -> Result<i64, StoreError> {
        let (head,): (Option<i64>,) = sqlx::query_as("SELECT MAX(rowid) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(head.unwrap_or(0))
    }
}
