//! Checking the stored hash chains: every stream of the given kinds, read back whole and
//! checked link by link. One function for the auditors' endpoint and the benchmark.

use domain::chain::{verify_stream, ChainFailure};

use crate::error::StoreError;
use crate::store::EventStore;

/// What a verification read and found.
#[derive(Debug, Clone, Default)]
pub struct ChainCheck {
    pub streams: usize,
    pub events: usize,
    pub failures: Vec<ChainFailure>,
}

impl EventStore {
    /// Verifies each of `streams` (aggregate type, id).
    pub async fn verify_chains(
        &self,
        streams: &[(&str, String)],
    ) -> Result<ChainCheck, StoreError> {
        let mut check = ChainCheck::default();
        for (kind, id) in streams {
            let events = self.stream(kind, id).await?;
            check.streams += 1;
            check.events += events.len();
            check.failures.extend(verify_stream(&events));
        }
        Ok(check)
    }

    /// Verifies every stream of the given aggregate types.
    pub async fn verify_all_chains(&self, kinds: &[&str]) -> Result<ChainCheck, StoreError> {
        let mut streams = Vec::new();
        for kind in kinds {
            for id in self.open_streams(kind, &[]).await? {
                streams.push((*kind, id));
            }
        }
        self.verify_chains(&streams).await
    }
}
