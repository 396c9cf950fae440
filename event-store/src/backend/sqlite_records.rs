//! Idempotency records on SQLite, written in groups. A keyed command writes the file
//! three times: its claim, its events (a group commit of their own) and its stored
//! answer. SQLite takes one write at a time, so each claim and answer in a transaction
//! of its own held the file for most of the time a keyed command took (docs/
//! performance.md). They are therefore handed to one writer task, which takes every
//! record write waiting at that moment and makes them in one transaction, under the
//! file's write gate.
//!
//! A write that fails takes the whole transaction back, and each write of the group is
//! then made alone, so only the failing one fails. A group commits or not as a whole;
//! its writes are answered after the commit. A caller that stops waiting does not stop
//! its write: a claim made for a caller that hung up is a claim whose holder is gone,
//! which the next retry takes over when its lease runs out.

use sqlx::{Acquire, SqlitePool};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

use super::group::gather;
use super::sql::RecordWrite;
use super::sqlite::SqliteStore;
use super::sqlite_writer::WriteGate;
use crate::error::StoreError;
use crate::idempotency::Claim;

/// How many record writes one transaction takes at most.
const MAX_GROUP: usize = 256;

type Outcome = Result<Option<Claim>, StoreError>;

struct Pending {
    write: RecordWrite,
    done: oneshot::Sender<Outcome>,
}

/// The queue to the record writer.
pub(crate) struct RecordWriter {
    queue: mpsc::Sender<Pending>,
}

impl RecordWriter {
    /// Starts the writer on the current runtime, writing through `pool` under `gate`.
    pub(crate) fn start(pool: SqlitePool, gate: Arc<WriteGate>) -> Self {
        let (queue, pending) = mpsc::channel(4 * MAX_GROUP);
        tokio::spawn(writer(pool, pending, gate));
        RecordWriter { queue }
    }

    /// Makes `write` in the next group, once it has committed: `Some` claim for a claim.
    pub(crate) async fn write(&self, write: RecordWrite) -> Outcome {
        let stopped =
            || StoreError::Unavailable("the idempotency record writer has stopped".into());
        let (done, outcome) = oneshot::channel();
        self.queue
            .send(Pending { write, done })
            .await
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

async fn writer(pool: SqlitePool, mut queue: mpsc::Receiver<Pending>, gate: Arc<WriteGate>) {
    while let Some(first) = queue.recv().await {
        // Writes that arrive while the file is busy join this group.
        let exclusive = gate.lock().await;
        let group = gather(first, &mut queue, MAX_GROUP);
        let outcomes = match together(&pool, &group).await {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            Err(_) => alone(&pool, &group).await,
        };
        drop(exclusive);
        for (pending, outcome) in group.into_iter().zip(outcomes) {
            let _ = pending.done.send(outcome);
        }
    }
}

/// Makes every write of `group` in one transaction; nothing if one fails.
async fn together(pool: &SqlitePool, group: &[Pending]) -> Result<Vec<Option<Claim>>, StoreError> {
    let mut connection = pool.acquire().await?;
    let mut transaction = connection.begin().await?;
    let mut outcomes = Vec::with_capacity(group.len());
    for pending in group {
        outcomes.push(SqliteStore::write_record(&mut transaction, &pending.write).await?);
    }
    transaction.commit().await?;
    Ok(outcomes)
}

/// Makes each write of `group` in a transaction of its own.
async fn alone(pool: &SqlitePool, group: &[Pending]) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(group.len());
    for pending in group {
        let outcome = async {
            let mut connection = pool.acquire().await?;
            let mut transaction = connection.begin().await?;
            let outcome = SqliteStore::write_record(&mut transaction, &pending.write).await?;
            transaction.commit().await?;
            Ok(outcome)
        };
        outcomes.push(outcome.await);
    }
    outcomes
}
