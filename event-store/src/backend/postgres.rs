//! The self-hosted store on PostgreSQL, which several processes may share. It keeps
//! snapshots and idempotency records; it has no commit-order feed (sequences from
//! concurrent transactions commit out of order), so its projectors are fed events.

use cqrs_es::persist::SerializedEvent;
use serde_json::Value;
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::time::Duration;

use super::postgres_writer::PostgresRepository;
use super::sql::{self, RecordWrite};
use crate::error::StoreError;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL store: postgres-es for reads, one multi-row INSERT per append.
pub struct PostgresStore {
    repository: PostgresRepository,
    pool: PgPool,
}

impl PostgresStore {
    /// Clients' data keys in this database.
    pub(super) fn keys(&self) -> super::data_keys::PostgresKeys {
        super::data_keys::PostgresKeys {
            pool: self.pool.clone(),
        }
    }
}

impl PostgresStore {
    /// Connects to PostgreSQL at `url`, with up to 16 connections, and brings its schema
    /// up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, 16).await
    }

    /// As [`PostgresStore::connect`], with up to `connections` connections: about one
    /// per concurrent writer; more only queue in the server.
    pub async fn connect_with(url: &str, connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
            .before_acquire(super::pool_check::ping_if_idle::<sqlx::Postgres>)
            .connect(url)
            .await?;
        MIGRATIONS.run(&pool).await?;
        Ok(PostgresStore {
            repository: PostgresRepository::new(pool.clone()),
            pool,
        })
    }

    /// The pool, for tools and tests that read or alter the database directly.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl PostgresStore {
    /// Writes need no queue of ours: PostgreSQL locks rows, not the database.
    async fn exclusive(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        None
    }

    /// An idempotency record write, on a connection of its own: PostgreSQL takes
    /// concurrent writes.
    async fn record(
        &self,
        write: RecordWrite,
    ) -> Result<Option<crate::idempotency::Claim>, StoreError> {
        let mut connection = self.pool.acquire().await?;
        Self::write_record(&mut connection, &write).await
    }

    /// An event as PostgreSQL stores it: payload and metadata as JSON.
    fn event_from_row(
        (t, i, s, e, v, p, m): (String, String, i64, String, String, Value, Value),
    ) -> Result<SerializedEvent, StoreError> {
        Ok(SerializedEvent::new(i, s as usize, t, e, v, p, m))
    }
}

// One pool serves both: PostgreSQL commits are durable per transaction anyway.
sql::sql_capabilities!(
    PostgresStore,
    "postgres",
    events: pool,
    records: pool,
    connection: sqlx::PgConnection
);
