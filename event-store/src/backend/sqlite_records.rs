//! Idempotency records on SQLite, written in groups. A keyed command writes the file
//! three times: its claim, its events (a group commit of their own) and its stored
//! answer. SQLite takes one write at a time, so each claim and answer in a transaction
//! of its own held the file for most of the time a keyed command took
//! (docs/performance.md). They are therefore handed to one writer task, which takes every
//! record write waiting at that moment and makes them in one transaction, under the
//! file's write gate.
//!
//! A write refused on its own account (a constraint) takes the transaction back, and
//! the others are made again without it, so only it fails. A group commits or not as a
//! whole; its writes are answered after the commit. A caller that stops waiting does
//! not stop its write: a claim made for a caller that hung up is a claim whose holder
//! is gone, which the next retry takes over when its lease runs out.

use sqlx::{Acquire, SqlitePool};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

use super::group::gather;
use super::sql::RecordWrite;
use super::sqlite::SqliteStore;
use super::sqlite_writer::{close_after_failure, WriteGate};
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
        let outcomes = write_group(&pool, &group).await;
        drop(exclusive);
        for (pending, outcome) in group.into_iter().zip(outcomes) {
            let _ = pending.done.send(outcome);
        }
    }
}

/// What stopped a group's transaction.
enum Stop {
    /// The write at this place in the transaction was refused on its own account (a
    /// constraint, a stored record that cannot be read).
    Write(usize, StoreError),
    /// The transaction failed as a whole (a full disk, an I/O error, its commit).
    Transaction(StoreError),
}

/// Makes the writes of `group`, one outcome each. A write refused on its own account is
/// answered with its refusal and the others are made again together: k refused writes
/// cost k + 1 transactions. A failure of the transaction fails every write in it.
async fn write_group(pool: &SqlitePool, group: &[Pending]) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = group.iter().map(|_| None).collect();
    loop {
        let left: Vec<usize> = (0..group.len())
            .filter(|&at| outcomes[at].is_none())
            .collect();
        if left.is_empty() {
            break;
        }
        match together(pool, group, &left).await {
            Ok(made) => {
                for (at, outcome) in left.into_iter().zip(made) {
                    outcomes[at] = Some(Ok(outcome));
                }
            }
            Err(Stop::Write(place, error)) => outcomes[left[place]] = Some(Err(error)),
            Err(Stop::Transaction(error)) => {
                tracing::warn!(%error, writes = left.len(), "idempotency record writes failed");
                let message = error.to_string();
                for at in left {
                    outcomes[at] = Some(Err(StoreError::Unavailable(message.clone())));
                }
            }
        }
    }
    outcomes
        .into_iter()
        .map(|outcome| outcome.unwrap_or_else(|| Err(StoreError::Unavailable("not made".into()))))
        .collect()
}

/// Makes the writes of `group` at `left` in one transaction; nothing if one fails.
async fn together(
    pool: &SqlitePool,
    group: &[Pending],
    left: &[usize],
) -> Result<Vec<Option<Claim>>, Stop> {
    let failed = |error: sqlx::Error| Stop::Transaction(error.into());
    let mut connection = pool.acquire().await.map_err(failed)?;
    let made = in_transaction(&mut connection, group, left).await;
    if made.is_err() {
        close_after_failure(&mut connection);
    }
    made
}

async fn in_transaction(
    connection: &mut sqlx::SqliteConnection,
    group: &[Pending],
    left: &[usize],
) -> Result<Vec<Option<Claim>>, Stop> {
    let failed = |error: sqlx::Error| Stop::Transaction(error.into());
    let mut transaction = connection.begin().await.map_err(failed)?;
    let mut made = Vec::with_capacity(left.len());
    for (place, &at) in left.iter().enumerate() {
        match SqliteStore::write_record(&mut transaction, &group[at].write).await {
            Ok(outcome) => made.push(outcome),
            Err(error) => {
                // Now, before the gate is let go: the next writer must find the file
                // free. SQLite may have rolled back already (a full disk); that is fine.
                let _ = transaction.rollback().await;
                return Err(match error {
                    StoreError::Database(error) if !refused(&error) => {
                        Stop::Transaction(error.into())
                    }
                    error => Stop::Write(place, error),
                });
            }
        }
    }
    transaction.commit().await.map_err(failed)?;
    Ok(made)
}

/// Whether SQLite refused a statement for a constraint (`SQLITE_CONSTRAINT`, a trigger's
/// `RAISE` among them): that statement's own doing, not the transaction's.
pub(super) fn refused(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(error)
        if matches!(error.code().unwrap_or_default().parse::<i32>(), Ok(code) if code & 0xff == 19))
}
