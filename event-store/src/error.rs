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
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("not supported by this backend: {0}")]
    Unsupported(&'static str),
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
