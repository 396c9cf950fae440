//! Appends to PostgreSQL, with group commit. postgres-es writes an append as a
//! transaction of one INSERT per event (BEGIN, INSERT …, COMMIT: three round trips for
//! a deposit). Here an append is one statement, which commits whole or not at all; a
//! sequence already taken violates the primary key: another writer appended first.
//!
//! Most appends are one event (a deposit, a withdrawal). Those waiting at the same
//! moment are written together by one statement, `INSERT … ON CONFLICT DO NOTHING
//! RETURNING` the keys it wrote: a row it did not write is a sequence another writer
//! took, so that append alone is refused, and the others commit. The server's cost of
//! a statement and a commit is then shared by every append in it. An append of several
//! events keeps a statement of its own, so it is never written in part. Reads go
//! straight to postgres-es. Still a cqrs-es `PersistedEventRepository`, as on SQLite.

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::PgPool;

use super::group::Row;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// postgres-es for reads; appends as one INSERT, one-event appends grouped.
pub(super) struct PostgresRepository {
    reads: PostgresEventRepository,
    pool: PgPool,
    singles: mpsc::Sender<Single>,
}

/// A one-event append waiting for its group, as the row it writes.
struct Single {
    row: Row,
    done: oneshot::Sender<Result<(), PersistenceError>>,
}

/// How many one-event appends one statement takes at most.
const MAX_GROUP: usize = 512;

/// How many groups are written at once. While they are, appends queue for the next
/// group. Two beat one (a group is gathered while the other commits) and four (groups
/// of one or two, the server's cost per statement back): docs/performance.md.
const IN_FLIGHT: usize = 2;

impl PostgresRepository {
    /// Starts the group writer on the current runtime.
    pub(crate) fn new(pool: PgPool) -> Self {
        let (singles, queue) = mpsc::channel(4 * MAX_GROUP);
        tokio::spawn(writer(pool.clone(), queue));
        PostgresRepository {
            reads: PostgresEventRepository::new(pool.clone()),
            pool,
            singles,
        }
    }

    async fn append_one(&self, event: &SerializedEvent) -> Result<(), PersistenceError> {
        let stopped = || PersistenceError::ConnectionError("the event writer has stopped".into());
        let (done, outcome) = oneshot::channel();
        self.singles
            .send(Single {
                row: Row::of(event),
                done,
            })
            .await
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

/// Takes every one-event append waiting and writes them as one statement, each group
/// on a connection of its own. The busier the store, the larger its groups.
async fn writer(pool: PgPool, mut queue: mpsc::Receiver<Single>) {
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = queue.recv().await else {
            return;
        };
        let group = super::group::gather(first, &mut queue, MAX_GROUP);
        let pool = pool.clone();
        tokio::spawn(async move {
            write_group(&pool, group).await;
            drop(permit);
        });
    }
}

/// Writes `group` and answers each append. Two appends of the same key in one
/// statement could not be told apart in what it returns, so a repeated key is written
/// after the group on its own.
async fn write_group(pool: &PgPool, group: Vec<Single>) {
    let mut keys = HashSet::with_capacity(group.len());
    let (together, alone): (Vec<Single>, Vec<Single>) = group
        .into_iter()
        .partition(|single| keys.insert(single.row.key()));
    let rows: Vec<&Row> = together.iter().map(|single| &single.row).collect();
    match insert(pool, &rows, Conflicts::Skip).await {
        Ok(written) => {
            let written: HashSet<Key> = written.into_iter().collect();
            for single in together {
                let outcome = if written.contains(&single.row.key()) {
                    Ok(())
                } else {
                    Err(PersistenceError::OptimisticLockError)
                };
                let _ = single.done.send(outcome);
            }
        }
        // The connection failed: whether the statement committed is unknown, as it would
        // be for an append of its own.
        Err(error) if crate::is_transient(&error) => {
            let message = error.to_string();
            for single in together {
                let _ = single.done.send(Err(PersistenceError::ConnectionError(
                    message.clone().into(),
                )));
            }
        }
        // Refused whole (one append's bad value): nothing was written, and each append
        // is tried alone, so only the bad one fails.
        Err(_) => {
            for single in together {
                let outcome = insert_alone(pool, &single.row).await;
                let _ = single.done.send(outcome);
            }
        }
    }
    for single in alone {
        let outcome = insert_alone(pool, &single.row).await;
        let _ = single.done.send(outcome);
    }
}

async fn insert_alone(pool: &PgPool, row: &Row) -> Result<(), PersistenceError> {
    insert(pool, &[row], Conflicts::Refuse)
        .await
        .map(drop)
        .map_err(refused)
}

/// A row's key: aggregate type, id and sequence.
type Key = (String, String, i64);

impl Row {
    fn key(&self) -> Key {
        (
            self.aggregate_type.clone(),
            self.aggregate_id.clone(),
            self.sequence,
        )
    }
}

/// What a row whose key is taken does to the statement.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Conflicts {
    /// Fails it: nothing is written.
    Refuse,
    /// Is left out: the rest is written, and the statement returns the keys it wrote.
    Skip,
}

/// The INSERT of events given as column arrays, with `$conflicts` before RETURNING.
macro_rules! insert_events {
    ($conflicts:literal) => {
        concat!(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata) \
             SELECT t, i, s, e, v, p::json, m::json \
             FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], \
             $6::text[], $7::text[]) AS u(t, i, s, e, v, p, m) ",
            $conflicts,
            "RETURNING aggregate_type, aggregate_id, sequence"
        )
    };
}

/// Inserts `rows` in one statement, one array per column: one statement text for any
/// number of rows, so the server plans it once per connection. Returns the keys
/// written.
async fn insert(
    pool: &PgPool,
    rows: &[&Row],
    conflicts: Conflicts,
) -> Result<Vec<Key>, sqlx::Error> {
    let column = |field: fn(&Row) -> &str| rows.iter().map(|row| field(row)).collect::<Vec<_>>();
    let query = match conflicts {
        Conflicts::Refuse => insert_events!(""),
        Conflicts::Skip => insert_events!("ON CONFLICT DO NOTHING "),
    };
    sqlx::query_as::<_, Key>(query)
        .bind(column(|row| &row.aggregate_type))
        .bind(column(|row| &row.aggregate_id))
        .bind(rows.iter().map(|row| row.sequence).collect::<Vec<_>>())
        .bind(column(|row| &row.event_type))
        .bind(column(|row| &row.event_version))
        .bind(column(|row| &row.payload))
        .bind(column(|row| &row.metadata))
        .fetch_all(pool)
        .await
}

/// A refused append as cqrs-es names it: a taken sequence is another writer's append.
fn refused(error: sqlx::Error) -> PersistenceError {
    match error {
        sqlx::Error::Database(error) if error.is_unique_violation() => {
            PersistenceError::OptimisticLockError
        }
        error if crate::is_transient(&error) => PersistenceError::ConnectionError(Box::new(error)),
        error => PersistenceError::UnknownError(Box::new(error)),
    }
}

impl PersistedEventRepository for PostgresRepository {
    crate::backend::repository::delegate_reads!();

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        match events {
            _ if snapshot_update.is_some() => {
                self.reads.persist::<A>(events, snapshot_update).await
            }
            [] => Ok(()),
            [event] => self.append_one(event).await,
            // Arrays are one parameter each, so any number of events fits one statement.
            events => {
                let rows: Vec<Row> = events.iter().map(Row::of).collect();
                let rows: Vec<&Row> = rows.iter().collect();
                insert(&self.pool, &rows, Conflicts::Refuse)
                    .await
                    .map(drop)
                    .map_err(refused)
            }
        }
    }
}
