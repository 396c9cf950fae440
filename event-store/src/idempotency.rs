//! Durable idempotency records: the first request with a key claims it, runs, and stores
//! its response; a retry with the same key and body gets that response back and appends
//! nothing; the same key with another body is refused.
//!
//! A claim is a lease: its holder renews it while the request runs. If the holder dies
//! (`kill -9`, a lost machine) the lease runs out and the next retry takes the claim over
//! as a *recovery*: the request runs again, and every command in it that finds its events
//! already in the stream (the key is in their metadata) answers from them instead of
//! deciding again — so the retry gets the original outcome, or the effect happens once.

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::store::EventStore;

/// A response as it was first sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// How long a claim holds without being renewed.
pub const LEASE: std::time::Duration = std::time::Duration::from_secs(10);

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Ours now: run the request (recovering, if an earlier holder's lease ran out), then
    /// `complete` (or `release` on a server error). `claimed_at_ms` is when the key was
    /// first claimed, the same on every recovery, from which ids are derived.
    New {
        claimed_at_ms: i64,
        recovering: bool,
    },
    /// Seen and finished: answer with this.
    Replay(StoredResponse),
    /// The same key is being processed right now by another request.
    InProgress,
    /// The key was used with a different request.
    Mismatch,
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(crate) fn lease_end(lease: std::time::Duration) -> i64 {
    now_ms() + lease.as_millis() as i64
}

pub(crate) fn millis_of(created_at: &str) -> Result<i64, StoreError> {
    chrono::DateTime::parse_from_rfc3339(created_at)
        .map(|time| time.timestamp_millis())
        .map_err(|e| StoreError::Corrupt(format!("idempotency created_at: {e}")))
}

impl EventStore {
    /// Claims `key` for `caller` and a request whose hash is `request_hash`, for `lease`
    /// (see [`LEASE`]) unless renewed.
    pub async fn claim_idempotency(
        &self,
        caller: &str,
        key: &str,
        request_hash: &str,
        lease: std::time::Duration,
    ) -> Result<Claim, StoreError> {
        self.backend
            .records()
            .claim(caller, key, request_hash, lease)
            .await
    }

    /// Extends the lease of a claim still being worked on to `lease` from now.
    pub async fn renew_idempotency(
        &self,
        caller: &str,
        key: &str,
        lease: std::time::Duration,
    ) -> Result<(), StoreError> {
        self.backend.records().renew(caller, key, lease).await
    }

    /// Stores the response of a claimed key.
    pub async fn complete_idempotency(
        &self,
        caller: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        self.backend.records().complete(caller, key, response).await
    }

    /// Gives up a claimed key whose request failed on our side, so a retry may run.
    pub async fn release_idempotency(&self, caller: &str, key: &str) -> Result<(), StoreError> {
        self.backend.records().release(caller, key).await
    }
}
