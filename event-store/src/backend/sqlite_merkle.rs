//! The global Merkle log in the SQLite file: leaf `i` is the event of rowid `i + 1`
//! (rowids follow commits, there being one writer, and never skip one since events are
//! never deleted). Extended after the events commit, from the events themselves, by
//! whoever calls [`MerkleStorage::extend_log`]; its writes take the file's write gate
//! like every other, without an fsync of their own: the log is derived, and rebuilt the
//! same from the events if a power cut loses its last commits.

use std::collections::HashMap;

use domain::chain::RawEvent;
use domain::merkle::{Frontier, Hash};

use super::sql::{raw_event_lenient, PositionedRow, RawRow};
use super::sqlite::SqliteStore;
use super::sqlite_writer::values;
use crate::capabilities::MerkleStorage;
use crate::error::StoreError;
use crate::merkle::{leaf_hashes, nodes_from_rows};

/// Nodes read or written per statement (SQLite binds at most 32,766 values).
const NODES_PER_STATEMENT: usize = 10_000;

const RAW_COLUMNS: &str = "aggregate_type, aggregate_id, sequence, event_type, event_version, \
     payload, metadata";

impl SqliteStore {
    async fn nodes_on(
        connection: &mut sqlx::SqliteConnection,
        indices: &[u64],
    ) -> Result<HashMap<u64, Hash>, StoreError> {
        let mut nodes = HashMap::with_capacity(indices.len());
        for part in indices.chunks(NODES_PER_STATEMENT) {
            let sql = format!(
                "SELECT idx, hash FROM merkle_nodes WHERE idx IN ({})",
                vec!["?"; part.len()].join(", ")
            );
            let mut query = sqlx::query_as(&sql);
            for &index in part {
                query = query.bind(index as i64);
            }
            nodes.extend(nodes_from_rows(query.fetch_all(&mut *connection).await?)?);
        }
        Ok(nodes)
    }

    /// Events after rowid `after`, up to `limit`, each with its rowid.
    async fn events_after(
        &self,
        after: u64,
        limit: u64,
    ) -> Result<Vec<(u64, RawEvent)>, StoreError> {
        let rows: Vec<PositionedRow> = sqlx::query_as(&format!(
            "SELECT rowid, {RAW_COLUMNS} FROM events WHERE rowid > $1 ORDER BY rowid LIMIT $2"
        ))
        .bind(after as i64)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(rowid, t, i, s, e, v, p, m)| {
                Ok((
                    rowid as u64,
                    raw_event_lenient((t, i, s, e, v, p, m) as RawRow),
                ))
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl MerkleStorage for SqliteStore {
    async fn log_size(&self) -> Result<u64, StoreError> {
        let (size,): (i64,) = sqlx::query_as("SELECT size FROM merkle_log WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(size as u64)
    }

    async fn log_nodes(&self, indices: &[u64]) -> Result<HashMap<u64, Hash>, StoreError> {
        let mut connection = self.pool.acquire().await?;
        Self::nodes_on(&mut connection, indices).await
    }

    async fn extend_log(&self, limit: u64) -> Result<u64, StoreError> {
        let size = self.log_size().await?;
        let events = self.events_after(size, limit).await?;
        if events.is_empty() {
            return Ok(size);
        }
        let mut made = Vec::with_capacity(2 * events.len());
        let mut frontier = {
            let mut connection = self.pool.acquire().await?;
            let indices = Frontier::nodes(size);
            let nodes = Self::nodes_on(&mut connection, &indices).await?;
            let hashes: Vec<Hash> = indices
                .iter()
                .map_while(|i| nodes.get(i).copied())
                .collect();
            Frontier::resume(size, &hashes).map_err(|m| StoreError::Corrupt(m.to_string()))?
        };
        let (rowids, events): (Vec<u64>, Vec<RawEvent>) = events.into_iter().unzip();
        let (_, hashes) = leaf_hashes(events).await?;
        for (rowid, hash) in rowids.into_iter().zip(hashes) {
            if rowid != frontier.size() + 1 {
                return Err(StoreError::Corrupt(format!(
                    "the events' commit order skips from position {} to {rowid}: an event was deleted",
                    frontier.size()
                )));
            }
            made.extend(frontier.push(hash));
        }
        let _exclusive = self.exclusive().await;
        let mut connection = self.records.acquire().await?;
        let mut transaction = sqlx::Acquire::begin(&mut *connection).await?;
        // Another caller may have logged these events meanwhile: then this one stops.
        let moved = sqlx::query("UPDATE merkle_log SET size = $1 WHERE id = 1 AND size = $2")
            .bind(frontier.size() as i64)
            .bind(size as i64)
            .execute(&mut *transaction)
            .await?;
        if moved.rows_affected() == 0 {
            transaction.rollback().await?;
            return self.log_size().await;
        }
        for part in made.chunks(NODES_PER_STATEMENT / 2) {
            // A node already there is one a cut-short log left behind: replaced.
            let sql = format!(
                "INSERT INTO merkle_nodes (idx, hash) VALUES {} \
                 ON CONFLICT (idx) DO UPDATE SET hash = excluded.hash",
                values(part.len(), 2)
            );
            let mut query = sqlx::query(&sql);
            for (index, hash) in part {
                query = query.bind(*index as i64).bind(hash.as_slice());
            }
            query.execute(&mut *transaction).await?;
        }
        transaction.commit().await?;
        Ok(frontier.size())
    }

    async fn leaf_of(
        &self,
        aggregate_type: &str,
        id: &str,
        sequence: u64,
    ) -> Result<Option<u64>, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT rowid FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
        )
        .bind(aggregate_type)
        .bind(id)
        .bind(sequence as i64)
        .fetch_optional(&self.pool)
        .await?;
        // A rowid below 1 was set by hand: no place in commit order.
        row.map(|(rowid,)| {
            u64::try_from(rowid)
                .ok()
                .and_then(|rowid| rowid.checked_sub(1))
                .ok_or_else(|| StoreError::Corrupt(format!("an event has rowid {rowid}")))
        })
        .transpose()
    }

    async fn leaf_events(&self, from: u64, limit: u64) -> Result<Vec<(u64, RawEvent)>, StoreError> {
        let events = self.events_after(from, limit).await?;
        Ok(events
            .into_iter()
            .map(|(rowid, event)| (rowid - 1, event))
            .collect())
    }
}
