//! Account numbers: the store's sequence hands each account one number, once. A retried
//! opening (same account id) gets the same number back; two accounts never share one.

use domain::{AccountId, AccountNumber};

use crate::backend::Backend;
use crate::error::StoreError;
use crate::store::EventStore;

/// One statement on both SQL backends: insert, or find the row a retry inserted before.
const ALLOCATE: &str = "INSERT INTO account_numbers (account_id) VALUES ($1) \
     ON CONFLICT (account_id) DO UPDATE SET account_id = excluded.account_id \
     RETURNING number";

impl EventStore {
    /// The number of account `account`, allocated on first call.
    pub async fn allocate_account_number(
        &self,
        account: AccountId,
    ) -> Result<AccountNumber, StoreError> {
        let id = account.to_string();
        let sequence: i64 = match self.backend() {
            // The events' pool (synced): the number is on disk before the opening is.
            Backend::Sqlite { pool, .. } => {
                sqlx::query_scalar(ALLOCATE)
                    .bind(&id)
                    .fetch_one(pool)
                    .await?
            }
            Backend::Postgres { pool, .. } => {
                sqlx::query_scalar(ALLOCATE)
                    .bind(&id)
                    .fetch_one(pool)
                    .await?
            }
            #[cfg(feature = "dynamo")]
            Backend::Dynamo { client, tables, .. } => {
                crate::dynamo::allocate_number(client, tables, &id).await?
            }
        };
        let sequence = u64::try_from(sequence).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        AccountNumber::allocated(sequence).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}
