//! The public keys digests verify with. Two kinds: Ed25519 (the key file of the
//! embedded product) and ECDSA over P-256 with SHA-256 (a KMS key in AWS: an emulator
//! the tests can run offers no Ed25519 keys, and both kinds verify in a browser's Web
//! Crypto). Both travel as PEM (SubjectPublicKeyInfo), which names the kind.

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePublicKey, EncodePublicKey};
use merkle_sha2::{Digest as _, Sha256};

/// A key digests are verified with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    /// ECDSA P-256 with SHA-256; signatures are r ‖ s, 64 bytes.
    P256(p256::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// The key's bytes its id is computed from: Ed25519's 32, P-256's uncompressed
    /// point (65: `04 ‖ x ‖ y`).
    fn raw(&self) -> Vec<u8> {
        match self {
            PublicKey::Ed25519(key) => key.as_bytes().to_vec(),
            PublicKey::P256(key) => key.to_encoded_point(false).as_bytes().to_vec(),
        }
    }

    /// The key id: the first 16 hex digits of SHA-256 of its raw bytes.
    pub fn id(&self) -> String {
        hex::encode(&Sha256::digest(self.raw())[..8])
    }

    /// `ed25519` or `ecdsa-p256-sha256`.
    pub fn algorithm(&self) -> &'static str {
        match self {
            PublicKey::Ed25519(_) => "ed25519",
            PublicKey::P256(_) => "ecdsa-p256-sha256",
        }
    }

    /// Whether `signature` is this key's over `message` (Ed25519 strictly; ECDSA over
    /// SHA-256 of the message).
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier;
        match self {
            PublicKey::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|s| key.verify_strict(message, &s).is_ok()),
            PublicKey::P256(key) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| key.verify(message, &s).is_ok()),
        }
    }

    /// The key in PEM (SubjectPublicKeyInfo).
    pub fn to_pem(&self) -> String {
        match self {
            PublicKey::Ed25519(key) => key.to_public_key_pem(LineEnding::LF),
            PublicKey::P256(key) => key.to_public_key_pem(LineEnding::LF),
        }
        .expect("a public key encodes")
    }

    /// A key from PEM of either kind.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let pem = pem.trim();
        if let Ok(key) = ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
            return Ok(PublicKey::Ed25519(key));
        }
        p256::ecdsa::VerifyingKey::from_public_key_pem(pem)
            .map(PublicKey::P256)
            .map_err(|e| format!("neither an Ed25519 nor a P-256 public key: {e}"))
    }

    /// A key from DER (SubjectPublicKeyInfo) of either kind: what KMS's GetPublicKey
    /// answers.
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        if let Ok(key) = ed25519_dalek::VerifyingKey::from_public_key_der(der) {
            return Ok(PublicKey::Ed25519(key));
        }
        p256::ecdsa::VerifyingKey::from_public_key_der(der)
            .map(PublicKey::P256)
            .map_err(|e| format!("neither an Ed25519 nor a P-256 public key: {e}"))
    }
}

impl From<ed25519_dalek::VerifyingKey> for PublicKey {
    fn from(key: ed25519_dalek::VerifyingKey) -> Self {
        PublicKey::Ed25519(key)
    }
}

impl From<p256::ecdsa::VerifyingKey> for PublicKey {
    fn from(key: p256::ecdsa::VerifyingKey) -> Self {
        PublicKey::P256(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;

    #[test]
    fn both_kinds_round_trip_through_pem_and_verify_only_their_own_signatures() {
        let ed = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
        let ec = p256::ecdsa::SigningKey::from_slice(&[5; 32]).unwrap();
        let message = b"ledgerline-digest-v1\n";
        let ed_signature = ed.sign(message).to_bytes().to_vec();
        let ec_signature: p256::ecdsa::Signature = ec.sign(message);
        let ec_signature = ec_signature.to_bytes().to_vec();
        for (key, signature, other) in [
            (
                PublicKey::from(ed.verifying_key()),
                &ed_signature,
                &ec_signature,
            ),
            (
                PublicKey::from(*ec.verifying_key()),
                &ec_signature,
                &ed_signature,
            ),
        ] {
            let again = PublicKey::from_pem(&key.to_pem()).unwrap();
            assert_eq!(again, key);
            assert_eq!(again.id().len(), 16);
            assert!(key.verifies(message, signature), "{}", key.algorithm());
            assert!(!key.verifies(b"another message", signature));
            assert!(!key.verifies(message, other));
        }
        assert!(
            PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
                .is_err()
        );
    }
}
