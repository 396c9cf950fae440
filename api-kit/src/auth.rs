//! Bearer-token authentication. Access tokens are JWTs of the Cognito shape (`sub`,
//! `username`, `cognito:groups`, `token_use`, `iss`, `exp`, `client_id`), signed with a
//! key from a JWKS that is fetched on first use and again when a token names a key id we
//! do not know (key rotation). A verified token is still refused when its subject has
//! been disabled or deleted since it was issued.

use async_trait::async_trait;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use domain::policy::{authorize, Action, Actor, Role};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, RwLock};

use crate::problem::ApiError;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(rename = "cognito:groups", default)]
    pub groups: Vec<String>,
    pub token_use: String,
    pub iss: String,
    pub exp: u64,
    #[serde(default)]
    pub iat: u64,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// Where signing keys come from.
#[async_trait]
pub trait KeySource: Send + Sync {
    async fn fetch(&self) -> Result<JwkSet, String>;
}

/// A JWKS served over HTTP (the embedded provider's, or a Cognito pool's).
pub struct HttpKeySource {
    url: String,
    client: reqwest::Client,
}

impl HttpKeySource {
    pub fn new(url: impl Into<String>) -> Self {
        HttpKeySource {
            url: url.into(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        }
    }
}

#[async_trait]
impl KeySource for HttpKeySource {
    async fn fetch(&self) -> Result<JwkSet, String> {
        let response = self
            .client
            .get(&self.url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let response = response.error_for_status().map_err(|e| e.to_string())?;
        response.json::<JwkSet>().await.map_err(|e| e.to_string())
    }
}

/// Verifies access tokens against one issuer's keys.
pub struct TokenVerifier {
    issuer: String,
    client_ids: Option<Vec<String>>,
    source: Arc<dyn KeySource>,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_fetch: Mutex<Option<Instant>>,
    refresh_interval: Duration,
    /// Tokens already verified, with their key id: a signature check is the costliest
    /// part of a request, and a token does not change. Entries leave when they expire or
    /// their key leaves the JWKS.
    verified: std::sync::Mutex<HashMap<String, (String, AccessClaims)>>,
}

/// Clock skew tolerated on `exp`.
const LEEWAY_SECS: u64 = 30;

/// How many verified tokens are remembered before the memory starts over.
const VERIFIED_CAPACITY: usize = 10_000;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Why a token was refused; all of these answer 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed or uses an unsupported algorithm")]
    Malformed,
    #[error("the token's signing key is unknown")]
    UnknownKey,
    #[error("the token is invalid: {0}")]
    Invalid(String),
    #[error("not an access token")]
    NotAccessToken,
    #[error("the token was issued to an unknown client")]
    UnknownClient,
    #[error("signing keys are unavailable: {0}")]
    KeysUnavailable(String),
}

impl TokenVerifier {
    pub fn new(issuer: impl Into<String>, source: Arc<dyn KeySource>) -> Self {
        TokenVerifier {
            issuer: issuer.into(),
            client_ids: None,
            source,
            keys: RwLock::new(HashMap::new()),
            last_fetch: Mutex::new(None),
            refresh_interval: Duration::from_secs(5),
            verified: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Accept only tokens issued to these clients (Cognito app clients).
    pub fn with_client_ids(mut self, client_ids: Vec<String>) -> Self {
        self.client_ids = Some(client_ids);
        self
    }

    /// The least time between two fetches triggered by unknown key ids, so a flood of
    /// forged tokens cannot turn into a flood of JWKS requests.
    pub fn with_refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, TokenError> {
        if let Some(key) = self.keys.read().await.get(kid) {
            return Ok(key.clone());
        }
        {
            let mut last_fetch = self.last_fetch.lock().await;
            let due = last_fetch.is_none_or(|at| at.elapsed() >= self.refresh_interval);
            if due && !self.keys.read().await.contains_key(kid) {
                let set = self
                    .source
                    .fetch()
                    .await
                    .map_err(TokenError::KeysUnavailable)?;
                *last_fetch = Some(Instant::now());
                let mut keys = HashMap::new();
                for jwk in &set.keys {
                    if let (Some(id), Ok(key)) = (&jwk.common.key_id, DecodingKey::from_jwk(jwk)) {
                        keys.insert(id.clone(), key);
                    }
                }
                self.verified().retain(|_, (kid, _)| keys.contains_key(kid));
                *self.keys.write().await = keys;
            }
        }
        self.keys
            .read()
            .await
            .get(kid)
            .cloned()
            .ok_or(TokenError::UnknownKey)
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, AccessClaims)>> {
        self.verified
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub async fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let now = unix_now();
        if let Some((_, claims)) = self.verified().get(token) {
            if claims.exp + LEEWAY_SECS > now {
                return Ok(claims.clone());
            }
        }
        let claims = self.verify_signature(token).await?;
        let mut verified = self.verified();
        if verified.len() >= VERIFIED_CAPACITY {
            verified.retain(|_, (_, c)| c.exp + LEEWAY_SECS > now);
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
        }
        verified.insert(token.to_string(), claims.clone());
        Ok(claims.1)
    }

    async fn verify_signature(&self, token: &str) -> Result<(String, AccessClaims), TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(TokenError::Malformed);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self.key(&kid).await?;
        let kid_used = kid.clone();
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.validate_aud = false;
        validation.leeway = LEEWAY_SECS;
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        let claims = data.claims;
        if claims.token_use != "access" {
            return Err(TokenError::NotAccessToken);
        }
        if let Some(allowed) = &self.client_ids {
            if !allowed.contains(&claims.client_id) {
                return Err(TokenError::UnknownClient);
            }
        }
        Ok((kid_used, claims))
    }
}

/// Whether a subject may still act: tokens outlive a disable or delete, this does not.
#[async_trait]
pub trait AccessCheck: Send + Sync {
    async fn is_active(&self, subject: &str, role: Role) -> Result<bool, String>;
}

/// Token verification plus the liveness check; held in each API's state.
pub struct Authenticator {
    verifier: TokenVerifier,
    access: Arc<dyn AccessCheck>,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`.
    pub id: String,
    pub username: String,
    pub role: Role,
    pub client_id: String,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        Actor::new(self.id.clone(), self.role)
    }

    /// Runs the domain policy; a refusal is a 403 carrying the policy's reason.
    pub fn authorize(&self, action: Action) -> Result<(), ApiError> {
        authorize(&self.actor(), action).map_err(|denied| ApiError::Forbidden(denied.0.to_string()))
    }
}

/// The role a token's groups grant; the most privileged wins if several are present.
fn role_of(groups: &[String]) -> Option<Role> {
    [
        Role::RootAdmin,
        Role::Admin,
        Role::Auditor,
        Role::Agent,
        Role::Worker,
    ]
    .into_iter()
    .find(|role| groups.iter().any(|group| group == role.as_str()))
}

impl Authenticator {
    pub fn new(verifier: TokenVerifier, access: Arc<dyn AccessCheck>) -> Self {
        Authenticator { verifier, access }
    }

    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::Unauthenticated("an Authorization: Bearer token is required".into())
        })?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::Unauthenticated(
                    "the Authorization header must be `Bearer <token>`".into(),
                )
            })?;
        let claims = self
            .verifier
            .verify(token)
            .await
            .map_err(|error| match error {
                TokenError::KeysUnavailable(message) => ApiError::Unavailable(message),
                other => ApiError::Unauthenticated(other.to_string()),
            })?;
        let role = role_of(&claims.groups)
            .ok_or_else(|| ApiError::Forbidden("the token grants no role".into()))?;
        let active = self
            .access
            .is_active(&claims.sub, role)
            .await
            .map_err(ApiError::Unavailable)?;
        if !active {
            return Err(ApiError::Unauthenticated(
                "the account behind this token is disabled or deleted".into(),
            ));
        }
        Ok(Caller {
            username: claims.username.unwrap_or_else(|| claims.sub.clone()),
            id: claims.sub,
            role,
            client_id: claims.client_id,
        })
    }
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Arc<Authenticator>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let authenticator = Arc::<Authenticator>::from_ref(state);
        let caller = authenticator.authenticate(&parts.headers).await?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_privileged_group_wins() {
        let groups = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(role_of(&groups(&["agent"])), Some(Role::Agent));
        assert_eq!(role_of(&groups(&["agent", "admin"])), Some(Role::Admin));
        assert_eq!(role_of(&groups(&["staff"])), None);
        assert_eq!(role_of(&[]), None);
    }
}
