use cqrs_es::persist::PersistenceError;

/// A failure of the store itself (never a business refusal).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended to the stream first.
    #[error("the stream was changed by another writer")]
    Conflict,
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    /// A position, tree size or leaf that the store does not (yet) hold.
    #[error("out of range: {0}")]
    OutOfRange(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl From<PersistenceError> for StoreError {
    fn from(error: PersistenceError) -> Self {
        match error {
            PersistenceError::OptimisticLockError => StoreError::Conflict,
            PersistenceError::ConnectionError(e) => StoreError::Unavailable(e.to_string()),
            PersistenceError::DeserializationError(e) => StoreError::Corrupt(e.to_string()),
            PersistenceError::UnknownError(e) => StoreError::Unavailable(e.to_string()),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        StoreError::Corrupt(error.to_string())
    }
}

impl StoreError {
    /// Whether trying again later can help (the database was busy, unreachable or
    /// shutting down), as opposed to data that cannot be read or a refused write.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Unavailable(_) | StoreError::Conflict => true,
            StoreError::Database(error) => is_transient(error),
            StoreError::Corrupt(_) | StoreError::OutOfRange(_) | StoreError::Migration(_) => false,
        }
    }
}

/// Whether a database error is one a retry can help with: SQLite `BUSY`/`LOCKED`;
/// PostgreSQL serialization failure and deadlock (40…), insufficient resources (53…),
/// lock not available (55P03), shutting down (57P…), connection exceptions (08…); and
/// a pool or connection that failed.
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(error) => {
            let code = error.code().unwrap_or_default();
            // SQLite's codes are numbers, and so are many of PostgreSQL's SQLSTATEs:
            // 22021 (a NUL byte in text) would read as SQLite's BUSY.
            let postgres = error
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some();
            let sqlite_busy = !postgres
                && matches!(code.parse::<i32>(), Ok(code) if matches!(code & 0xff, 5 | 6));
            let postgres_transient = ["40", "53", "57P", "08"]
                .iter()
                .any(|prefix| code.starts_with(prefix))
                || code == "55P03";
            sqlite_busy || postgres_transient || error.message().contains("database is locked")
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_)
        | sqlx::Error::Tls(_) => true,
        _ => false,
    }
}
