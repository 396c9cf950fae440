//! Account numbers: the store's sequence hands each account one number, once. A retried
//! opening (same account id) gets the same number back; two accounts never share one.

use domain::{AccountId, AccountNumber};

use crate::error::StoreError;
use crate::store::EventStore;

impl EventStore {
    /// The number of account `account`, allocated on first call.
    pub async fn allocate_account_number(
        &self,
        account: AccountId,
    ) -> Result<AccountNumber, StoreError> {
        let id = account.to_string();
        let sequence = self.backend.numbers().allocate(&id).await?;
        let sequence = u64::try_from(sequence).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        AccountNumber::allocated(sequence).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}
