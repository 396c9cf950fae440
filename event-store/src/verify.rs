//! Checking the stored hash chains: every stream of the given kinds, read back and
//! checked link by link. One function for the auditors' endpoints, the verification
//! runs and the benchmark.
//!
//! A whole-store pass can be taken in steps ([`EventStore::verify_step`]): each checks
//! whole streams from a [`VerifyCursor`] until it has read its budget of events, and says
//! where the next step starts. A run that persists the cursor with the step's findings
//! can stop anywhere (a restart, a lost lease) and go on without reading a stream twice
//! or leaving one out.

use domain::chain::{ChainFailure, RawEvent, StreamVerifier};
use serde::{Deserialize, Serialize};

/// How many events of a stream are read and checked at a time.
const PART: u64 = 2_000;
/// How many events a whole-store pass reads at a time.
const PAGE: u64 = 10_000;
/// How many of them are hashed between two yields to the runtime (a few milliseconds).
const HASH_PART: usize = 500;

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

/// Where a whole-store pass goes on from: an aggregate type (by name, so a cursor saved
/// before the list of types changed still means what it meant; empty: the first type)
/// and the last stream of that type checked in full (`None`: none yet).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyCursor {
    pub kind: String,
    pub after_id: Option<String>,
}

/// One step of a whole-store pass: what it found, and where the next starts (`None`:
/// the pass is complete).
#[derive(Debug, Clone, Default)]
pub struct VerifyStep {
    pub check: ChainCheck,
    pub next: Option<VerifyCursor>,
}

/// The stream ids of one aggregate type, sorted, kept from one step of a pass to the
/// next on a backend that cannot read in key order (DynamoDB): listing them scans the
/// whole table, which done at every step would cost a run as many scans as steps. A
/// stream created after its type was listed is left for the next pass.
#[derive(Debug, Default)]
pub struct StreamListing {
    kind: String,
    ids: Vec<String>,
}

impl EventStore {
    /// Verifies each of `streams` (aggregate type, id).
    pub async fn verify_chains(
        &self,
        streams: &[(&str, String)],
    ) -> Result<ChainCheck, StoreError> {
        let mut check = ChainCheck::default();
        for (kind, id) in streams {
            self.verify_stream_into(kind, id, &mut check).await?;
        }
        Ok(check)
    }

    async fn verify_stream_into(
        &self,
        kind: &str,
        id: &str,
        check: &mut ChainCheck,
    ) -> Result<(), StoreError> {
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
        Ok(())
    }

    /// Verifies every stream of the given aggregate types in one pass.
    pub async fn verify_all_chains(&self, kinds: &[&str]) -> Result<ChainCheck, StoreError> {
        let step = self
            .verify_step(kinds, &VerifyCursor::default(), usize::MAX)
            .await?;
        Ok(step.check)
    }

    /// Verifies whole streams of `kinds` from `from` until at least `budget` events are
    /// checked, finishing the stream it is in (so a step always moves on, however long
    /// the stream). On a backend that reads in key order, one sequential pass per type
    /// (the next page read while this one is hashed); otherwise stream by stream, in id
    /// order.
    pub async fn verify_step(
        &self,
        kinds: &[&str],
        from: &VerifyCursor,
        budget: usize,
    ) -> Result<VerifyStep, StoreError> {
        self.verify_step_listed(kinds, from, budget, &mut StreamListing::default())
            .await
    }

    /// [`Self::verify_step`], keeping the streams listed for the steps that follow.
    pub async fn verify_step_listed(
        &self,
        kinds: &[&str],
        from: &VerifyCursor,
        budget: usize,
        listing: &mut StreamListing,
    ) -> Result<VerifyStep, StoreError> {
        let first = if from.kind.is_empty() {
            0
        } else {
            kinds
                .iter()
                .position(|kind| *kind == from.kind)
                .ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "a verification cursor names {:?}, which is not a type being checked",
                        from.kind
                    ))
                })?
        };
        let mut check = ChainCheck::default();
        for (index, kind) in kinds.iter().enumerate().skip(first) {
            let after = if index == first {
                from.after_id.as_deref()
            } else {
                None
            };
            let stopped = match self.backend.key_order_scan() {
                Some(scan) => scan_kind(scan, kind, after, budget, &mut check).await?,
                None => {
                    self.kind_by_streams(kind, after, budget, &mut check, listing)
                        .await?
                }
            };
            let next = match (stopped, kinds.get(index + 1)) {
                (Some(after_id), _) => VerifyCursor {
                    kind: kind.to_string(),
                    after_id: Some(after_id),
                },
                (None, Some(next_kind)) if check.events >= budget => VerifyCursor {
                    kind: next_kind.to_string(),
                    after_id: None,
                },
                _ => continue,
            };
            return Ok(VerifyStep {
                check,
                next: Some(next),
            });
        }
        Ok(VerifyStep { check, next: None })
    }

    /// The streams of `kind` after `after`, one by one; the last one checked if the
    /// budget ran out before the end.
    async fn kind_by_streams(
        &self,
        kind: &str,
        after: Option<&str>,
        budget: usize,
        check: &mut ChainCheck,
        listing: &mut StreamListing,
    ) -> Result<Option<String>, StoreError> {
        if listing.kind != kind || listing.ids.is_empty() {
            let mut ids = self.open_streams(kind, &[]).await?;
            ids.sort_unstable();
            *listing = StreamListing {
                kind: kind.to_string(),
                ids,
            };
        }
        let from = after.map_or(0, |after| {
            listing.ids.partition_point(|id| id.as_str() <= after)
        });
        let ids = &listing.ids[from..];
        for (done, id) in ids.iter().enumerate() {
            self.verify_stream_into(kind, id, check).await?;
            if check.events >= budget && done + 1 < ids.len() {
                return Ok(Some(id.clone()));
            }
        }
        Ok(None)
    }
}

/// The streams of `kind` after `after` in key order; the last stream checked in full if
/// the budget ran out before the end.
async fn scan_kind(
    scan: &dyn crate::capabilities::KeyOrderScan,
    kind: &str,
    after: Option<&str>,
    budget: usize,
    check: &mut ChainCheck,
) -> Result<Option<String>, StoreError> {
    // From the start: before every key, so an event slipped in at sequence 0 is read and
    // caught. Going on: after every event of the last stream checked.
    let (after, start) = match after {
        None => ("", -1),
        Some(id) => (id, i64::MAX),
    };
    let mut page = scan.read_key_order(kind, after, start, PAGE).await?;
    let mut current: Option<(String, StreamVerifier)> = None;
    loop {
        let tail = page
            .last()
            .filter(|_| page.len() as u64 == PAGE)
            .map(|last| (last.aggregate_id.clone(), last.sequence as i64));
        let next = async {
            match &tail {
                Some((id, sequence)) => scan.read_key_order(kind, id, *sequence, PAGE).await,
                None => Ok(Vec::new()),
            }
        };
        // Hashing a page is tens of milliseconds of CPU with nothing to await: done a
        // part at a time, yielding between parts, so that the requests and the run's
        // lease renewal waiting on this thread get their turn. (On tokio's blocking
        // pool instead, the hashing took a third thread's share of the two cores and
        // agents' deposits waited longer: docs/performance.md.)
        let hashed = async {
            for part in page.chunks(HASH_PART) {
                let stopped = check_page(part, &mut current, budget, check);
                if stopped.is_some() {
                    return stopped;
                }
                tokio::task::yield_now().await;
            }
            None
        };
        let (next, stopped) = tokio::join!(next, hashed);
        if stopped.is_some() {
            return Ok(stopped);
        }
        page = next?;
        if page.is_empty() {
            return Ok(None);
        }
    }
}

/// Checks a page of a key-order pass, stream by stream. Stops at the first new stream
/// once `budget` events are checked, returning the last stream checked in full.
fn check_page(
    page: &[RawEvent],
    current: &mut Option<(String, StreamVerifier)>,
    budget: usize,
    check: &mut ChainCheck,
) -> Option<String> {
    for event in page {
        let same = current.as_ref().map(|(id, _)| id.as_str());
        if same != Some(event.aggregate_id.as_str()) {
            if let Some((done, _)) = current.as_ref() {
                if check.events >= budget {
                    return Some(done.clone());
                }
            }
            *current = Some((event.aggregate_id.clone(), StreamVerifier::default()));
            check.streams += 1;
        }
        if let Some((_, verifier)) = current.as_mut() {
            verifier.check(std::slice::from_ref(event), &mut check.failures);
        }
        check.events += 1;
    }
    None
}
