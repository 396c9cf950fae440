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
    /// Contention that did not settle in a few tries; trying later can help.
    #[error("busy: {0}")]
    Busy(String),
}

impl From<serde_json::Error> for ProjectionError {
    fn from(error: serde_json::Error) -> Self {
        ProjectionError::Poison(error.to_string())
    }
}

impl ProjectionError {
    /// Whether trying again later can help: the database or the store was busy,
    /// unreachable or shutting down. Such a failure is retried with backoff; only a
    /// deterministic one (the event cannot be applied, a constraint refuses it) is
    /// dead-lettered, so a lock timeout under load never blocks a valid stream.
    pub fn is_transient(&self) -> bool {
        match self {
            ProjectionError::Database(error) => event_store::is_transient(error),
            ProjectionError::Store(error) => error.is_transient(),
            ProjectionError::Busy(_) => true,
            ProjectionError::Migration(_)
            | ProjectionError::Poison(_)
            | ProjectionError::InvalidCursor => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_whether_a_retry_can_help() {
        assert!(ProjectionError::Database(sqlx::Error::PoolTimedOut).is_transient());
        assert!(ProjectionError::Store(StoreError::Unavailable("down".into())).is_transient());
        assert!(!ProjectionError::Store(StoreError::Corrupt("bad".into())).is_transient());
        assert!(!ProjectionError::Poison("unreadable payload".into()).is_transient());
        assert!(!ProjectionError::Database(sqlx::Error::RowNotFound).is_transient());
    }
}
