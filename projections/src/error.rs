use event_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("read store: {0}")]
    Database(#[from] sqlx::Error),
    #[error("read store migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("event store: {0}")]
    Store(#[from] StoreError),
    /// The event cannot be applied (unreadable payload, impossible state): it is
    /// dead-lettered, never retried blindly.
    #[error("cannot apply event: {0}")]
    Poison(String),
    #[error("invalid cursor")]
    InvalidCursor,
}

impl From<serde_json::Error> for ProjectionError {
    fn from(error: serde_json::Error) -> Self {
        ProjectionError::Poison(error.to_string())
    }
}
