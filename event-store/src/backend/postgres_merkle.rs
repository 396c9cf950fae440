//! The global Merkle log in PostgreSQL. Without a commit order of its own, the log
//! gives events their places as it takes them in: whoever extends it locks the log's
//! row, takes events not yet placed (a stream's in sequence order: a later one commits
//! only after the one before), writes each one's place into `events.position` and the
//! nodes they complete, and commits all at once. Several processes may extend it; the
//! row lock puts them one after another.

use std::collections::HashMap;

use domain::chain::RawEvent;
use domain::merkle::{Frontier, Hash};

use super::postgres::PostgresStore;
use super::sql::{raw_event_lenient, PositionedRow, RawRow};
use crate::capabilities::MerkleStorage;
use crate::error::StoreError;
use crate::merkle::{leaf_hashes, nodes_from_rows};

const RAW_COLUMNS: &str = "aggregate_type, aggregate_id, sequence, event_type, event_version, \
     CAST(payload AS TEXT), CAST(metadata AS TEXT)";

impl PostgresStore {
    async fn nodes_on(
        connection: &mut sqlx::PgConnection,
        indices: &[u64],
    ) -> Result<HashMap<u64, Hash>, StoreError> {
        let indices: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
        let rows: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT idx, hash FROM merkle_nodes WHERE idx = ANY($1)")
                .bind(&indices)
                .fetch_all(connection)
                .await?;
        nodes_from_rows(rows)
    }
}

#[async_trait::async_trait]
impl MerkleStorage for PostgresStore {
    async fn log_size(&self) -> Result<u64, StoreError> {
        let (size,): (i64,) = sqlx::query_as("SELECT size FROM merkle_log WHERE id = 1")
            .fetch_one(self.pool())
            .await?;
        Ok(size as u64)
    }

    async fn log_nodes(&self, indices: &[u64]) -> Result<HashMap<u64, Hash>, StoreError> {
        let mut connection = self.pool().acquire().await?;
        Self::nodes_on(&mut connection, indices).await
    }

    async fn extend_log(&self, limit: u64) -> Result<u64, StoreError> {
        let mut transaction = self.pool().begin().await?;
        let (size,): (i64,) = sqlx::query_as("SELECT size FROM merkle_log WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *transaction)
            .await?;
        let size = size as u64;
        let rows: Vec<RawRow> = sqlx::query_as(&format!(
            "SELECT {RAW_COLUMNS} FROM events WHERE position IS NULL \
             ORDER BY aggregate_type, aggregate_id, sequence LIMIT $1"
        ))
        .bind(limit.min(i64::MAX as u64) as i64)
        .fetch_all(&mut *transaction)
        .await?;
        if rows.is_empty() {
            return Ok(size);
        }
        let indices = Frontier::nodes(size);
        let nodes = Self::nodes_on(&mut transaction, &indices).await?;
        let hashes: Vec<Hash> = indices
            .iter()
            .map_while(|i| nodes.get(i).copied())
            .collect();
        let mut frontier =
            Frontier::resume(size, &hashes).map_err(|m| StoreError::Corrupt(m.to_string()))?;
        let (mut types, mut ids, mut sequences, mut positions) = (vec![], vec![], vec![], vec![]);
        let (mut node_indices, mut node_hashes) = (vec![], vec![]);
        let events: Vec<RawEvent> = rows.into_iter().map(raw_event_lenient).collect();
        let (events, hashes) = leaf_hashes(events).await?;
        for (event, hash) in events.into_iter().zip(hashes) {
            positions.push(frontier.size() as i64);
            for (index, hash) in frontier.push(hash) {
                node_indices.push(index as i64);
                node_hashes.push(hash.to_vec());
            }
            types.push(event.aggregate_type);
            ids.push(event.aggregate_id);
            sequences.push(event.sequence as i64);
        }
        sqlx::query(
            "UPDATE events SET position = placed.position \
             FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) \
               AS placed(aggregate_type, aggregate_id, sequence, position) \
             WHERE events.aggregate_type = placed.aggregate_type \
               AND events.aggregate_id = placed.aggregate_id \
               AND events.sequence = placed.sequence",
        )
        .bind(&types)
        .bind(&ids)
        .bind(&sequences)
        .bind(&positions)
        .execute(&mut *transaction)
        .await?;
        // A node already there is one a cut-short log left behind: replaced.
        sqlx::query(
            "INSERT INTO merkle_nodes (idx, hash) SELECT * FROM unnest($1::bigint[], $2::bytea[]) \
             ON CONFLICT (idx) DO UPDATE SET hash = excluded.hash",
        )
        .bind(&node_indices)
        .bind(&node_hashes)
        .execute(&mut *transaction)
        .await?;
        sqlx::query("UPDATE merkle_log SET size = $1 WHERE id = 1")
            .bind(frontier.size() as i64)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(frontier.size())
    }

    async fn leaf_of(
        &self,
        aggregate_type: &str,
        id: &str,
        sequence: u64,
    ) -> Result<Option<u64>, StoreError> {
        let row: Option<(Option<i64>,)> = sqlx::query_as(
            "SELECT position FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
        )
        .bind(aggregate_type)
        .bind(id)
        .bind(sequence as i64)
        .fetch_optional(self.pool())
        .await?;
        // An event not yet placed gets the next place free: it is past every tree so far.
        match row {
            None => Ok(None),
            Some((Some(position),)) => Ok(Some(position as u64)),
            Some((None,)) => Ok(Some(self.log_size().await?)),
        }
    }

    async fn leaf_events(&self, from: u64, limit: u64) -> Result<Vec<(u64, RawEvent)>, StoreError> {
        let rows: Vec<PositionedRow> = sqlx::query_as(&format!(
            "SELECT position, {RAW_COLUMNS} FROM events WHERE position >= $1 \
                 ORDER BY position LIMIT $2"
        ))
        .bind(from as i64)
        .bind(limit.min(i64::MAX as u64) as i64)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(position, t, i, s, e, v, p, m)| {
                Ok((position as u64, raw_event_lenient((t, i, s, e, v, p, m))))
            })
            .collect()
    }
}
