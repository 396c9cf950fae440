//! A signed digest: the root of the Merkle log at a tree size, when it was taken, and
//! the key that signed it, chained to the digest before it so that a digest taken out
//! of the published sequence is noticed. The signed bytes are a few lines of text (see
//! [`Digest::signed_bytes`] and docs/audit.md), so a verifier in any language can
//! rebuild them.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use domain::merkle::Hash;
use ed25519_dalek::{Signer as _, SigningKey};
use merkle_sha2::{Digest as _, Sha256};
use serde::{Deserialize, Serialize};

use crate::public_key::PublicKey;

/// The format every digest names, and the first line of what it signs.
pub const FORMAT: &str = "ledgerline-digest-v1";

/// A signed statement of the Merkle log's root at a tree size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Digest {
    /// Always `ledgerline-digest-v1`.
    pub format: String,
    /// 0 for the first digest, then one more each time.
    pub sequence: u64,
    /// How many events the tree holds: the first `tree_size` in commit order.
    pub tree_size: u64,
    /// The RFC 6962 root of that tree, hex.
    pub root_hash: String,
    /// When it was signed (RFC 3339, UTC).
    pub issued_at: String,
    /// The signing key: the first 16 hex digits of SHA-256 of its raw public key
    /// (Ed25519's 32 bytes, P-256's 65-byte uncompressed point).
    pub key_id: String,
    /// SHA-256 of the previous digest's signed bytes, hex (64 zeros for the first).
    pub previous: String,
    /// The key's signature over [`Digest::signed_bytes`], base64: Ed25519, or ECDSA
    /// P-256 with SHA-256 as r ‖ s (64 bytes).
    pub signature: String,
}

/// Why a digest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest {0} is signed by key {1}, which is not among the public keys given")]
    UnknownKey(u64, String),
    #[error("digest {0}'s signature does not match what it says (forged or altered)")]
    BadSignature(u64),
    #[error("digest {0} is malformed: {1}")]
    Malformed(u64, String),
}

impl Digest {
    /// What the signature covers: one line per field, in this order, each ending in a
    /// newline.
    pub fn signed_bytes(&self) -> Vec<u8> {
        signed_bytes(
            self.sequence,
            self.tree_size,
            &self.root_hash,
            &self.issued_at,
            &self.key_id,
            &self.previous,
        )
    }

    /// SHA-256 of the signed bytes, hex: what the next digest's `previous` names.
    pub fn chain_hash(&self) -> String {
        hex::encode(Sha256::digest(self.signed_bytes()))
    }

    /// The root as bytes.
    pub fn root(&self) -> Result<Hash, DigestError> {
        let mut root = [0; 32];
        hex::decode_to_slice(&self.root_hash, &mut root).map_err(|_| {
            DigestError::Malformed(self.sequence, "root_hash is not 64 hex digits".into())
        })?;
        Ok(root)
    }

    /// Checks the signature against `keys`, by the key id the digest names.
    pub fn verify(&self, keys: &PublicKeys) -> Result<(), DigestError> {
        if self.format != FORMAT {
            return Err(DigestError::Malformed(
                self.sequence,
                format!("format {:?} is not {FORMAT}", self.format),
            ));
        }
        self.root()?;
        let key = keys
            .0
            .get(&self.key_id)
            .ok_or_else(|| DigestError::UnknownKey(self.sequence, self.key_id.clone()))?;
        let signature = BASE64
            .decode(&self.signature)
            .map_err(|_| DigestError::BadSignature(self.sequence))?;
        match key.verifies(&self.signed_bytes(), &signature) {
            true => Ok(()),
            false => Err(DigestError::BadSignature(self.sequence)),
        }
    }
}

fn signed_bytes(
    sequence: u64,
    tree_size: u64,
    root_hash: &str,
    issued_at: &str,
    key_id: &str,
    previous: &str,
) -> Vec<u8> {
    format!(
        "{FORMAT}\nsequence {sequence}\ntree_size {tree_size}\nroot_hash {root_hash}\n\
         issued_at {issued_at}\nkey_id {key_id}\nprevious {previous}\n"
    )
    .into_bytes()
}

/// The `previous` of the first digest.
pub const NO_PREVIOUS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Why a digest could not be signed.
#[derive(Debug, thiserror::Error)]
#[error("the digest could not be signed: {0}")]
pub struct SignError(pub String);

/// A key digests are signed with: a key file here, a KMS key in AWS.
#[async_trait::async_trait]
pub trait Signer: Send + Sync {
    /// Its public half's id ([`PublicKey::id`]).
    fn key_id(&self) -> &str;

    fn public_key(&self) -> PublicKey;

    /// The signature over `message`, as a digest carries it (before base64).
    async fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// The digest of `root` at `tree_size`, following `previous` (`None`: the first),
/// signed by `signer`.
pub async fn sign(
    signer: &dyn Signer,
    tree_size: u64,
    root: &Hash,
    issued_at: &str,
    previous: Option<&Digest>,
) -> Result<Digest, SignError> {
    let mut digest = unsigned(signer.key_id(), tree_size, root, issued_at, previous);
    let signature = signer.sign_message(&digest.signed_bytes()).await?;
    digest.signature = BASE64.encode(signature);
    Ok(digest)
}

fn unsigned(
    key_id: &str,
    tree_size: u64,
    root: &Hash,
    issued_at: &str,
    previous: Option<&Digest>,
) -> Digest {
    let (sequence, previous) = match previous {
        Some(digest) => (digest.sequence + 1, digest.chain_hash()),
        None => (0, NO_PREVIOUS.to_string()),
    };
    Digest {
        format: FORMAT.into(),
        sequence,
        tree_size,
        root_hash: hex::encode(root),
        issued_at: issued_at.into(),
        key_id: key_id.into(),
        previous,
        signature: String::new(),
    }
}

/// An Ed25519 key digests are signed with (the embedded product's key file).
pub struct DigestSigner {
    key: SigningKey,
    id: String,
}

impl DigestSigner {
    pub fn new(key: SigningKey) -> Self {
        let id = PublicKey::from(key.verifying_key()).id();
        DigestSigner { key, id }
    }

    pub fn key_id(&self) -> &str {
        &self.id
    }

    pub fn public_key(&self) -> PublicKey {
        self.key.verifying_key().into()
    }

    /// The digest of `root` at `tree_size`, following `previous` (`None`: the first).
    pub fn sign(
        &self,
        tree_size: u64,
        root: &Hash,
        issued_at: &str,
        previous: Option<&Digest>,
    ) -> Digest {
        let mut digest = unsigned(&self.id, tree_size, root, issued_at, previous);
        digest.signature = BASE64.encode(self.key.sign(&digest.signed_bytes()).to_bytes());
        digest
    }
}

#[async_trait::async_trait]
impl Signer for DigestSigner {
    fn key_id(&self) -> &str {
        &self.id
    }

    fn public_key(&self) -> PublicKey {
        self.key.verifying_key().into()
    }

    async fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(self.key.sign(message).to_bytes().to_vec())
    }
}

/// The public keys a verifier trusts, by key id: the current one and those rotated out,
/// whose digests stay verifiable.
#[derive(Debug, Clone, Default)]
pub struct PublicKeys(HashMap<String, PublicKey>);

impl PublicKeys {
    pub fn add(&mut self, key: impl Into<PublicKey>) {
        let key = key.into();
        self.0.insert(key.id(), key);
    }

    /// The keys with their ids.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &PublicKey)> {
        self.0.iter().map(|(id, key)| (id.as_str(), key))
    }
}

impl<K: Into<PublicKey>> FromIterator<K> for PublicKeys {
    fn from_iter<I: IntoIterator<Item = K>>(keys: I) -> Self {
        let mut all = PublicKeys::default();
        keys.into_iter().for_each(|key| all.add(key));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(seed: u8) -> DigestSigner {
        DigestSigner::new(SigningKey::from_bytes(&[seed; 32]))
    }

    #[test]
    fn a_digest_verifies_with_its_key_and_not_with_another_or_once_changed() {
        let (one, two) = (signer(1), signer(2));
        let first = one.sign(5, &[7; 32], "2026-12-07T10:00:00.000Z", None);
        let second = one.sign(9, &[8; 32], "2026-12-07T10:05:00.000Z", Some(&first));
        assert_eq!((first.sequence, second.sequence), (0, 1));
        assert_eq!(second.previous, first.chain_hash());
        let keys: PublicKeys = [one.public_key()].into_iter().collect();
        first.verify(&keys).unwrap();
        second.verify(&keys).unwrap();

        let others: PublicKeys = [two.public_key()].into_iter().collect();
        assert!(matches!(
            first.verify(&others),
            Err(DigestError::UnknownKey(0, _))
        ));

        let mut bigger = second.clone();
        bigger.tree_size += 1;
        assert_eq!(bigger.verify(&keys), Err(DigestError::BadSignature(1)));
        let mut moved = second.clone();
        moved.root_hash = hex::encode([9; 32]);
        assert_eq!(moved.verify(&keys), Err(DigestError::BadSignature(1)));
        // Signed by another key under this key's id.
        let mut forged = two.sign(9, &[8; 32], "2026-12-07T10:05:00.000Z", Some(&first));
        forged.key_id = one.key_id().to_string();
        assert_eq!(forged.verify(&keys), Err(DigestError::BadSignature(1)));
    }

    #[test]
    fn the_signed_bytes_are_the_documented_lines() {
        let digest = signer(1).sign(3, &[0xab; 32], "2026-12-07T10:00:00.000Z", None);
        let text = String::from_utf8(digest.signed_bytes()).unwrap();
        assert_eq!(
            text,
            format!(
                "ledgerline-digest-v1\nsequence 0\ntree_size 3\nroot_hash {}\nissued_at 2026-12-07T10:00:00.000Z\nkey_id {}\nprevious {NO_PREVIOUS}\n",
                "ab".repeat(32),
                digest.key_id
            )
        );
    }
}
