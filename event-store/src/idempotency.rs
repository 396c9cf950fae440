//! Durable idempotency records: the first request with a key claims it, runs, and stores
//! its response; a retry with the same key and body gets that response back and appends
//! nothing; the same key with another body is refused.

use serde::{Deserialize, Serialize};

use crate::backend::with_pool;
use crate::error::StoreError;
use crate::store::EventStore;

/// A response as it was first sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First use: run the request, then `complete` (or `release` on a server error).
    New,
    /// Seen and finished: answer with this.
    Replay(StoredResponse),
    /// The same key is being processed right now by another request.
    InProgress,
    /// The key was used with a different request.
    Mismatch,
}

const INSERT: &str =
    "INSERT INTO idempotency (caller, key, request_hash, created_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (caller, key) DO NOTHING";
const SELECT: &str =
    "SELECT request_hash, status, response_headers, response_body FROM idempotency \
     WHERE caller = $1 AND key = $2";
const COMPLETE: &str =
    "UPDATE idempotency SET status = $1, response_headers = $2, response_body = $3 \
     WHERE caller = $4 AND key = $5";
const RELEASE: &str = "DELETE FROM idempotency WHERE caller = $1 AND key = $2 AND status IS NULL";

type Row = (String, Option<i32>, Option<String>, Option<Vec<u8>>);

impl EventStore {
    /// Claims `key` for `caller` and a request whose hash is `request_hash`.
    pub async fn claim_idempotency(
        &self,
        caller: &str,
        key: &str,
        request_hash: &str,
    ) -> Result<Claim, StoreError> {
        #[cfg(feature = "dynamo")]
        if let crate::backend::Backend::Dynamo { client, tables, .. } = &self.backend {
            return crate::dynamo::claim(client, tables, caller, key, request_hash).await;
        }
        let now = chrono::Utc::now().to_rfc3339();
        let (inserted, row): (u64, Option<Row>) = with_pool!(&self.backend, pool => {
            let inserted = sqlx::query(INSERT).bind(caller).bind(key).bind(request_hash).bind(&now).execute(pool).await?;
            let row = sqlx::query_as(SELECT).bind(caller).bind(key).fetch_optional(pool).await?;
            (inserted.rows_affected(), row)
        });
        if inserted == 1 {
            return Ok(Claim::New);
        }
        let Some((stored_hash, status, headers, body)) = row else {
            // Released between our insert attempt and the read: the caller may retry.
            return Ok(Claim::InProgress);
        };
        if stored_hash != request_hash {
            return Ok(Claim::Mismatch);
        }
        match status {
            None => Ok(Claim::InProgress),
            Some(status) => Ok(Claim::Replay(StoredResponse {
                status: u16::try_from(status).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                headers: serde_json::from_str(headers.as_deref().unwrap_or("[]"))?,
                body: body.unwrap_or_default(),
            })),
        }
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
        with_pool!(&self.backend, pool => {
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
        with_pool!(&self.backend, pool => {
            sqlx::query(RELEASE).bind(caller).bind(key).execute(pool).await?;
        });
        Ok(())
    }
}
