//! The master key in AWS: a symmetric KMS key that wraps each client's data key
//! (`Encrypt`/`Decrypt`), the client's id bound in as encryption context, so a wrapped
//! key moved to another client does not open. The key never leaves KMS, and CloudTrail
//! records each use.

use std::collections::HashMap;

use aws_sdk_kms::primitives::Blob;

use crate::error::StoreError;
use crate::personal::{not_opened, MasterKey};

/// The variable naming the KMS key (symmetric, ENCRYPT_DECRYPT) that clients' data keys
/// are wrapped under in AWS.
pub const DATA_KEY_VAR: &str = "CRM_DATA_KEY_KMS_KEY";

/// The store on DynamoDB in `tables`, encrypting clients' personal data under data keys
/// wrapped by KMS key `data_key` when one is named. Every AWS process opens its store
/// here, so that each reads what the others sealed.
pub fn dynamo_store(
    dynamo: aws_sdk_dynamodb::Client,
    tables: crate::DynamoTables,
    kms: &aws_sdk_kms::Client,
    data_key: Option<&str>,
) -> Result<crate::EventStore, StoreError> {
    let store = crate::EventStore::new(crate::Backend::dynamo(dynamo, tables));
    match data_key {
        Some(key) => store.with_master(std::sync::Arc::new(KmsMaster::new(kms.clone(), key))),
        None => Ok(store),
    }
}

/// [`DATA_KEY_VAR`] from `var`, if set and not blank.
pub fn data_key_from(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    var(DATA_KEY_VAR).filter(|key| !key.trim().is_empty())
}

/// The encryption context's one entry: which client a data key is.
const OWNER: &str = "ledgerline-data-key-owner";

pub struct KmsMaster {
    client: aws_sdk_kms::Client,
    key: String,
}

impl KmsMaster {
    /// Wraps under KMS key `key` (id, ARN or alias).
    pub fn new(client: aws_sdk_kms::Client, key: impl Into<String>) -> Self {
        KmsMaster {
            client,
            key: key.into(),
        }
    }
}

fn unavailable<E: std::error::Error>(error: E) -> StoreError {
    StoreError::Unavailable(aws_sdk_kms::error::DisplayErrorContext(error).to_string())
}

#[async_trait::async_trait]
impl MasterKey for KmsMaster {
    async fn wrap(&self, owner: &str, key: &[u8; 32]) -> Result<Vec<u8>, StoreError> {
        let output = self
            .client
            .encrypt()
            .key_id(&self.key)
            .plaintext(Blob::new(key.as_slice()))
            .set_encryption_context(Some(HashMap::from([(
                OWNER.to_string(),
                owner.to_string(),
            )])))
            .send()
            .await
            .map_err(unavailable)?;
        output
            .ciphertext_blob()
            .map(|blob| blob.as_ref().to_vec())
            .ok_or_else(|| StoreError::Unavailable("KMS answered no ciphertext".into()))
    }

    async fn unwrap(&self, owner: &str, wrapped: &[u8]) -> Result<[u8; 32], StoreError> {
        let output = self
            .client
            .decrypt()
            .key_id(&self.key)
            .ciphertext_blob(Blob::new(wrapped))
            .set_encryption_context(Some(HashMap::from([(
                OWNER.to_string(),
                owner.to_string(),
            )])))
            .send()
            .await;
        match output {
            Ok(output) => output
                .plaintext()
                .and_then(|plain| <[u8; 32]>::try_from(plain.as_ref()).ok())
                .ok_or_else(|| not_opened(owner)),
            // Another client's key, another KMS key, or bytes altered.
            Err(error)
                if error.as_service_error().is_some_and(|e| {
                    e.is_invalid_ciphertext_exception() || e.is_incorrect_key_exception()
                }) =>
            {
                Err(not_opened(owner))
            }
            Err(error) => Err(unavailable(error)),
        }
    }
}
