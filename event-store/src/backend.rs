//! Opening the store on each backend, and dispatching the repository calls to it.

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::Path;
use std::time::Duration;

use crate::error::StoreError;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

use crate::postgres_writer::PostgresRepository;
use crate::sqlite_writer::SqliteRepository;

/// How the embedded store runs; both on by default. Turning them off is for measuring
/// what they are worth (docs/performance.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Batch concurrent appends into one durable commit.
    pub group_commit: bool,
    /// Keep aggregates in memory between commands.
    pub aggregate_cache: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            group_commit: true,
            aggregate_cache: true,
        }
    }
}

/// The database behind the store: the cqrs-es repository for appends and loads, and the
/// pool for the queries cqrs-es does not offer (audit reads, idempotency).
pub enum Backend {
    Sqlite {
        repository: SqliteRepository,
        pool: SqlitePool,
        /// The same file for idempotency records, without an fsync per commit: see
        /// [`Backend::open_sqlite_with`].
        idempotency: SqlitePool,
        options: SqliteOptions,
    },
    Postgres {
        repository: PostgresRepository,
        pool: PgPool,
    },
    #[cfg(feature = "dynamo")]
    Dynamo {
        repository: dynamo_es::DynamoEventRepository,
        client: aws_sdk_dynamodb::Client,
        tables: crate::dynamo::DynamoTables,
    },
}

impl Backend {
    /// Opens (creating if needed) the SQLite store at `path`. WAL with
    /// `synchronous=FULL`: a commit that returned is on disk, even after power loss.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        Self::open_sqlite_with(path, SqliteOptions::default()).await
    }

    pub async fn open_sqlite_with(path: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(connect.clone())
            .await?;
        SQLITE_MIGRATIONS.run(&pool).await?;
        // Idempotency records need no fsync of their own. In WAL mode commits reach the
        // log in order, and a durable commit makes every earlier one durable: a claim is
        // on disk before the events it guards are acknowledged. A claim or a stored
        // answer lost to a power cut only leaves a retry to run as a recovery, which finds
        // the events by their key. Without the fsyncs, a keyed command costs one durable
        // commit (the events', shared by group commit) instead of three.
        let idempotency = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(connect.synchronous(SqliteSynchronous::Normal))
            .await?;
        Ok(Backend::Sqlite {
            repository: SqliteRepository::new(pool.clone(), options.group_commit),
            pool,
            idempotency,
            options,
        })
    }

    /// Connects to PostgreSQL at `url`, with up to 16 connections, and brings its schema
    /// up to date.
    pub async fn connect_postgres(url: &str) -> Result<Self, StoreError> {
        Self::connect_postgres_with(url, 16).await
    }

    /// As [`Backend::connect_postgres`], with up to `connections` connections: about one
    /// per concurrent writer; more only queue in the server.
    pub async fn connect_postgres_with(url: &str, connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        POSTGRES_MIGRATIONS.run(&pool).await?;
        Ok(Backend::Postgres {
            repository: PostgresRepository::new(pool.clone()),
            pool,
        })
    }

    /// The store on DynamoDB, in `tables` (see [`crate::DynamoTables::create`]).
    #[cfg(feature = "dynamo")]
    pub fn dynamo(client: aws_sdk_dynamodb::Client, tables: crate::dynamo::DynamoTables) -> Self {
        let repository = dynamo_es::DynamoEventRepository::new(client.clone())
            .with_tables(&tables.events, &tables.snapshots);
        Backend::Dynamo {
            repository,
            client,
            tables,
        }
    }

    /// The embedded store's settings, as it runs; `None` on the other backends.
    pub fn sqlite_options(&self) -> Option<SqliteOptions> {
        match self {
            Backend::Sqlite { options, .. } => Some(*options),
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres { .. } => "postgres",
            #[cfg(feature = "dynamo")]
            Backend::Dynamo { .. } => "dynamodb",
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        #[cfg(feature = "dynamo")]
        if let Backend::Dynamo { client, tables, .. } = self {
            return crate::dynamo::ping(client, tables).await;
        }
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(drop)?);
        Ok(())
    }

    pub async fn close(&self) {
        #[cfg(feature = "dynamo")]
        if let Backend::Dynamo { .. } = self {
            return;
        }
        if let Backend::Sqlite { idempotency, .. } = self {
            idempotency.close().await;
        }
        with_pool!(self, pool => pool.close().await);
    }
}

/// Runs `$body` with `$repo` bound to whichever cqrs-es repository the backend holds.
macro_rules! with_repository {
    ($backend:expr, $repo:ident => $body:expr) => {
        match $backend {
            $crate::backend::Backend::Sqlite {
                repository: $repo, ..
            } => $body,
            $crate::backend::Backend::Postgres {
                repository: $repo, ..
            } => $body,
            #[cfg(feature = "dynamo")]
            $crate::backend::Backend::Dynamo {
                repository: $repo, ..
            } => $body,
        }
    };
}
pub(crate) use with_repository;

/// Runs `$body` with `$pool` bound to the backend's sqlx pool, for SQL both dialects
/// accept (the body is compiled once per pool type).
macro_rules! with_pool {
    ($backend:expr, $pool:ident => $body:expr) => {
        match $backend {
            $crate::backend::Backend::Sqlite { pool: $pool, .. } => $body,
            $crate::backend::Backend::Postgres { pool: $pool, .. } => $body,
            // Callers handle DynamoDB before reaching SQL.
            #[cfg(feature = "dynamo")]
            $crate::backend::Backend::Dynamo { .. } => unreachable!("SQL on the DynamoDB store"),
        }
    };
}
pub(crate) use with_pool;
