//! Rebuilding the read models on the embedded store: for the admin API and `crm replay`.

use async_trait::async_trait;
use event_store::{EventStore, SqliteFeed};
use projections::{ReadStore, SystemLog};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Mutex;

pub(crate) struct EmbeddedRebuild {
    pub(crate) store: Arc<EventStore>,
    pub(crate) feed: SqliteFeed,
    pub(crate) read: Arc<ReadStore>,
    pub(crate) log: Arc<SystemLog>,
    pub(crate) data_dir: PathBuf,
    /// One rebuild at a time.
    pub(crate) running: Mutex<()>,
}

#[async_trait]
impl query_api::Rebuild for EmbeddedRebuild {
    async fn rebuild(&self) -> Result<i64, String> {
        let _one_at_a_time = self.running.lock().await;
        projections::rebuild_sqlite(
            self.store.clone(),
            self.feed.clone(),
            self.read.clone(),
            self.log.clone(),
            &self.data_dir,
        )
        .await
        .map_err(|e| e.to_string())
    }
}
