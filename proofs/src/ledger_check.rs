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

/// At most this many problems are listed; the rest are counted in `more_problems`.
pub const MAX_PROBLEMS: usize = 1_000;

/// What a check read and found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = LedgerReport)]
pub struct Report {
    pub ok: bool,
    /// Events read, in commit order.
    pub events: u64,
    /// Digests that verified (signature, key) and were held against the events.
    pub digests: u64,
    /// The latest digest's tree size and sequence, if any.
    pub latest_digest: Option<(u64, u64)>,
    /// The first [`MAX_PROBLEMS`] problems found.
    pub problems: Vec<Problem>,
    /// How many more were found.
    pub more_problems: u64,
}

/// Feeds events in commit order; [`LedgerCheck::finish`] gives the report.
pub struct LedgerCheck {
    /// Digests that verified, by tree size (several may share one).
    due: Vec<Digest>,
    next_due: usize,
    /// Leaves, as far as a digest reaches (no further: nothing would read them).
    frontier: Frontier,
    /// The next place in commit order expected.
    next: u64,
    chains: Option<HashMap<(String, String), StreamVerifier>>,
    /// The size the last digest whose root held was at.
    last_good: u64,
    report: Report,
}

impl LedgerCheck {
    /// Checks `digests` (as published or kept, oldest first; from any sequence on)
    /// against `keys` at once; with `chains`, also each stream's hash chain as its
    /// events go by.
    pub fn new(digests: &[Digest], keys: &PublicKeys, chains: bool) -> Self {
        let mut check = LedgerCheck {
            due: Vec::new(),
            next_due: 0,
            frontier: Frontier::default(),
            next: 0,
            chains: chains.then(HashMap::new),
            last_good: 0,
            report: Report {
                latest_digest: digests.last().map(|d| (d.tree_size, d.sequence)),
                ..Report::default()
            },
        };
        let mut previous: Option<&Digest> = None;
        for digest in digests {
            if let Some(previous) = previous {
                if digest == previous {
                    // The same digest kept twice (a held copy merged with the file).
                    continue;
                }
                if digest.sequence <= previous.sequence {
                    check.problem(Problem::DigestInvalid {
                        sequence: digest.sequence,
                        detail: format!(
                            "it comes after digest {} in the file: two histories were signed (a fork), or the file was reordered",
                            previous.sequence
                        ),
                    });
                    continue;
                }
                // Digests may be missing before the first one given (an auditor may
                // keep only some), but not between two given.
                if digest.sequence != previous.sequence + 1
                    || digest.previous != previous.chain_hash()
                {
                    check.problem(Problem::DigestMissing {
                        after: Some(previous.sequence),
                        before: digest.sequence,
                    });
                }
            } else if digest.sequence == 0 && digest.previous != NO_PREVIOUS {
                check.problem(Problem::DigestMissing {
                    after: None,
                    before: 0,
                });
            }
            match digest.verify(keys) {
                Ok(()) => check.due.push(digest.clone()),
                Err(error) => check.problem(Problem::DigestInvalid {
                    sequence: digest.sequence,
                    detail: error.to_string(),
                }),
            }
            previous = Some(digest);
        }
        check.report.digests = check.due.len() as u64;
        check.due.sort_by_key(|d| (d.tree_size, d.sequence));
        check
    }

    /// Keeps a problem, up to [`MAX_PROBLEMS`]; the rest are only counted.
    fn problem(&mut self, problem: Problem) {
        if self.report.problems.len() < MAX_PROBLEMS {
            self.report.problems.push(problem);
        } else {
            self.report.more_problems += 1;
        }
    }

    /// How far leaves matter: the largest digest still to be held against them.
    fn reach(&self) -> u64 {
        self.due.last().map_or(0, |d| d.tree_size)
    }

    /// The next event: at place `leaf` in commit order (places skipped since the last
    /// event are reported missing), with the leaf the log holds for it, if any. A place
    /// not after the last one is a problem of its own (the export is out of order).
    pub fn event(&mut self, leaf: u64, event: &RawEvent, logged: Option<Hash>) {
        if leaf < self.next {
            self.problem(Problem::EventChanged {
                leaf,
                aggregate_type: event.aggregate_type.clone(),
                aggregate_id: event.aggregate_id.clone(),
                sequence: event.sequence,
            });
            return;
        }
        self.skip_to(leaf);
        let hash = merkle::leaf_hash(&merkle::event_leaf(event));
        if logged.is_some_and(|logged| logged != hash) {
            self.problem(Problem::EventChanged {
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
            for failure in failures {
                self.problem(Problem::Chain { failure });
            }
        }
        self.report.events += 1;
        self.place(leaf, hash);
        self.next = leaf.saturating_add(1);
    }

    /// Reports places from the next expected up to `leaf` (exclusive) as missing.
    fn skip_to(&mut self, leaf: u64) {
        if leaf <= self.next {
            return;
        }
        self.problem(Problem::EventsMissing {
            from: self.next,
            to: leaf - 1,
        });
        // Nothing gives a gone event's leaf: zeros stand in, so the roots over it do
        // not hold; past every digest (a forged size or position) none are needed.
        let end = leaf.min(self.reach());
        for place in self.next..end {
            self.place(place, [0; 32]);
        }
        self.next = leaf;
    }

    /// The leaf at `place`, if it is within a digest's reach.
    fn place(&mut self, place: u64, leaf: Hash) {
        if place != self.frontier.size() || place >= self.reach() {
            return;
        }
        self.frontier.push(leaf);
        let size = self.frontier.size();
        while let Some(digest) = self.due.get(self.next_due).filter(|d| d.tree_size <= size) {
            if digest.tree_size == size {
                let root = self.frontier.root().unwrap_or_default();
                if digest.root().is_ok_and(|signed| signed == root) {
                    self.last_good = self.last_good.max(size);
                } else {
                    let problem = Problem::DigestRootMismatch {
                        sequence: digest.sequence,
                        tree_size: digest.tree_size,
                        from: self.last_good,
                        to: digest.tree_size,
                    };
                    self.problem(problem);
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
        let places = self.next;
        let truncated: Vec<Problem> = self.due[self.next_due..]
            .iter()
            .filter(|digest| digest.tree_size > places)
            .map(|digest| Problem::HistoryTruncated {
                sequence: digest.sequence,
                tree_size: digest.tree_size,
                events: places,
            })
            .collect();
        for problem in truncated {
            self.problem(problem);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::DigestSigner;
    use cqrs_es::persist::SerializedEvent;
    use serde_json::json;

    fn stream(n: usize) -> Vec<RawEvent> {
        let mut previous = domain::chain::GENESIS_HASH.to_string();
        (1..=n)
            .map(|sequence| {
                let mut event = SerializedEvent::new(
                    "a-1".into(),
                    sequence,
                    "account".into(),
                    "Noted".into(),
                    "1".into(),
                    json!({"n": sequence}),
                    json!({}),
                );
                domain::chain::seal(&mut event, &previous);
                previous = event.metadata["hash"].as_str().unwrap().to_string();
                RawEvent {
                    aggregate_type: event.aggregate_type,
                    aggregate_id: event.aggregate_id,
                    sequence,
                    event_type: event.event_type,
                    event_version: event.event_version,
                    payload_json: event.payload.to_string(),
                    metadata: event.metadata,
                }
            })
            .collect()
    }

    /// Digests at each of `sizes` over `events`, chained, from sequence 0.
    fn digests(signer: &DigestSigner, events: &[RawEvent], sizes: &[usize]) -> Vec<Digest> {
        let mut frontier = Frontier::default();
        let mut out: Vec<Digest> = Vec::new();
        for (n, event) in events.iter().enumerate() {
            frontier.push(merkle::leaf_hash(&merkle::event_leaf(event)));
            if sizes.contains(&(n + 1)) {
                let digest = signer.sign(
                    frontier.size(),
                    &frontier.root().unwrap(),
                    "2026-12-07T10:00:00.000Z",
                    out.last(),
                );
                out.push(digest);
            }
        }
        out
    }

    fn run(digests: &[Digest], keys: &PublicKeys, events: &[RawEvent], places: u64) -> Report {
        let mut check = LedgerCheck::new(digests, keys, true);
        for (leaf, event) in events.iter().enumerate() {
            check.event(leaf as u64, event, None);
        }
        check.finish(places)
    }

    #[test]
    fn a_forged_size_costs_nothing_and_is_named() {
        let signer = DigestSigner::new(ed25519_dalek::SigningKey::from_bytes(&[5; 32]));
        let keys: PublicKeys = [signer.public_key()].into_iter().collect();
        let events = stream(6);
        let digests = digests(&signer, &events, &[2, 6]);
        assert!(run(&digests, &keys, &events, 6).ok);
        // The log says there are 2^64 - 1 places: answered at once.
        let report = run(&digests, &keys, &events, u64::MAX);
        assert_eq!(
            report.problems,
            vec![Problem::EventsMissing {
                from: 6,
                to: u64::MAX - 1
            }]
        );
    }

    #[test]
    fn digests_may_start_anywhere_and_repeat_but_not_fork_or_skip() {
        let signer = DigestSigner::new(ed25519_dalek::SigningKey::from_bytes(&[5; 32]));
        let keys: PublicKeys = [signer.public_key()].into_iter().collect();
        let events = stream(8);
        let all = digests(&signer, &events, &[2, 4, 6, 8]);
        // Only the last two kept, one of them twice.
        let kept = [all[2].clone(), all[3].clone(), all[3].clone()];
        let report = run(&kept, &keys, &events, 8);
        assert!(report.ok, "{:?}", report.problems);
        assert_eq!(report.digests, 2);
        // One missing between two given.
        let report = run(&[all[0].clone(), all[2].clone()], &keys, &events, 8);
        assert_eq!(
            report.problems,
            vec![Problem::DigestMissing {
                after: Some(0),
                before: 2
            }]
        );
        // Another digest numbered 3 over another history: a fork.
        let other = stream(8)
            .into_iter()
            .map(|mut e| {
                e.aggregate_id = "a-2".into();
                e
            })
            .collect::<Vec<_>>();
        let forked = digests(&signer, &other, &[2, 4, 6, 8]);
        let report = run(&[all[3].clone(), forked[3].clone()], &keys, &events, 8);
        assert!(matches!(
            report.problems[..],
            [Problem::DigestInvalid { sequence: 3, .. }]
        ));
    }
}
