//! Clients' data keys on DynamoDB, in the idempotency table under a partition no caller
//! can have (callers are staff ids), as account numbers are: one item per client, its
//! key wrapped under the KMS master key (`Wrapped`), or, once erased, a tombstone
//! (`DestroyedAt`) that stops a key being made again.
//!
//! Destroying overwrites the item, so no read of the table gives the wrapped key again.
//! DynamoDB's backups (point-in-time recovery, 35 days; on-demand backups) still hold
//! it until they age out, and the KMS key still unwraps it: the erasure is complete in
//! AWS once those backups are gone (docs/audit.md).

use std::collections::HashMap;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use super::dynamo::{idempotency_key, record, unavailable, DynamoStore};
use crate::capabilities::{DataKey, DataKeys};
use crate::error::StoreError;

const KEYS: &str = "#data-keys";

fn refused<E: std::error::Error>(error: E) -> StoreError {
    StoreError::Unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string())
}

fn data_key(item: &HashMap<String, AttributeValue>) -> DataKey {
    match item.get("Wrapped").and_then(|v| v.as_b().ok()) {
        Some(wrapped) if !item.contains_key("DestroyedAt") => {
            DataKey::Live(wrapped.as_ref().to_vec())
        }
        _ => DataKey::Destroyed,
    }
}

#[async_trait::async_trait]
impl DataKeys for DynamoStore {
    async fn data_key(&self, owner: &str) -> Result<Option<DataKey>, StoreError> {
        let item = record(self.client(), self.tables(), KEYS, owner).await?;
        Ok(item.as_ref().map(data_key))
    }

    async fn create_data_key(&self, owner: &str, wrapped: &[u8]) -> Result<DataKey, StoreError> {
        let mut item = idempotency_key(KEYS, owner);
        item.insert("Wrapped".into(), AttributeValue::B(Blob::new(wrapped)));
        let put = self
            .client()
            .put_item()
            .table_name(&self.tables().idempotency)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(Caller)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(DataKey::Live(wrapped.to_vec())),
            // Another writer made one first, or the client was erased: theirs stands.
            Err(error) if error.code() == Some("ConditionalCheckFailedException") => self
                .data_key(owner)
                .await?
                .ok_or_else(|| unavailable(format!("the data key of {owner} vanished"))),
            Err(error) => Err(refused(error)),
        }
    }

    async fn destroy_data_key(&self, owner: &str, at: &str) -> Result<(), StoreError> {
        let mut tombstone = idempotency_key(KEYS, owner);
        tombstone.insert("DestroyedAt".into(), AttributeValue::S(at.to_string()));
        self.client()
            .put_item()
            .table_name(&self.tables().idempotency)
            .set_item(Some(tombstone))
            .send()
            .await
            .map_err(refused)?;
        Ok(())
    }

    /// A scan of the events table for erasures (start-up and the sweep, not requests).
    async fn erased_with_live_keys(&self) -> Result<Vec<String>, StoreError> {
        let mut erased = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client()
                .scan()
                .table_name(&self.tables().events)
                .filter_expression("AggregateType = :client AND EventType = :erased")
                .expression_attribute_values(":client", AttributeValue::S("client".into()))
                .expression_attribute_values(":erased", AttributeValue::S("ClientErased".into()))
                .projection_expression("AggregateId")
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(refused)?;
            for item in page.items() {
                if let Some(id) = item.get("AggregateId").and_then(|v| v.as_s().ok()) {
                    erased.push(id.clone());
                }
            }
            match page.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => break,
            }
        }
        let mut live = Vec::new();
        for owner in erased {
            if let Some(DataKey::Live(_)) = self.data_key(&owner).await? {
                live.push(owner);
            }
        }
        Ok(live)
    }

    async fn any_live_key(&self) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let mut start = None;
        loop {
            let page = self
                .client()
                .query()
                .table_name(&self.tables().idempotency)
                .consistent_read(true)
                .key_condition_expression("Caller = :keys")
                // `Wrapped` is one of DynamoDB's reserved words: named through `#wrapped`.
                .filter_expression(
                    "attribute_exists(#wrapped) AND attribute_not_exists(DestroyedAt)",
                )
                .expression_attribute_names("#wrapped", "Wrapped")
                .expression_attribute_values(":keys", AttributeValue::S(KEYS.into()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(refused)?;
            if let Some(item) = page.items().first() {
                let owner = item.get("IdempotencyKey").and_then(|v| v.as_s().ok());
                if let (Some(owner), DataKey::Live(wrapped)) = (owner, data_key(item)) {
                    return Ok(Some((owner.clone(), wrapped)));
                }
            }
            match page.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => return Ok(None),
            }
        }
    }
}
