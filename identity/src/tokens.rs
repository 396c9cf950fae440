//! Minting tokens of Cognito's shape, refresh-token rotation and authorization codes.

use api_kit::auth::AccessClaims;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use domain::policy::Role;
use jsonwebtoken::{Algorithm, Header};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;

use crate::directory::{
    random_token, sha256_b64, DirectoryError, DirectoryUser, EmbeddedDirectory,
};
use crate::keys::SigningKey;

/// Access and id tokens live 15 minutes; refresh tokens 8 hours (a working day).
const ACCESS_TTL_SECS: u64 = 15 * 60;
const REFRESH_TTL_SECS: i64 = 8 * 3600;
const CODE_TTL_SECS: i64 = 120;

/// The token endpoint's answer.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TokenSet {
    pub access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub token_type: String,
    pub expires_in: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// The code, refresh token or credentials are invalid, expired or used.
    #[error("{0}")]
    InvalidGrant(&'static str),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("could not sign a token: {0}")]
    Signing(String),
}

impl From<sqlx::Error> for GrantError {
    fn from(error: sqlx::Error) -> Self {
        GrantError::Directory(error.into())
    }
}

/// The S256 PKCE challenge of a code verifier (RFC 7636 §4.2).
pub fn pkce_s256(code_verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(code_verifier.as_bytes()))
}

pub struct TokenIssuer {
    issuer: String,
    key: Arc<SigningKey>,
    directory: Arc<EmbeddedDirectory>,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl TokenIssuer {
    pub fn new(
        issuer: impl Into<String>,
        key: Arc<SigningKey>,
        directory: Arc<EmbeddedDirectory>,
    ) -> Self {
        TokenIssuer {
            issuer: issuer.into(),
            key,
            directory,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn key(&self) -> &Arc<SigningKey> {
        &self.key
    }

    fn sign(&self, claims: &impl Serialize) -> Result<String, GrantError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key.kid().to_string());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, claims, self.key.encoding())
            .map_err(|e| GrantError::Signing(e.to_string()))
    }

    /// An access token for `subject` in `role`, as the API verifies it.
    pub fn access_token(
        &self,
        subject: &str,
        username: &str,
        role: Role,
        client_id: &str,
    ) -> Result<String, GrantError> {
        let now = unix_now();
        self.sign(&AccessClaims {
            sub: subject.to_string(),
            username: Some(username.to_string()),
            groups: vec![role.as_str().to_string()],
            token_use: "access".into(),
            iss: self.issuer.clone(),
            exp: now + ACCESS_TTL_SECS,
            iat: now,
            client_id: client_id.to_string(),
            jti: Some(uuid::Uuid::now_v7().to_string()),
        })
    }

    /// Access, id and refresh tokens for a member of staff.
    pub async fn issue_for_user(
        &self,
        user: &DirectoryUser,
        client_id: &str,
        nonce: Option<String>,
    ) -> Result<TokenSet, GrantError> {
        let now = unix_now();
        let subject = user.id.to_string();
        let access_token = self.access_token(&subject, &user.username, user.role, client_id)?;
        let id_token = self.sign(&json!({
            "sub": subject,
            "aud": client_id,
            "iss": self.issuer,
            "exp": now + ACCESS_TTL_SECS,
            "iat": now,
            "auth_time": now,
            "token_use": "id",
            "cognito:username": user.username,
            "cognito:groups": [user.role.as_str()],
            "nonce": nonce,
        }))?;
        let refresh_token = random_token();
        sqlx::query("INSERT INTO refresh_tokens (token_hash, user_id, client_id, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(sha256_b64(&refresh_token))
            .bind(&subject)
            .bind(client_id)
            .bind(chrono::Utc::now().timestamp() + REFRESH_TTL_SECS)
            .execute(&self.directory.pool)
            .await?;
        Ok(TokenSet {
            access_token,
            id_token: Some(id_token),
            refresh_token: Some(refresh_token),
            token_type: "Bearer".into(),
            expires_in: ACCESS_TTL_SECS,
        })
    }

    /// An access token for an integration worker (client credentials; no refresh).
    pub fn issue_for_worker(&self, client_id: &str) -> Result<TokenSet, GrantError> {
        Ok(TokenSet {
            access_token: self.access_token(client_id, client_id, Role::Worker, client_id)?,
            id_token: None,
            refresh_token: None,
            token_type: "Bearer".into(),
            expires_in: ACCESS_TTL_SECS,
        })
    }

    /// Exchanges a refresh token for new tokens; the old one is spent (rotation).
    pub async fn refresh(
        &self,
        refresh_token: &str,
        client_id: Option<&str>,
    ) -> Result<TokenSet, GrantError> {
        let row: Option<(String, String, i64)> = sqlx::query_as(
            "DELETE FROM refresh_tokens WHERE token_hash = $1 RETURNING user_id, client_id, expires_at",
        )
        .bind(sha256_b64(refresh_token))
        .fetch_optional(&self.directory.pool)
        .await?;
        let Some((user_id, issued_to, expires_at)) = row else {
            return Err(GrantError::InvalidGrant(
                "the refresh token is invalid or was already used",
            ));
        };
        if expires_at < chrono::Utc::now().timestamp() || client_id.is_some_and(|c| c != issued_to)
        {
            return Err(GrantError::InvalidGrant(
                "the refresh token is expired or belongs to another client",
            ));
        }
        match self.directory.find(&user_id).await? {
            Some(user) if user.enabled => self.issue_for_user(&user, &issued_to, None).await,
            _ => Err(GrantError::InvalidGrant("the user is disabled or deleted")),
        }
    }

    /// Stores a one-time authorization code bound to the client, redirect URI and PKCE
    /// challenge.
    pub(crate) async fn create_code(
        &self,
        user: &DirectoryUser,
        client_id: &str,
        redirect_uri: &str,
        code_challenge: &str,
        nonce: Option<&str>,
    ) -> Result<String, GrantError> {
        let code = random_token();
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, user_id, client_id, redirect_uri, code_challenge, nonce, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(sha256_b64(&code))
        .bind(user.id.to_string())
        .bind(client_id)
        .bind(redirect_uri)
        .bind(code_challenge)
        .bind(nonce)
        .bind(chrono::Utc::now().timestamp() + CODE_TTL_SECS)
        .execute(&self.directory.pool)
        .await?;
        Ok(code)
    }

    /// Redeems a code once, checking client, redirect URI and the PKCE verifier (S256).
    pub async fn redeem_code(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        code_verifier: &str,
    ) -> Result<TokenSet, GrantError> {
        let row: Option<(String, String, String, String, Option<String>, i64)> = sqlx::query_as(
            "DELETE FROM authorization_codes WHERE code_hash = $1 \
             RETURNING user_id, client_id, redirect_uri, code_challenge, nonce, expires_at",
        )
        .bind(sha256_b64(code))
        .fetch_optional(&self.directory.pool)
        .await?;
        let Some((user_id, issued_to, bound_uri, challenge, nonce, expires_at)) = row else {
            return Err(GrantError::InvalidGrant(
                "the authorization code is invalid or was already used",
            ));
        };
        let computed = pkce_s256(code_verifier);
        if expires_at < chrono::Utc::now().timestamp()
            || issued_to != client_id
            || bound_uri != redirect_uri
            || computed != challenge
        {
            return Err(GrantError::InvalidGrant(
                "the code does not match this client, redirect URI or verifier",
            ));
        }
        match self.directory.find(&user_id).await? {
            Some(user) if user.enabled => self.issue_for_user(&user, client_id, nonce).await,
            _ => Err(GrantError::InvalidGrant("the user is disabled or deleted")),
        }
    }
}
