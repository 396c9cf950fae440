//! Group commit for the embedded store. A durable SQLite commit (WAL,
//! `synchronous=FULL`) costs an fsync, which caps one-append-per-commit near 1,800
//! appends/s on this kind of machine. Appends are therefore handed to one writer task,
//! which takes every append waiting at that moment and writes them in one transaction
//! (one INSERT for all, or, if a stream's sequence is taken, one per append, so that
//! conflict refuses only that append), with one fsync for all. Reads go straight to
//! sqlite-es. This is still a cqrs-es `PersistedEventRepository`, so the rest of the
//! store does not know the difference.

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;
use sqlx::pool::PoolConnection;
use sqlx::{Acquire, Sqlite, SqlitePool};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

use super::group::Row;

/// One write to the SQLite file at a time, in the order asked: `SqliteStore::exclusive`.
pub(crate) type WriteGate = Mutex<()>;

/// How many appends one commit takes at most.
const MAX_GROUP: usize = 512;

struct Append {
    rows: Vec<Row>,
    done: oneshot::Sender<Result<(), PersistenceError>>,
}

/// sqlite-es for reads; appends through the group-commit writer (or, with group commit
/// off, one transaction per append as sqlite-es does it).
pub(super) struct SqliteRepository {
    reads: SqliteEventRepository,
    appends: Option<mpsc::Sender<Append>>,
    writes: Arc<WriteGate>,
}

impl SqliteRepository {
    /// With `group_commit`, starts the writer task on the current runtime. Every
    /// append holds `writes` while it writes.
    pub(crate) fn new(pool: SqlitePool, group_commit: bool, writes: Arc<WriteGate>) -> Self {
        let appends = group_commit.then(|| {
            let (appends, queue) = mpsc::channel(4 * MAX_GROUP);
            tokio::spawn(writer(pool.clone(), queue, writes.clone()));
            appends
        });
        SqliteRepository {
            reads: SqliteEventRepository::new(pool),
            appends,
            writes,
        }
    }
}

async fn writer(pool: SqlitePool, mut queue: mpsc::Receiver<Append>, writes: Arc<WriteGate>) {
    let mut held = Held::new(pool);
    while let Some(first) = held.next(&mut queue).await {
        // Appends that arrive while the file is busy join this group.
        let exclusive = writes.lock().await;
        let group = super::group::gather(first, &mut queue, MAX_GROUP);
        let outcomes = write_group(&mut held, &group).await;
        drop(exclusive);
        for (append, outcome) in group.into_iter().zip(outcomes) {
            let _ = append.done.send(outcome);
        }
    }
}

/// The connection a group writer keeps from one group to the next: taking one from the
/// pool for every group was an eighth of a group's time at 5,000 commands/s
/// (docs/performance.md). It is given back when the pool starts closing, which waits
/// for every connection, and closed after a failure (`close_after_failure`).
pub(crate) struct Held {
    pool: SqlitePool,
    connection: Option<PoolConnection<Sqlite>>,
    closing: std::pin::Pin<Box<sqlx::pool::CloseEvent>>,
    open: bool,
}

impl Held {
    pub(crate) fn new(pool: SqlitePool) -> Self {
        Held {
            closing: Box::pin(pool.close_event()),
            pool,
            connection: None,
            open: true,
        }
    }

    /// The next write of `queue`, or `None` once it is closed. The connection is given
    /// back meanwhile if the pool starts closing; writes after that fail on the closed
    /// pool.
    pub(crate) async fn next<T>(&mut self, queue: &mut mpsc::Receiver<T>) -> Option<T> {
        loop {
            tokio::select! {
                next = queue.recv() => return next,
                () = &mut self.closing, if self.open => {
                    self.open = false;
                    self.connection = None;
                }
            }
        }
    }

    /// The kept connection, taken from the pool if there is none.
    pub(crate) async fn connection(&mut self) -> Result<&mut PoolConnection<Sqlite>, sqlx::Error> {
        let connection = match self.connection.take() {
            Some(connection) => connection,
            None => self.pool.acquire().await?,
        };
        Ok(self.connection.insert(connection))
    }

    /// Closes the kept connection after a failure: see `close_after_failure`.
    pub(crate) fn discard(&mut self) {
        if let Some(mut connection) = self.connection.take() {
            close_after_failure(&mut connection);
        }
    }
}

/// How many events one INSERT takes (7 values each, within SQLite's 32,766).
const EVENTS_PER_INSERT: usize = 1_000;

/// `INSERT INTO events … VALUES (?, …), …` for `events` events.
fn insert(events: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES ",
    );
    sql.push_str(&values(events, 7));
    sql
}

/// `(?, …), …`: `rows` rows of `columns` anonymous placeholders.
pub(super) fn values(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

/// Inserts `events` in one statement: a statement that fails leaves nothing behind, and
/// the transaction goes on.
async fn insert_events<'a>(
    connection: &mut sqlx::SqliteConnection,
    rows: impl ExactSizeIterator<Item = &'a Row>,
) -> Result<(), sqlx::Error> {
    if rows.len() == 0 {
        return Ok(());
    }
    let sql = insert(rows.len());
    let mut query = sqlx::query(&sql);
    for row in rows {
        query = query
            .bind(&row.aggregate_type)
            .bind(&row.aggregate_id)
            .bind(row.sequence)
            .bind(&row.event_type)
            .bind(&row.event_version)
            .bind(&row.payload)
            .bind(&row.metadata);
    }
    query.execute(connection).await.map(|_| ())
}

/// Whether an insert failed for a sequence already taken: another writer's append.
fn taken(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

/// Writes every append of `group`, all or each on its own; one outcome per append.
///
/// First the whole group as one INSERT, committed by itself: a statement is atomic, and
/// with `synchronous=FULL` durable when it returns. That is one hand-off to the
/// connection's thread and back; a group is usually a dozen one-event appends, and
/// BEGIN, INSERT and COMMIT each as a hand-off were half of a group's time at 5,000
/// commands/s. A statement that fails leaves nothing behind, so if a sequence is taken
/// (another writer appended first) the group is written again append by append in one
/// transaction, and only the stale ones are refused. There an append is one INSERT, so
/// a taken sequence refuses only that append without a savepoint; an append too long
/// for one INSERT takes a savepoint. Any other failure (a full disk, an I/O error) may
/// already have rolled the whole transaction back in SQLite, so the group stops there
/// and every append in it fails: going on would commit the rest one by one, outside
/// any transaction, and then report them failed.
async fn write_group(held: &mut Held, group: &[Append]) -> Vec<Result<(), PersistenceError>> {
    let attempt = async {
        let connection = held.connection().await?;
        let together: Vec<&Row> = group.iter().flat_map(|a| &a.rows).collect();
        if together.len() <= EVENTS_PER_INSERT {
            match insert_events(connection, together.into_iter()).await {
                Ok(()) => return Ok(group.iter().map(|_| Ok(())).collect()),
                Err(error) if taken(&error) && group.len() == 1 => {
                    return Ok(vec![Err(PersistenceError::OptimisticLockError)])
                }
                Err(error) if taken(&error) => {}
                Err(error) => return Err(error),
            }
        }
        write_in_transaction(connection, group).await
    };
    match attempt.await {
        Ok(outcomes) => outcomes,
        // Nothing of the group was written.
        Err(error) => {
            held.discard();
            let message = error.to_string();
            group
                .iter()
                .map(|_| Err(PersistenceError::UnknownError(message.clone().into())))
                .collect()
        }
    }
}

/// Closes a connection whose transaction failed instead of giving it back to the pool.
/// When SQLite rolls a transaction back itself (a full disk, an I/O error, a trigger's
/// `RAISE(ROLLBACK)`), the `ROLLBACK` sent after it fails, and sqlx keeps counting the
/// transaction as open: the connection's next transaction would be taken for a nested
/// one, a savepoint whose release commits nothing.
fn close_after_failure(connection: &mut sqlx::pool::PoolConnection<sqlx::Sqlite>) {
    connection.close_on_drop();
}

/// Writes `group` append by append in one transaction.
async fn write_in_transaction(
    connection: &mut sqlx::SqliteConnection,
    group: &[Append],
) -> Result<Vec<Result<(), PersistenceError>>, sqlx::Error> {
    let mut transaction = connection.begin().await?;
    let mut outcomes = Vec::with_capacity(group.len());
    for append in group {
        match append_in(&mut transaction, &append.rows).await {
            Ok(()) => outcomes.push(Ok(())),
            Err(error) if taken(&error) => {
                outcomes.push(Err(PersistenceError::OptimisticLockError))
            }
            Err(error) => {
                // Now, before the gate is let go; SQLite may have rolled back already.
                let _ = transaction.rollback().await;
                return Err(error);
            }
        }
    }
    transaction.commit().await?;
    Ok(outcomes)
}

/// Inserts one append's events in the open transaction: one INSERT, or for a long
/// append several in a savepoint, undone whole if one fails.
async fn append_in(
    transaction: &mut sqlx::SqliteConnection,
    rows: &[Row],
) -> Result<(), sqlx::Error> {
    if rows.len() <= EVENTS_PER_INSERT {
        return insert_events(transaction, rows.iter()).await;
    }
    let mut savepoint = transaction.begin().await?;
    for part in rows.chunks(EVENTS_PER_INSERT) {
        if let Err(error) = insert_events(&mut savepoint, part.iter()).await {
            // After a taken sequence the group goes on, so the savepoint must be undone;
            // after any other failure the group stops anyway.
            if let Err(undo) = savepoint.rollback().await {
                if taken(&error) {
                    return Err(undo);
                }
            }
            return Err(error);
        }
    }
    savepoint.commit().await
}

impl PersistedEventRepository for SqliteRepository {
    crate::backend::repository::delegate_reads!();

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let Some(appends) = self.appends.as_ref().filter(|_| snapshot_update.is_none()) else {
            let _exclusive = self.writes.lock().await;
            return self.reads.persist::<A>(events, snapshot_update).await;
        };
        let (done, outcome) = oneshot::channel();
        appends
            .send(Append {
                rows: events.iter().map(Row::of).collect(),
                done,
            })
            .await
            .map_err(|_| {
                PersistenceError::ConnectionError("the event writer has stopped".into())
            })?;
        outcome
            .await
            .map_err(|_| PersistenceError::ConnectionError("the event writer has stopped".into()))?
    }
}
