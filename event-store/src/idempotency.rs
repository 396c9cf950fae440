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

use crate::backend::Backend;
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

const INSERT: &str =
    "INSERT INTO idempotency (caller, key, request_hash, created_at, lease_until) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (caller, key) DO NOTHING";
const SELECT: &str =
    "SELECT request_hash, status, response_headers, response_body, created_at FROM idempotency \
     WHERE caller = $1 AND key = $2";
/// Takes over a claim whose lease ran out (rows claimed before leases existed have none).
const TAKE_OVER: &str = "UPDATE idempotency SET lease_until = $1 WHERE caller = $2 AND key = $3 \
     AND status IS NULL AND (lease_until IS NULL OR lease_until < $4)";
const RENEW: &str =
    "UPDATE idempotency SET lease_until = $1 WHERE caller = $2 AND key = $3 AND status IS NULL";
const COMPLETE: &str =
    "UPDATE idempotency SET status = $1, response_headers = $2, response_body = $3 \
     WHERE caller = $4 AND key = $5";
const RELEASE: &str = "DELETE FROM idempotency WHERE caller = $1 AND key = $2 AND status IS NULL";

type Row = (String, Option<i32>, Option<String>, Option<Vec<u8>>, String);

/// Runs `$body` with `$pool` bound to the pool idempotency records live in (SQLite's
/// own unsynced pool; PostgreSQL's one pool).
macro_rules! with_records {
    ($backend:expr, $pool:ident => $body:expr) => {
        match $backend {
            Backend::Sqlite {
                idempotency: $pool, ..
            } => $body,
            Backend::Postgres { pool: $pool, .. } => $body,
            #[cfg(feature = "dynamo")]
            Backend::Dynamo { .. } => unreachable!("DynamoDB is answered before SQL"),
        }
    };
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn lease_end(lease: std::time::Duration) -> i64 {
    now_ms() + lease.as_millis() as i64
}

fn millis_of(created_at: &str) -> Result<i64, StoreError> {
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
        #[cfg(feature = "dynamo")]
        if let crate::backend::Backend::Dynamo { client, tables, .. } = &self.backend {
            return crate::dynamo::claim(client, tables, caller, key, request_hash, lease).await;
        }
        let now = chrono::Utc::now();
        let created_at = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let (inserted, row): (u64, Option<Row>) = with_records!(&self.backend, pool => {
            let inserted = sqlx::query(INSERT).bind(caller).bind(key).bind(request_hash).bind(&created_at).bind(lease_end(lease)).execute(pool).await?;
            let row = sqlx::query_as(SELECT).bind(caller).bind(key).fetch_optional(pool).await?;
            (inserted.rows_affected(), row)
        });
        if inserted == 1 {
            return Ok(Claim::New {
                claimed_at_ms: now.timestamp_millis(),
                recovering: false,
            });
        }
        let Some((stored_hash, status, headers, body, created_at)) = row else {
            // Released between our insert attempt and the read: the caller may retry.
            return Ok(Claim::InProgress);
        };
        if stored_hash != request_hash {
            return Ok(Claim::Mismatch);
        }
        if let Some(status) = status {
            return Ok(Claim::Replay(StoredResponse {
                status: u16::try_from(status).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                headers: serde_json::from_str(headers.as_deref().unwrap_or("[]"))?,
                body: body.unwrap_or_default(),
            }));
        }
        let taken: u64 = with_records!(&self.backend, pool => {
            sqlx::query(TAKE_OVER).bind(lease_end(lease)).bind(caller).bind(key).bind(now_ms()).execute(pool).await?.rows_affected()
        });
        if taken == 1 {
            return Ok(Claim::New {
                claimed_at_ms: millis_of(&created_at)?,
                recovering: true,
            });
        }
        Ok(Claim::InProgress)
    }

    /// Extends the lease of a claim still being worked on to `lease` from now.
    pub async fn renew_idempotency(
        &self,
        caller: &str,
        key: &str,
        lease: std::time::Duration,
    ) -> Result<(), StoreError> {
        #[cfg(feature = "dynamo")]
        if let crate::backend::Backend::Dynamo { client, tables, .. } = &self.backend {
            return crate::dynamo::renew(client, tables, caller, key, lease_end(lease)).await;
        }
        with_records!(&self.backend, pool => {
            sqlx::query(RENEW).bind(lease_end(lease)).bind(caller).bind(key).execute(pool).await?;
        });
        Ok(())
    }

    /// Stores the response of a claimed key.
    pub async fn complete_idempotency(
        &self,
        caller: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        #[cfg(feature = "dynamo")]
        if let crate::backend::Backend::Dynamo { client, tables, .. } = &self.backend {
            return crate::dynamo::complete(client, tables, caller, key, response).await;
        }
        let headers = serde_json::to_string(&response.headers)?;
        let status = i32::from(response.status);
        with_records!(&self.backend, pool => {
            sqlx::query(COMPLETE).bind(status).bind(&headers).bind(&response.body).bind(caller).bind(key).execute(pool).await?;
        });
        Ok(())
    }

    /// Gives up a claimed key whose request failed on our side, so a retry may run.
    pub async fn release_idempotency(&self, caller: &str, key: &str) -> Result<(), StoreError> {
        #[cfg(feature = "dynamo")]
        if let crate::backend::Backend::Dynamo { client, tables, .. } = &self.backend {
            return crate::dynamo::release(client, tables, caller, key).await;
        }
        with_records!(&self.backend, pool => {
            sqlx::query(RELEASE).bind(caller).bind(key).execute(pool).await?;
        });
        Ok(())
    }
}
