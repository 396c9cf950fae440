//! The provider's signing key: P-256 (ES256), generated on first start and kept as PKCS#8
//! PEM in the data directory (mode 0600), published as a JWKS. The key id is derived from
//! the public key, so it changes exactly when the key does.

use api_kit::auth::KeySource;
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::EncodingKey;
use p256::elliptic_curve::rand_core::OsRng;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;

pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

impl SigningKey {
    /// Reads the key at `path`, or creates one there.
    pub fn load_or_create(path: &Path) -> Result<Self, String> {
        if path.exists() {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            let secret = p256::SecretKey::from_pkcs8_pem(&pem)
                .map_err(|e| format!("parsing {}: {e}", path.display()))?;
            return Self::from_secret(&secret);
        }
        let secret = p256::SecretKey::random(&mut OsRng);
        let pem = secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| e.to_string())?;
        write_private(path, pem.as_bytes())?;
        Self::from_secret(&secret)
    }

    /// A key that lives only in memory (tests).
    pub fn ephemeral() -> Result<Self, String> {
        Self::from_secret(&p256::SecretKey::random(&mut OsRng))
    }

    fn from_secret(secret: &p256::SecretKey) -> Result<Self, String> {
        let pem = secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| e.to_string())?;
        let encoding = EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
        let point = secret.public_key().to_encoded_point(false);
        let (x, y) = (point.x().ok_or("no x")?, point.y().ok_or("no y")?);
        let (x, y) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
        // RFC 7638 thumbprint: SHA-256 over the required members in lexical order.
        let thumbprint = Sha256::digest(format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#
        ));
        let kid = URL_SAFE_NO_PAD.encode(thumbprint);
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig"});
        Ok(SigningKey { kid, encoding, jwk })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    /// The public half as a JWK Set.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk] })
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    file.write_all(contents).map_err(|e| e.to_string())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &[u8]) -> Result<(), String> {
    std::fs::write(path, contents).map_err(|e| e.to_string())
}

/// The provider's own keys, handed to the in-process token verifier.
pub struct LocalKeySource(pub Arc<SigningKey>);

#[async_trait]
impl KeySource for LocalKeySource {
    async fn fetch(&self) -> Result<JwkSet, String> {
        serde_json::from_value(self.0.jwks()).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_key_is_reloaded_with_the_same_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing-key.pem");
        let first = SigningKey::load_or_create(&path).unwrap();
        let again = SigningKey::load_or_create(&path).unwrap();
        assert_eq!(first.kid(), again.kid());
        assert_ne!(first.kid(), SigningKey::ephemeral().unwrap().kid());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }
}
