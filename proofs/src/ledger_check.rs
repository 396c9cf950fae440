//! Checking a ledger against its signed digests, one event at a time in commit order:
//! what the API's check and the offline verifier share. Given the events (with their
//! places in commit order), the leaves the store's Merkle log holds for them, and the
//! digests, it names:
//!
//! - an event whose leaf is not the one logged for it (changed, even with its chain
//!   hashes recomputed; or two events swapped);
//! - a place in commit order whose event is gone (a deleted event or stream, or history
//!   cut short);
//! - a broken hash chain within a stream;
//! - a digest whose signature fails or whose key is unknown (forged or edited), one
//!   missing from the sequence, and each digest whose root the events no longer give
//!   (the history it signed was rewritten, log and all) with the places it could be;
//! - a digest over more events than there are (history truncated).

use std::collections::HashMap;

use domain::chain::{ChainFailure, RawEvent, StreamVerifier};
use domain::merkle::{self, Frontier, Hash};
use serde::Serialize;

use crate::digest::{Digest, PublicKeys, NO_PREVIOUS};

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "problem", rename_all = "snake_case")]
#[schema(as = LedgerProblem)]
pub enum Problem {
    /// The event at this place does not give the leaf logged for it.
    EventChanged {
        leaf: u64,
        aggregate_type: String,
        aggregate_id: String,
        sequence: usize,
    },
    /// The events at places `from..=to` in commit order are gone.
    EventsMissing { from: u64, to: u64 },
    /// A hash chain within a stream is broken.
    Chain {
        #[schema(value_type = Object)]
        failure: ChainFailure,
    },
    /// A digest that does not verify: forged, edited, or signed by an unknown key.
    DigestInvalid { sequence: u64, detail: String },
    /// Digests are missing from the sequence (or one names another as previous).
    DigestMissing { after: Option<u64>, before: u64 },
    /// The events no longer give this digest's root: history up to its size was
    /// rewritten. The change lies among the places `from..to` (after the last digest
    /// whose root still holds).
    DigestRootMismatch {
        sequence: u64,
        tree_size: u64,
        from: u64,
        to: u64,
    },
    /// A digest covers more events than there are: history was cut short.
    HistoryTruncated {
        sequence: u64,
        tree_size: u64,
        events: u64,
    },
}

/// What a check read and found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = LedgerReport)]
pub struct Report {
    pub ok: bool,
    /// Events read, in commit order.
    pub events: u64,
    /// Digests checked (signature, place in the sequence, root).
    pub digests: u64,
    /// The latest digest's tree size and sequence, if any.
    pub latest_digest: Option<(u64, u64)>,
    pub problems: Vec<Problem>,
}

/// Feeds events in commit order; [`LedgerCheck::finish`] gives the report.
pub struct LedgerCheck {
    /// Digests that verified, by tree size (several may share one).
    due: Vec<Digest>,
    next_due: usize,
    frontier: Frontier,
    chains: Option<HashMap<(String, String), StreamVerifier>>,
    /// The size the last digest whose root held was at.
    last_good: u64,
    report: Report,
}

impl LedgerCheck {
    /// Checks `digests` (as published, in order) against `keys` at once; with
    /// `chains`, also each stream's hash chain as its events go by.
    pub fn new(digests: &[Digest], keys: &PublicKeys, chains: bool) -> Self {
        let mut report = Report {
            digests: digests.len() as u64,
            latest_digest: digests.last().map(|d| (d.tree_size, d.sequence)),
            ..Report::default()
        };
        let mut previous: Option<&Digest> = None;
        let mut due = Vec::new();
        for digest in digests {
            let expected = previous.map_or(0, |p| p.sequence + 1);
            let link = previous.map_or(NO_PREVIOUS.to_string(), Digest::chain_hash);
            if digest.sequence != expected || digest.previous != link {
                report.problems.push(Problem::DigestMissing {
                    after: previous.map(|p| p.sequence),
                    before: digest.sequence,
                });
            }
            match digest.verify(keys) {
                Ok(()) => due.push(digest.clone()),
                Err(error) => report.problems.push(Problem::DigestInvalid {
                    sequence: digest.sequence,
                    detail: error.to_string(),
                }),
            }
            previous = Some(digest);
        }
        due.sort_by_key(|d| (d.tree_size, d.sequence));
        LedgerCheck {
            due,
            next_due: 0,
            frontier: Frontier::default(),
            chains: chains.then(HashMap::new),
            last_good: 0,
            report,
        }
    }

    /// The next event: at place `leaf` in commit order (places skipped since the last
    /// event are reported missing), with the leaf the log holds for it, if any.
    pub fn event(&mut self, leaf: u64, event: &RawEvent, logged: Option<Hash>) {
        self.skip_to(leaf);
        let hash = merkle::leaf_hash(&merkle::event_leaf(event));
        if logged.is_some_and(|logged| logged != hash) {
            self.report.problems.push(Problem::EventChanged {
                leaf,
                aggregate_type: event.aggregate_type.clone(),
                aggregate_id: event.aggregate_id.clone(),
                sequence: event.sequence,
            });
        }
        if let Some(chains) = &mut self.chains {
            let mut failures = Vec::new();
            chains
                .entry((event.aggregate_type.clone(), event.aggregate_id.clone()))
                .or_default()
                .check(std::slice::from_ref(event), &mut failures);
            self.report.problems.extend(
                failures
                    .into_iter()
                    .map(|failure| Problem::Chain { failure }),
            );
        }
        self.report.events += 1;
        self.push(hash);
    }

    /// Reports places up to `leaf` (exclusive) with no event as missing.
    fn skip_to(&mut self, leaf: u64) {
        let from = self.frontier.size();
        if leaf > from {
            self.report
                .problems
                .push(Problem::EventsMissing { from, to: leaf - 1 });
            for _ in from..leaf {
                // Nothing gives a gone event's leaf: the roots over it will not hold.
                self.push([0; 32]);
            }
        }
    }

    fn push(&mut self, leaf: Hash) {
        self.frontier.push(leaf);
        let size = self.frontier.size();
        while let Some(digest) = self.due.get(self.next_due).filter(|d| d.tree_size <= size) {
            if digest.tree_size == size {
                let root = self.frontier.root().unwrap_or_default();
                if digest.root().is_ok_and(|signed| signed == root) {
                    self.last_good = self.last_good.max(size);
                } else {
                    self.report.problems.push(Problem::DigestRootMismatch {
                        sequence: digest.sequence,
                        tree_size: digest.tree_size,
                        from: self.last_good,
                        to: digest.tree_size,
                    });
                }
            }
            self.next_due += 1;
        }
    }

    /// Ends the check: `places` is how many places the log says there are (the log's
    /// size, or the highest place seen plus one); places past the last event are
    /// missing, and digests past them cover history that is gone.
    pub fn finish(mut self, places: u64) -> Report {
        self.skip_to(places);
        let size = self.frontier.size();
        for digest in &self.due[self.next_due..] {
            self.report.problems.push(Problem::HistoryTruncated {
                sequence: digest.sequence,
                tree_size: digest.tree_size,
                events: size,
            });
        }
        self.report.ok = self.report.problems.is_empty();
        self.report
    }
}

/// How many events the store check reads at a time.
const PAGE: u64 = 10_000;

/// Checks the store's logged events against its Merkle log and `digests` (see the
/// module's doc), chains included.
pub async fn check_store(
    log: &dyn event_store::MerkleStorage,
    digests: &[Digest],
    keys: &PublicKeys,
) -> Result<Report, event_store::StoreError> {
    let size = log.log_size().await?;
    let mut check = LedgerCheck::new(digests, keys, true);
    let mut next = 0;
    while next < size {
        let events: Vec<(u64, RawEvent)> = log
            .leaf_events(next, PAGE)
            .await?
            .into_iter()
            .take_while(|(leaf, _)| *leaf < size)
            .collect();
        let Some(&(last, _)) = events.last() else {
            break;
        };
        let indices: Vec<u64> = events
            .iter()
            .map(|(leaf, _)| merkle::perfect_index(*leaf, 0))
            .collect();
        let logged = log.log_nodes(&indices).await?;
        for (n, (leaf, event)) in events.iter().enumerate() {
            let stored = logged.get(&merkle::perfect_index(*leaf, 0)).copied();
            check.event(*leaf, event, stored);
            // Hashing a page takes tens of milliseconds: let other tasks in between.
            if n % 500 == 499 {
                tokio::task::yield_now().await;
            }
        }
        next = last + 1;
    }
    Ok(check.finish(size))
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::EventChanged { leaf, aggregate_type, aggregate_id, sequence } => write!(
                f,
                "event {aggregate_type}/{aggregate_id} #{sequence} (place {leaf}) is not the event logged there: modified, or moved"
            ),
            Problem::EventsMissing { from, to } if from == to => {
                write!(f, "the event at place {from} is gone (deleted)")
            }
            Problem::EventsMissing { from, to } => {
                write!(f, "the events at places {from} to {to} are gone (deleted or cut off)")
            }
            Problem::Chain { failure } => write!(
                f,
                "the hash chain of {}/{} breaks at #{}: {:?}",
                failure.aggregate_type, failure.aggregate_id, failure.sequence, failure.problem
            ),
            Problem::DigestInvalid { sequence, detail } => {
                write!(f, "digest {sequence} does not verify: {detail}")
            }
            Problem::DigestMissing { after: Some(after), before } => write!(
                f,
                "digests are missing between {after} and {before} (or {before} does not follow {after})"
            ),
            Problem::DigestMissing { after: None, before } => {
                write!(f, "digests are missing before {before}")
            }
            Problem::DigestRootMismatch { sequence, tree_size, from, to } => write!(
                f,
                "digest {sequence} signed another history of its {tree_size} events: the events at places {from} to {} were rewritten",
                to.saturating_sub(1)
            ),
            Problem::HistoryTruncated { sequence, tree_size, events } => write!(
                f,
                "digest {sequence} covers {tree_size} events but only {events} remain: history was cut short"
            ),
        }
    }
}
