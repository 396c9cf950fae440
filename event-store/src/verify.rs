//! Checking the stored hash chains: every stream of the given kinds, read back whole and
//! checked link by link. One function for the auditors' endpoint and the benchmark.

use domain::chain::{ChainFailure, StreamVerifier};

/// How many events of a stream are read and checked at a time.
const PART: u64 = 2_000;
/// How many events a whole-store pass reads at a time.
const PAGE: u64 = 10_000;

use crate::capabilities::EventLog;
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
                // Payloads as stored text: hashed without being parsed.
                let part = self
                    .backend
                    .read_stream_raw(kind, id, from, u64::MAX, part_size)
                    .await?;
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

    /// Verifies every stream of the given aggregate types: on a backend that reads in
    /// key order, in one sequential pass per type (the next page read while this one is
    /// hashed); otherwise stream by stream.
    pub async fn verify_all_chains(&self, kinds: &[&str]) -> Result<ChainCheck, StoreError> {
        let Some(scan) = self.backend.key_order_scan() else {
            let mut streams = Vec::new();
            for kind in kinds {
                for id in self.open_streams(kind, &[]).await? {
                    streams.push((*kind, id));
                }
            }
            return self.verify_chains(&streams).await;
        };
        let mut check = ChainCheck::default();
        for kind in kinds {
            // Before every key: an event slipped in at sequence 0 is read, and so caught.
            let mut page = scan.read_key_order(kind, "", -1, PAGE).await?;
            let mut current: Option<(String, StreamVerifier)> = None;
            loop {
                let next = async {
                    match page.last() {
                        Some(last) if page.len() as u64 == PAGE => {
                            let after = last.sequence as i64;
                            scan.read_key_order(kind, &last.aggregate_id, after, PAGE)
                                .await
                        }
                        _ => Ok(Vec::new()),
                    }
                };
                let hashed = async {
                    for event in &page {
                        let same = current.as_ref().map(|(id, _)| id.as_str());
                        if same != Some(event.aggregate_id.as_str()) {
                            current = Some((event.aggregate_id.clone(), StreamVerifier::default()));
                            check.streams += 1;
                        }
                        if let Some((_, verifier)) = current.as_mut() {
                            verifier.check(std::slice::from_ref(event), &mut check.failures);
                        }
                    }
                    check.events += page.len();
                };
                let (next, ()) = tokio::join!(next, hashed);
                page = next?;
                if page.is_empty() {
                    break;
                }
            }
        }
        Ok(check)
    }
}
