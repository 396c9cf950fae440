//! Digests in AWS: signed by an asymmetric KMS key the store's operators cannot use
//! (only the query service's role may call `kms:Sign`, and CloudTrail records every
//! call), and published to an S3 bucket with Object Lock in compliance mode, where no
//! one, the account's root included, can delete or overwrite a digest before its
//! retention ends (infra/).
//!
//! The KMS key is ECDSA P-256 (`ECC_NIST_P256`, signed `ECDSA_SHA_256` over the raw
//! message): what the AWS emulator the tests run offers, and what browsers verify.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::ChecksumAlgorithm;

use crate::digest::{Digest, SignError, Signer};
use crate::digest_file::{DigestLog, DigestLogError};
use crate::public_key::PublicKey;

fn sdk_error<E: std::error::Error>(error: E) -> String {
    aws_sdk_kms::error::DisplayErrorContext(error).to_string()
}

/// A KMS key that signs digests.
pub struct KmsSigner {
    client: aws_sdk_kms::Client,
    /// The key as configured: id, ARN or alias.
    key: String,
    public: PublicKey,
    id: String,
}

impl KmsSigner {
    /// The signer of KMS key `key`, whose public half is read once here.
    pub async fn connect(client: aws_sdk_kms::Client, key: &str) -> Result<Self, SignError> {
        let public = public_key(&client, key).await?;
        Ok(KmsSigner {
            client,
            key: key.to_string(),
            id: public.id(),
            public,
        })
    }
}

/// The public half of KMS key `key`, which must be an ECDSA P-256 key.
pub async fn public_key(client: &aws_sdk_kms::Client, key: &str) -> Result<PublicKey, SignError> {
    let output = client
        .get_public_key()
        .key_id(key)
        .send()
        .await
        .map_err(|e| SignError(format!("the public key of KMS key {key}: {}", sdk_error(e))))?;
    let der = output
        .public_key()
        .ok_or_else(|| SignError(format!("KMS key {key} gave no public key")))?;
    match PublicKey::from_der(der.as_ref()) {
        Ok(public @ PublicKey::P256(_)) => Ok(public),
        _ => Err(SignError(format!(
            "KMS key {key} is not an ECC_NIST_P256 signing key"
        ))),
    }
}

#[async_trait::async_trait]
impl Signer for KmsSigner {
    fn key_id(&self) -> &str {
        &self.id
    }

    fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    /// KMS answers a DER signature; digests carry r ‖ s, as Web Crypto verifies.
    async fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let output = self
            .client
            .sign()
            .key_id(&self.key)
            .message(Blob::new(message))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| SignError(format!("KMS key {}: {}", self.key, sdk_error(e))))?;
        let der = output
            .signature()
            .ok_or_else(|| SignError("KMS answered no signature".into()))?;
        let signature = p256::ecdsa::Signature::from_der(der.as_ref())
            .map_err(|e| SignError(format!("KMS's signature is not DER ECDSA: {e}")))?;
        Ok(signature.to_bytes().to_vec())
    }
}

/// Digests published to an S3 bucket, one object each: `digests/<sequence, 20
/// digits>.json`, so that keys sort in sequence order. Each is created only if absent
/// (`If-None-Match: *`): of two issuers, one publishes a sequence, the other is told.
/// Published objects never change (Object Lock), so those read once are kept in memory
/// and each read lists and fetches only what was published since.
pub struct S3Digests {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// The digests read so far, in key order, with their keys.
    known: tokio::sync::Mutex<Vec<(String, Digest)>>,
}

const PREFIX: &str = "digests/";

fn object_key(sequence: u64) -> String {
    format!("{PREFIX}{sequence:020}.json")
}

impl S3Digests {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3Digests {
            client,
            bucket: bucket.into(),
            known: tokio::sync::Mutex::new(Vec::new()),
        }
    }

    fn unavailable<E: std::error::Error>(&self, error: E) -> DigestLogError {
        DigestLogError::Unavailable(format!("bucket {}: {}", self.bucket, sdk_error(error)))
    }

    /// The digests' keys after `after`, in order.
    async fn keys_after(&self, after: Option<String>) -> Result<Vec<String>, DigestLogError> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(PREFIX)
                .set_start_after(after.clone())
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| self.unavailable(e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(String::from)),
            );
            match page.next_continuation_token() {
                Some(next) => token = Some(next.to_string()),
                None => return Ok(keys),
            }
        }
    }

    async fn get(&self, key: &str) -> Result<Digest, DigestLogError> {
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| DigestLogError::Unavailable(format!("{key}: {e}")))?
            .into_bytes();
        serde_json::from_slice(&bytes)
            .map_err(|e| DigestLogError::Unavailable(format!("{key} is not a digest: {e}")))
    }

    /// The keys published after those known (all of them, the first time).
    async fn newer(&self, known: &[(String, Digest)]) -> Result<Vec<String>, DigestLogError> {
        self.keys_after(known.last().map(|(key, _)| key.clone()))
            .await
    }
}

#[async_trait::async_trait]
impl DigestLog for S3Digests {
    async fn append(&self, digest: &Digest) -> Result<(), DigestLogError> {
        let key = object_key(digest.sequence);
        let body = serde_json::to_vec(digest).expect("a digest serializes");
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .if_none_match("*")
            // A bucket with Object Lock takes no object without a checksum.
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .body(body.into())
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(error)
                if matches!(
                    error.code(),
                    Some("PreconditionFailed" | "ConditionalRequestConflict")
                ) =>
            {
                Err(DigestLogError::Taken(digest.sequence))
            }
            Err(error) => Err(self.unavailable(error)),
        }
    }

    async fn read(&self) -> Result<Vec<Digest>, DigestLogError> {
        let mut known = self.known.lock().await;
        for key in self.newer(&known).await? {
            let digest = self.get(&key).await?;
            known.push((key, digest));
        }
        Ok(known.iter().map(|(_, digest)| digest.clone()).collect())
    }

    /// Only the last new digest is fetched; it is kept only if it directly follows those
    /// known (what is known always runs from the first digest without a gap).
    async fn last(&self) -> Result<Option<Digest>, DigestLogError> {
        let mut known = self.known.lock().await;
        let newer = self.newer(&known).await?;
        let Some(key) = newer.last() else {
            return Ok(known.last().map(|(_, digest)| digest.clone()));
        };
        let digest = self.get(key).await?;
        if newer.len() == 1 {
            known.push((key.clone(), digest.clone()));
        }
        Ok(Some(digest))
    }
}
