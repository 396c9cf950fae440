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

impl ProjectionError {
    /// Whether trying again later can help: the database or the store was busy,
    /// unreachable or shutting down. Such a failure is retried with backoff; only a
    /// deterministic one (the event cannot be applied, a constraint refuses it) is
    /// dead-lettered, so a lock timeout under load never blocks a valid stream.
    pub fn is_transient(&self) -> bool {
        match self {
            ProjectionError::Database(error) => transient_database_error(error),
            ProjectionError::Store(error) => !matches!(error, StoreError::Corrupt(_)),
            ProjectionError::Migration(_)
            | ProjectionError::Poison(_)
            | ProjectionError::InvalidCursor => false,
        }
    }
}

fn transient_database_error(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(error) => {
            let code = error.code().unwrap_or_default();
            // SQLite: BUSY (5) and LOCKED (6) with their extended codes.
            let sqlite_busy =
                matches!(code.parse::<i32>(), Ok(code) if matches!(code & 0xff, 5 | 6));
            // PostgreSQL: serialization failure and deadlock (40…), insufficient
            // resources (53…), lock not available (55P03), shutting down (57P…),
            // connection exceptions (08…).
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
