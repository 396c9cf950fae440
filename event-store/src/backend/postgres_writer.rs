//! Appends to PostgreSQL in one statement. postgres-es writes an append as a transaction
//! of one INSERT per event (BEGIN, INSERT …, COMMIT: three round trips for a deposit);
//! a single multi-row INSERT is just as atomic, since a statement commits whole or not
//! at all, and costs one round trip. A sequence already taken violates the primary key:
//! another writer appended first, and nothing of this append is written. Reads go
//! straight to postgres-es. Still a cqrs-es `PersistedEventRepository`, as on SQLite.

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, QueryBuilder};

/// postgres-es for reads; appends as one INSERT.
pub(super) struct PostgresRepository {
    reads: PostgresEventRepository,
    pool: PgPool,
}

impl PostgresRepository {
    pub(crate) fn new(pool: PgPool) -> Self {
        PostgresRepository {
            reads: PostgresEventRepository::new(pool.clone()),
            pool,
        }
    }

    async fn insert(&self, events: &[SerializedEvent]) -> Result<(), PersistenceError> {
        // PostgreSQL takes at most 65,535 parameters (7 per event); larger appends (a
        // bulk load) go in one transaction of several statements.
        if events.len() > MAX_ROWS {
            return self.insert_in_parts(events).await;
        }
        let mut insert = rows(events);
        insert
            .build()
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(refused)
    }

    async fn insert_in_parts(&self, events: &[SerializedEvent]) -> Result<(), PersistenceError> {
        let mut tx = self.pool.begin().await.map_err(refused)?;
        for part in events.chunks(MAX_ROWS) {
            rows(part)
                .build()
                .execute(&mut *tx)
                .await
                .map_err(refused)?;
        }
        tx.commit().await.map_err(refused)
    }
}

/// Events per INSERT: 7 parameters each, under PostgreSQL's 65,535.
const MAX_ROWS: usize = 9_000;

/// The INSERT of `events`.
fn rows(events: &[SerializedEvent]) -> QueryBuilder<'_, Postgres> {
    let mut insert = QueryBuilder::<Postgres>::new(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
         event_version, payload, metadata) ",
    );
    insert.push_values(events, |mut row, event| {
        row.push_bind(&event.aggregate_type)
            .push_bind(&event.aggregate_id)
            .push_bind(event.sequence as i64)
            .push_bind(&event.event_type)
            .push_bind(&event.event_version)
            .push_bind(Json(&event.payload))
            .push_bind(Json(&event.metadata));
    });
    insert
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
        if snapshot_update.is_some() || events.is_empty() {
            return self.reads.persist::<A>(events, snapshot_update).await;
        }
        self.insert(events).await
    }
}
