//! When a pooled connection to a database server is tested before use. sqlx pings every
//! connection it hands out: a round trip before each statement, which made a group of
//! appends on PostgreSQL two round trips where `pgbench` makes one
//! (docs/performance.md). A connection used moments ago is alive as far as a ping could
//! tell; one left idle longer is pinged, and replaced if the ping fails, as before.

use futures::future::BoxFuture;
use sqlx::pool::PoolConnectionMetadata;
use sqlx::{Connection, Database};
use std::time::Duration;

/// How long a connection may sit idle and still be handed out without a ping.
pub const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// For `PoolOptions::before_acquire`, with `test_before_acquire(false)`: pings only a
/// connection idle for [`IDLE_BEFORE_PING`] or longer.
pub fn ping_if_idle<DB: Database>(
    connection: &mut DB::Connection,
    meta: PoolConnectionMetadata,
) -> BoxFuture<'_, Result<bool, sqlx::Error>> {
    Box::pin(async move {
        if meta.idle_for >= IDLE_BEFORE_PING {
            connection.ping().await?;
        }
        Ok(true)
    })
}
