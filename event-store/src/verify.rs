//! Checking the stored hash chains: every stream of the given kinds, read back whole and
//! checked link by link. One function for the auditors' endpoint and the benchmark.

use domain::chain::{ChainFailure, StreamVerifier};

/// How many events of a stream are read and checked at a time.
const PART: u64 = 2_000;

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
            // A part at a time: a busy account's stream runs to hundreds of thousands of
            // events, which held whole would be hundreds of megabytes.
            let mut verifier = StreamVerifier::default();
            // From 0: an event slipped in before the first is read, and so caught.
            let mut from = 0;
            // DynamoDB reads a stream whole whatever the part (our query has no start).
            let part_size = if self.backend.reads_streams_whole() {
                u64::MAX
            } else {
                PART
            };
            loop {
                let part = self.stream_from(kind, id, from, part_size).await?;
                check.events += part.len();
                verifier.check(&part, &mut check.failures);
                match part.last() {
                    Some(last) if part.len() as u64 == part_size => from = last.sequence as u64 + 1,
                    _ => break,
                }
            }
            check.streams += 1;
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
