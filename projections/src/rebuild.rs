//! Rebuilding the read models without downtime: project the whole store into a fresh
//! SQLite file, swap its pool in when caught up (queries keep running on the old one
//! until then), record it as current in a pointer file, and remove the old file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use event_store::{CommitFeed, EventStore};

use crate::db::{open, sqlite_url, Durability, ReadStore, Schema};
use crate::error::ProjectionError;
use crate::runner::Projector;
use crate::system_log::SystemLog;

const POINTER: &str = "read-models.current";
const DEFAULT_FILE: &str = "read-models.db";

/// The read models' SQLite file in `data_dir`: the one the last rebuild made current.
pub fn current_read_db(data_dir: &Path) -> PathBuf {
    std::fs::read_to_string(data_dir.join(POINTER))
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty() && !name.contains('/'))
        .map_or_else(|| data_dir.join(DEFAULT_FILE), |name| data_dir.join(name))
}

/// Rebuilds the read models of `live` (SQLite, in `data_dir`) from `store`, following
/// its `feed`. Returns the position the copy was built up to when it was swapped in;
/// the live projector carries on from there.
pub async fn rebuild_sqlite<F: CommitFeed + Clone + 'static>(
    store: Arc<EventStore>,
    feed: F,
    live: Arc<ReadStore>,
    log: Arc<SystemLog>,
    data_dir: &Path,
) -> Result<i64, ProjectionError> {
    let old_path = current_read_db(data_dir);
    let name = format!("read-models-{}.db", uuid::Uuid::now_v7().simple());
    let path = data_dir.join(&name);
    let projector = Projector::following(store, feed, live.clone(), log);
    // The bulk of history without a sync per batch (nothing reads this copy yet), then
    // the file synced, then the tail with the live read models' durability.
    let bulk = open(&sqlite_url(&path), Schema::ReadModels, Durability::Bulk).await?;
    projector.catch_up_into(&bulk).await?;
    bulk.close().await;
    std::fs::File::open(&path)
        .and_then(|file| file.sync_all())
        .map_err(io)?;
    let fresh = open(&sqlite_url(&path), Schema::ReadModels, Durability::Normal).await?;
    let caught_up = async {
        let position = projector.catch_up_into(&fresh).await?;
        let pointer_tmp = data_dir.join(format!("{POINTER}.tmp"));
        std::fs::write(&pointer_tmp, &name).map_err(io)?;
        std::fs::rename(&pointer_tmp, data_dir.join(POINTER)).map_err(io)?;
        Ok::<_, ProjectionError>(position)
    };
    let position = match caught_up.await {
        Ok(position) => position,
        Err(error) => {
            // Closed, so that its checkpoint task ends with it.
            fresh.close().await;
            return Err(error);
        }
    };
    let old = live.swap(fresh);
    old.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", old_path.display()));
    }
    tracing::info!(position, file = %name, "read models rebuilt and swapped in");
    Ok(position)
}

fn io(error: std::io::Error) -> ProjectionError {
    ProjectionError::Poison(format!("writing the rebuilt read models: {error}"))
}
