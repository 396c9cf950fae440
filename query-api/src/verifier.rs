//! The worker that runs auditors' whole-store verifications. A verification of a large
//! store outlasts any request (at 10M events, about a minute), so the request only
//! queues a run; this worker takes it under a lease and checks the store in steps, each
//! written with the cursor it reached ([`projections::verification_runs`]). A stop, a
//! crash or a lost lease costs at most the step under way; whoever takes the run next
//! goes on from the last step written.

use std::sync::Arc;
use std::time::Duration;

use event_store::{EventStore, VerifyCursor};
use projections::verification_runs::{Claimed, Progress, KEPT_FAILURES};
use projections::{LogEntry, SystemLog, VerificationRuns};
use tokio::sync::{watch, Notify};

use crate::audit::AGGREGATE_TYPES;

/// The runs, and a way to wake this process's worker when one is asked for.
#[derive(Clone)]
pub struct Verifications {
    pub runs: Arc<VerificationRuns>,
    wake: Arc<Notify>,
}

impl Verifications {
    pub fn new(log: &SystemLog) -> Self {
        Verifications {
            runs: Arc::new(log.verification_runs()),
            wake: Arc::new(Notify::new()),
        }
    }

    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }
}

/// How the worker paces itself.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// How long a taken run stays ours without a step written.
    pub lease: Duration,
    /// About how many events a step checks (it finishes the stream it is in).
    pub step_events: usize,
    /// How often an idle worker looks for runs asked for elsewhere, or left by a worker
    /// that died.
    pub idle: Duration,
}

impl Pace {
    /// A step of 100,000 events takes about a second here, well inside the lease.
    pub const DEFAULT: Pace = Pace {
        lease: Duration::from_secs(60),
        step_events: 100_000,
        idle: Duration::from_secs(5),
    };
}

pub struct Verifier {
    pub store: Arc<EventStore>,
    pub verifications: Verifications,
    pub log: Arc<SystemLog>,
    pub pace: Pace,
}

/// Why a run was left before its end.
enum Left {
    Stopping,
    LeaseLost,
    Failed(String),
}

impl Verifier {
    /// Takes and runs verifications until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let owner = uuid::Uuid::now_v7().to_string();
        loop {
            if *stop.borrow() {
                return;
            }
            match self.verifications.runs.claim(&owner, self.pace.lease).await {
                Ok(Some(claimed)) => {
                    let id = claimed.run.id.clone();
                    match self.work(claimed, &owner, &mut stop).await {
                        Ok(()) => continue,
                        Err(Left::LeaseLost) => {
                            tracing::warn!(run = %id, "verification run taken over by another worker");
                            continue;
                        }
                        Err(Left::Stopping) => {
                            self.give_back(&id, &owner).await;
                            return;
                        }
                        Err(Left::Failed(error)) => {
                            tracing::warn!(run = %id, %error, "verification step failed; the run is given back to be tried again");
                            self.failed_step(&id, &owner, &error).await;
                        }
                    }
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "could not look for verification runs"),
            }
            tokio::select! {
                _ = self.verifications.wake.notified() => {}
                _ = tokio::time::sleep(self.pace.idle) => {}
                // The sender gone (the app dropped unclosed) means stop too.
                changed = stop.changed() => if changed.is_err() { return },
            }
        }
    }

    /// One step, the lease renewed while it runs: a step finishes the stream it is in,
    /// and a stream of millions of events takes longer than the lease.
    async fn step(
        &self,
        id: &str,
        owner: &str,
        cursor: &VerifyCursor,
        listing: &mut event_store::StreamListing,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<event_store::VerifyStep, Left> {
        let step =
            self.store
                .verify_step_listed(&AGGREGATE_TYPES, cursor, self.pace.step_events, listing);
        tokio::pin!(step);
        loop {
            tokio::select! {
                step = &mut step => return step.map_err(|e| Left::Failed(e.to_string())),
                _ = stop.changed() => return Err(Left::Stopping),
                _ = tokio::time::sleep(self.pace.lease / 3) => {
                    let renewed = self.verifications.runs.renew(id, owner, self.pace.lease).await;
                    match renewed {
                        Ok(true) => {}
                        Ok(false) => return Err(Left::LeaseLost),
                        // Not fatal: the next renewal, or the step's write, may get through.
                        Err(error) => tracing::warn!(run = %id, %error, "could not renew a verification lease"),
                    }
                }
            }
        }
    }

    /// Records a failed step; if it was the last attempt, the system log says so.
    async fn failed_step(&self, id: &str, owner: &str, error: &str) {
        let runs = &self.verifications.runs;
        if let Err(error) = runs.failed_step(id, owner, error).await {
            tracing::warn!(run = %id, %error, "could not record a failed verification step");
            return;
        }
        if let Ok(Some(run)) = runs.get(id).await {
            if run.status == "failed" {
                let entry = LogEntry::new(
                    "error",
                    "integrity",
                    format!("verification of every stream could not finish: {error}"),
                )
                .actor(run.requested_by, Some("auditor"))
                .details(serde_json::json!({"run": id, "events_checked": run.events_checked}));
                self.log.record_or_warn(entry).await;
            }
        }
    }

    async fn give_back(&self, id: &str, owner: &str) {
        if let Err(error) = self.verifications.runs.release(id, owner).await {
            tracing::warn!(run = %id, %error, "could not give back a verification run");
        }
    }

    async fn work(
        &self,
        claimed: Claimed,
        owner: &str,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), Left> {
        let run = claimed.run;
        let mut cursor = match claimed.resume_at.as_deref() {
            None => VerifyCursor::default(),
            Some(text) => serde_json::from_str(text).map_err(|e| {
                Left::Failed(format!("the run's saved position cannot be read: {e}"))
            })?,
        };
        let mut steps = claimed.steps;
        let mut streams = run.streams_checked;
        let mut events = run.events_checked;
        let mut failure_count = run.failure_count;
        let mut failures = run.failures;
        let mut listing = event_store::StreamListing::default();
        loop {
            let step = self
                .step(&run.id, owner, &cursor, &mut listing, stop)
                .await?;
            steps += 1;
            streams += step.check.streams as i64;
            events += step.check.events as i64;
            failure_count += step.check.failures.len() as i64;
            for failure in step.check.failures {
                if failures.len() >= KEPT_FAILURES {
                    break;
                }
                failures.push(serde_json::to_value(failure).unwrap_or_default());
            }
            let resume_at = step
                .next
                .as_ref()
                .map(|next| serde_json::to_string(next).unwrap_or_default());
            let progress = Progress {
                steps,
                streams_checked: streams,
                events_checked: events,
                failure_count,
                failures: &failures,
                resume_at: resume_at.as_deref(),
            };
            let written = self
                .verifications
                .runs
                .record(&run.id, owner, self.pace.lease, progress)
                .await
                .map_err(|e| Left::Failed(e.to_string()))?;
            if !written {
                return Err(Left::LeaseLost);
            }
            match step.next {
                Some(next) => cursor = next,
                None => break,
            }
        }
        let entry = if failure_count == 0 {
            LogEntry::new(
                "info",
                "integrity",
                format!("verification of every stream: intact ({events} events)"),
            )
        } else {
            tracing::warn!(run = %run.id, failure_count, "hash-chain verification found tampering");
            LogEntry::new(
                "warn",
                "integrity",
                format!(
                    "verification of every stream: {failure_count} failures in {events} events"
                ),
            )
        };
        let entry = entry
            .actor(run.requested_by.clone(), Some("auditor"))
            .details(serde_json::json!({
                "run": run.id,
                "streams_checked": streams,
                "events_checked": events,
                "failure_count": failure_count,
                "steps": steps,
            }));
        self.log.record_or_warn(entry).await;
        Ok(())
    }
}
