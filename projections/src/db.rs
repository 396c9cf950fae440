//! Connections to the read-side databases through sqlx's `Any` driver.

use sqlx::any::{install_default_drivers, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};
use std::path::Path;
use std::sync::RwLock;
use std::time::Duration;

use crate::error::ProjectionError;

/// Which schema a database holds. On Aurora both live in one database, so the two
/// migration sets number apart (1…, 1001…) and each ignores the other's versions.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Schema {
    ReadModels,
    SystemLog,
}

impl Schema {
    fn migrator(self) -> Migrator {
        let mut migrator = match self {
            Schema::ReadModels => sqlx::migrate!("./migrations/read"),
            Schema::SystemLog => sqlx::migrate!("./migrations/log"),
        };
        migrator.set_ignore_missing(true);
        migrator
    }
}

/// The `Any` URL of a SQLite file (created if missing).
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// How hard a SQLite database's commits hold on to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// `synchronous=FULL`: the system log, whose entries nothing can bring back.
    Full,
    /// `synchronous=NORMAL`: read models, which a crash can only set back to a
    /// checkpoint that commits with them.
    Normal,
    /// `synchronous=OFF`: a rebuild's copy before it is swapped in. A crash leaves an
    /// unused file behind and the live read models untouched; the copy is synced to
    /// disk before it is used.
    Bulk,
}

/// Opens a pool on `url` and applies `migrations`. SQLite gets WAL, a busy timeout,
/// the `durability` asked for, and `secure_delete`: what a change or a deletion frees is
/// zeroed, so an erased client's personal data does not live on in free space.
pub(crate) async fn open(
    url: &str,
    schema: Schema,
    durability: Durability,
) -> Result<AnyPool, ProjectionError> {
    install_default_drivers();
    let synchronous = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
        Durability::Bulk => "OFF",
    };
    // The read models' log is checkpointed by a task of its own, not by the commit that
    // fills it: a checkpoint inside the projector's commit made its p99 10 ms at 5,000
    // commands/s, and the projection lag with it (docs/performance.md).
    let sqlite = url.starts_with("sqlite:");
    let checkpointer = durability == Durability::Normal && sqlite;
    let options = AnyPoolOptions::new()
        .max_connections(if sqlite { 4 } else { 16 })
        .acquire_timeout(Duration::from_secs(10));
    // A server's connections are pinged only after sitting idle (`pool_check`); on
    // SQLite the ping is a hand-off within the process, and skipping it measured nothing.
    let options = if sqlite {
        options
    } else {
        options
            .test_before_acquire(false)
            .before_acquire(event_store::pool_check::ping_if_idle::<sqlx::Any>)
    };
    let pool = options
        .after_connect(move |connection, _| {
            Box::pin(async move {
                if connection.backend_name() == "SQLite" {
                    connection
                        .execute(sqlx::raw_sql(&format!(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; PRAGMA busy_timeout = 10000; PRAGMA temp_store = MEMORY; PRAGMA secure_delete = ON;"
                        )))
                        .await?;
                    if checkpointer {
                        // Only a bound, for when commits never leave the task a moment
                        // with the whole log copied (a long catch-up): the log restarts
                        // only then.
                        connection.execute("PRAGMA wal_autocheckpoint = 10000").await?;
                    }
                }
                Ok(())
            })
        })
        .connect(url)
        .await?;
    schema.migrator().run(&pool).await?;
    if checkpointer {
        tokio::spawn(checkpoint(pool.clone()));
    }
    if let Schema::ReadModels = schema {
        crate::models::accounts::backfill_numbers(&pool).await?;
        crate::models::client_search::ensure(&pool).await?;
    }
    Ok(pool)
}

/// How often the read models' log is checkpointed. Often, so each checkpoint is small:
/// every 300 ms made the commands' p99 twice as long as every 30 ms, whose copying and
/// fsync are shorter than the gaps between the store's commits.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(30);

/// Copies the write-ahead log of `pool`'s database into it every `CHECKPOINT_EVERY`,
/// as far as readers allow (`PASSIVE`: it never waits for them or blocks the writer),
/// until the pool is closed.
async fn checkpoint(pool: AnyPool) {
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        if pool.is_closed() {
            return;
        }
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            if !pool.is_closed() {
                tracing::warn!(%error, "could not checkpoint the read models' log");
            }
        }
    }
}

/// The read models' database. Its pool can be swapped for a rebuilt copy while queries
/// keep running.
pub struct ReadStore {
    pool: RwLock<AnyPool>,
    url: String,
}

impl ReadStore {
    pub async fn open(url: &str) -> Result<Self, ProjectionError> {
        let pool = open(url, Schema::ReadModels, Durability::Normal).await?;
        Ok(ReadStore {
            pool: RwLock::new(pool),
            url: url.to_string(),
        })
    }

    /// The current pool (cheap to clone).
    pub fn pool(&self) -> AnyPool {
        self.pool
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Puts `pool` in place of the current one; returns the old one.
    pub(crate) fn swap(&self, pool: AnyPool) -> AnyPool {
        let mut current = self
            .pool
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        std::mem::replace(&mut *current, pool)
    }

    pub async fn ping(&self) -> Result<(), ProjectionError> {
        sqlx::query("SELECT 1").execute(&self.pool()).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool().close().await;
    }
}
