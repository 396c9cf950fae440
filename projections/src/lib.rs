//! The read side's data: read models built from events by one projector, the system log,
//! and the queries over both. The same SQL runs on SQLite (embedded) and PostgreSQL
//! (Aurora) through sqlx's `Any` driver, so there is one definition of every query.

mod db;
mod envelope;
mod error;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod models;
pub mod page;
mod rebuild;
mod runner;
pub mod system_log;
pub mod verification_runs;

#[cfg(feature = "lambda")]
pub mod database_secret;
#[cfg(feature = "cognito")]
pub mod sign_in;
#[cfg(feature = "cognito")]
pub mod sign_in_failures;
pub use db::{sqlite_url, ReadStore};
pub use envelope::Envelope;
pub use error::ProjectionError;
pub use rebuild::{current_read_db, rebuild_sqlite};
pub use runner::{CatchUp, Delivered, GapSource, Projector};
pub use system_log::{LogEntry, LogFilter, SystemLog};
pub use verification_runs::{VerificationRun, VerificationRuns};

/// Times are stored as fixed-width RFC 3339 UTC text, which sorts chronologically in
/// both dialects.
pub fn timestamp(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
