//! Idempotency records on SQLite, written in groups. A keyed command writes the file
//! three times: its claim, its events (a group commit of their own) and its stored
//! answer. SQLite takes one write at a time, so each claim and answer in a transaction
//! of its own held the file for most of the time a keyed command took
//! (docs/performance.md). They are therefore handed to one writer task, which takes every
//! record write waiting at that moment and makes them in one transaction, under the
//! file's write gate. In it, the group's new claims are one `INSERT` and its stored
//! answers one `UPDATE` (see `batch`); the rest are a statement each.
//!
//! A write refused on its own account (a constraint) takes the transaction back, and
//! the others are made again without it, so only it fails. A group commits or not as a
//! whole; its writes are answered after the commit. A caller that stops waiting does
//! not stop its write: a claim made for a caller that hung up is a claim whose holder
//! is gone, which the next retry takes over when its lease runs out.

use sqlx::{Acquire, SqlitePool};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

use super::group::gather;
use super::sql::RecordWrite;
use super::sqlite::SqliteStore;
use super::sqlite_writer::{values, Held, WriteGate};
use crate::error::StoreError;
use crate::idempotency::{lease_end, Claim};

/// How many record writes one transaction takes at most.
const MAX_GROUP: usize = 256;

type Outcome = Result<Option<Claim>, StoreError>;

struct Pending {
    write: RecordWrite,
    done: oneshot::Sender<Outcome>,
}

/// The queue to the record writer.
#[derive(Clone)]
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
    let mut held = Held::new(pool);
    while let Some(first) = held.next(&mut queue).await {
        // Writes that arrive while the file is busy join this group.
        let exclusive = gate.lock().await;
        let group = gather(first, &mut queue, MAX_GROUP);
        let outcomes = write_group(&mut held, &group).await;
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
    /// A statement making several writes was refused: which write it was is unknown,
    /// so the group is made again a write at a time.
    Batch,
}

/// Makes the writes of `group`, one outcome each. A write refused on its own account is
/// answered with its refusal and the others are made again together: k refused writes
/// cost k + 1 transactions. A failure of the transaction fails every write in it.
async fn write_group(held: &mut Held, group: &[Pending]) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = group.iter().map(|_| None).collect();
    let mut batched = true;
    loop {
        let left: Vec<usize> = (0..group.len())
            .filter(|&at| outcomes[at].is_none())
            .collect();
        if left.is_empty() {
            break;
        }
        match together(held, group, &left, batched).await {
            Ok(made) => {
                for (at, outcome) in left.into_iter().zip(made) {
                    outcomes[at] = Some(Ok(outcome));
                }
            }
            Err(Stop::Write(place, error)) => outcomes[left[place]] = Some(Err(error)),
            Err(Stop::Batch) => batched = false,
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
    held: &mut Held,
    group: &[Pending],
    left: &[usize],
    batched: bool,
) -> Result<Vec<Option<Claim>>, Stop> {
    let failed = |error: sqlx::Error| Stop::Transaction(error.into());
    let connection = held.connection().await.map_err(failed)?;
    let made = in_transaction(connection, group, left, batched).await;
    if made.is_err() {
        held.discard();
    }
    made
}

async fn in_transaction(
    connection: &mut sqlx::SqliteConnection,
    group: &[Pending],
    left: &[usize],
    batched: bool,
) -> Result<Vec<Option<Claim>>, Stop> {
    let failed = |error: sqlx::Error| Stop::Transaction(error.into());
    let mut transaction = connection.begin().await.map_err(failed)?;
    let writes: Vec<&RecordWrite> = left.iter().map(|&at| &group[at].write).collect();
    let mut made = vec![None; left.len()];
    if batched {
        if let Err(error) = batch(&mut transaction, &writes, &mut made).await {
            let _ = transaction.rollback().await;
            return Err(if refused(&error) {
                Stop::Batch
            } else {
                Stop::Transaction(error.into())
            });
        }
    }
    for (place, write) in writes.iter().enumerate() {
        if made[place].is_some() {
            continue;
        }
        match SqliteStore::write_record(&mut transaction, write).await {
            Ok(outcome) => made[place] = Some(outcome),
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
    // Every write was made above; one missing would shift the answers to other callers.
    let made = made
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| Stop::Transaction(StoreError::Unavailable("a write was not made".into())))?;
    transaction.commit().await.map_err(failed)?;
    Ok(made)
}

/// Makes the commonest writes of a group, new claims and stored answers, as one
/// statement each; a statement per write would hold the file's gate for a hand-off to
/// the connection's thread each (docs/performance.md). Marks each write it made in
/// `made`; the others (a key already claimed, renewals, releases, a key twice in the
/// group) are left to be made one at a time after it. Keys are told apart in what
/// these statements return, so only writes of a key that is once in the group are
/// taken; writes of different keys do not depend on each other's order.
async fn batch(
    connection: &mut sqlx::SqliteConnection,
    writes: &[&RecordWrite],
    made: &mut [Option<Option<Claim>>],
) -> Result<(), sqlx::Error> {
    let mut seen = HashMap::with_capacity(writes.len());
    for write in writes {
        *seen.entry(write.key()).or_insert(0) += 1;
    }
    let once = |write: &&RecordWrite| seen[&write.key()] == 1;
    let claims: Vec<usize> = (0..writes.len())
        .filter(|&at| once(&writes[at]) && matches!(writes[at], RecordWrite::Claim { .. }))
        .collect();
    let answers: Vec<usize> = (0..writes.len())
        .filter(|&at| once(&writes[at]) && matches!(writes[at], RecordWrite::Complete { .. }))
        .collect();
    if claims.len() > 1 {
        let now = chrono::Utc::now();
        let created_at = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let sql = format!(
            "INSERT INTO idempotency (caller, key, request_hash, created_at, lease_until) VALUES {} \
             ON CONFLICT (caller, key) DO NOTHING RETURNING caller, key",
            values(claims.len(), 5)
        );
        let mut query = sqlx::query_as::<_, (String, String)>(&sql);
        for &at in &claims {
            if let RecordWrite::Claim {
                caller,
                key,
                request_hash,
                lease,
            } = writes[at]
            {
                query = query
                    .bind(caller)
                    .bind(key)
                    .bind(request_hash)
                    .bind(&created_at)
                    .bind(lease_end(*lease));
            }
        }
        let inserted: HashSet<(String, String)> = query
            .fetch_all(&mut *connection)
            .await?
            .into_iter()
            .collect();
        for &at in &claims {
            let (caller, key) = writes[at].key();
            if inserted.contains(&(caller.to_owned(), key.to_owned())) {
                made[at] = Some(Some(Claim::New {
                    claimed_at_ms: now.timestamp_millis(),
                    recovering: false,
                }));
            }
        }
    }
    if answers.len() > 1 {
        let sql = format!(
            "UPDATE idempotency SET status = v.column3, response_headers = v.column4, \
             response_body = v.column5 FROM (VALUES {}) AS v \
             WHERE idempotency.caller = v.column1 AND idempotency.key = v.column2",
            values(answers.len(), 5)
        );
        let mut query = sqlx::query(&sql);
        for &at in &answers {
            if let RecordWrite::Complete {
                caller,
                key,
                status,
                headers,
                body,
            } = writes[at]
            {
                query = query
                    .bind(caller)
                    .bind(key)
                    .bind(i32::from(*status))
                    .bind(headers)
                    .bind(body);
            }
        }
        query.execute(&mut *connection).await?;
        for &at in &answers {
            made[at] = Some(None);
        }
    }
    Ok(())
}

/// Whether SQLite refused a statement for a constraint (`SQLITE_CONSTRAINT`, a trigger's
/// `RAISE` among them): that statement's own doing, not the transaction's.
pub(super) fn refused(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(error)
        if matches!(error.code().unwrap_or_default().parse::<i32>(), Ok(code) if code & 0xff == 19))
}
