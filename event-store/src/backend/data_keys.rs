//! Clients' data keys on the two SQL stores ([`DataKeys`]): a handle of its own, so that
//! the vault and the feed hold the keys without holding the store.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{PgPool, SqlitePool};

use super::sqlite_writer::WriteGate;
use crate::capabilities::{DataKey, DataKeys};
use crate::error::StoreError;

const READ: &str = "SELECT wrapped FROM data_keys WHERE owner = $1";
use super::sql::{RecordWrite, CREATE_DATA_KEY as CREATE};
use super::sqlite_records::RecordWriter;
/// The tombstone keeps the first destruction's date.
const DESTROY: &str = "INSERT INTO data_keys (owner, wrapped, destroyed_at) VALUES ($1, NULL, $2) \
     ON CONFLICT (owner) DO UPDATE SET wrapped = NULL, \
     destroyed_at = COALESCE(data_keys.destroyed_at, excluded.destroyed_at)";
const ERASED_WITH_LIVE_KEYS: &str = "SELECT e.aggregate_id FROM events e \
     JOIN data_keys k ON k.owner = e.aggregate_id \
     WHERE e.event_type = 'ClientErased' AND e.aggregate_type = 'client' AND k.wrapped IS NOT NULL";

const ANY_LIVE_KEY: &str = "SELECT owner, wrapped FROM data_keys WHERE wrapped IS NOT NULL LIMIT 1";

fn key_of(row: Option<(Option<Vec<u8>>,)>) -> Option<DataKey> {
    row.map(|(wrapped,)| wrapped.map_or(DataKey::Destroyed, DataKey::Live))
}

/// The keys in the SQLite store's file, written under its write gate.
#[derive(Clone)]
pub(crate) struct SqliteKeys {
    pub(crate) pool: SqlitePool,
    /// The same file without an fsync per commit (see `create_data_key`).
    pub(crate) records: SqlitePool,
    /// With group commit, new keys join the idempotency records' groups.
    pub(crate) writer: Option<RecordWriter>,
    pub(crate) writes: Arc<WriteGate>,
}

#[async_trait]
impl DataKeys for SqliteKeys {
    async fn data_key(&self, owner: &str) -> Result<Option<DataKey>, StoreError> {
        let row = sqlx::query_as(READ)
            .bind(owner)
            .fetch_optional(&self.pool)
            .await?;
        Ok(key_of(row))
    }

    async fn create_data_key(&self, owner: &str, wrapped: &[u8]) -> Result<DataKey, StoreError> {
        // No fsync of its own, and in a group with other new keys and idempotency
        // records (a durable transaction per new client cut onboardings to a fifth): in
        // WAL mode commits reach the log in order, so the durable commit of the first
        // event sealed under the key makes the key durable before it.
        match &self.writer {
            Some(writer) => {
                writer
                    .write(RecordWrite::DataKey {
                        owner: owner.to_string(),
                        wrapped: wrapped.to_vec(),
                    })
                    .await?;
            }
            None => {
                let _exclusive = self.writes.lock().await;
                sqlx::query(CREATE)
                    .bind(owner)
                    .bind(wrapped)
                    .execute(&self.records)
                    .await?;
            }
        }
        self.data_key(owner)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("the data key of {owner} vanished")))
    }

    async fn destroy_data_key(&self, owner: &str, at: &str) -> Result<(), StoreError> {
        let _exclusive = self.writes.lock().await;
        let mut connection = self.pool.acquire().await?;
        // Zeroes the bytes the row leaves behind in its page, instead of leaving them
        // in free space for a reader of the raw file.
        sqlx::query("PRAGMA secure_delete = ON")
            .execute(&mut *connection)
            .await?;
        sqlx::query(DESTROY)
            .bind(owner)
            .bind(at)
            .execute(&mut *connection)
            .await?;
        // Earlier versions of the page, key and all, are still in the write-ahead log:
        // copied into the file (whose page now has the key zeroed) and the log emptied.
        // Busy (a reader holds an old snapshot) leaves the log for the next erasure or
        // start: the key's row is gone from the database either way.
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&mut *connection)
            .await?;
        if busy != 0 {
            tracing::warn!(owner, "the write-ahead log could not be emptied after a key was destroyed: readers held it");
        }
        Ok(())
    }

    async fn erased_with_live_keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(ERASED_WITH_LIVE_KEYS)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn any_live_key(&self) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        Ok(sqlx::query_as(ANY_LIVE_KEY)
            .fetch_optional(&self.pool)
            .await?)
    }
}

/// The keys in PostgreSQL.
#[derive(Clone)]
pub(crate) struct PostgresKeys {
    pub(crate) pool: PgPool,
}

#[async_trait]
impl DataKeys for PostgresKeys {
    async fn data_key(&self, owner: &str) -> Result<Option<DataKey>, StoreError> {
        let row = sqlx::query_as(READ)
            .bind(owner)
            .fetch_optional(&self.pool)
            .await?;
        Ok(key_of(row))
    }

    async fn create_data_key(&self, owner: &str, wrapped: &[u8]) -> Result<DataKey, StoreError> {
        sqlx::query(CREATE)
            .bind(owner)
            .bind(wrapped)
            .execute(&self.pool)
            .await?;
        self.data_key(owner)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("the data key of {owner} vanished")))
    }

    /// The row's old version stays in the table's free space until a vacuum reuses it,
    /// and in the write-ahead log and backups taken before: docs/audit.md says what
    /// that leaves to a holder of the master key.
    async fn destroy_data_key(&self, owner: &str, at: &str) -> Result<(), StoreError> {
        sqlx::query(DESTROY)
            .bind(owner)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn erased_with_live_keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(ERASED_WITH_LIVE_KEYS)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn any_live_key(&self) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        Ok(sqlx::query_as(ANY_LIVE_KEY)
            .fetch_optional(&self.pool)
            .await?)
    }
}
