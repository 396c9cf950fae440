//! The embedded identity provider: what Cognito is in AWS, in one process. It keeps the
//! staff directory (argon2 password hashes) and OAuth clients in SQLite, signs tokens of
//! Cognito's shape with a P-256 key generated on first start and kept in the data
//! directory, and serves login, the token endpoint (refresh, authorization code + PKCE,
//! client credentials), the authorization page, discovery and the JWKS.

mod authorize;
pub use authorize::{escape, page_response, sign_in_form, AuthorizeParams, SignIn};
#[cfg(feature = "cognito")]
mod cognito;
#[cfg(feature = "cognito")]
mod cognito_pool;
mod directory;
mod keys;
mod password;
pub use password::{check_strength, PasswordPolicy, PASSWORD_POLICY};
mod routes;
mod throttle;
mod tokens;

#[cfg(feature = "cognito")]
pub use cognito::{required_vars, CognitoConfig, CognitoDirectory};
#[cfg(feature = "cognito")]
pub use cognito_pool::{
    ensure_user_pool, find_user_pool, password_sign_in, refresh_sign_in, sign_in_with_password,
};
pub use directory::{
    random_token, DirectoryError, DirectoryUser, EmbeddedDirectory, NewDirectoryUser,
    StaffDirectory, WorkerClient,
};
pub use keys::{LocalKeySource, SigningKey};
pub use routes::{oauth_error, router, IdentityDoc, LoginRequest, TokenRequest, NOT_CACHEABLE};
pub use tokens::{pkce_s256, TokenIssuer, TokenSet};

use std::sync::Arc;

/// Everything the identity routes need.
#[derive(Clone)]
pub struct Identity {
    pub directory: Arc<EmbeddedDirectory>,
    pub issuer: Arc<TokenIssuer>,
    pub sign_ins: Arc<dyn SignInLog>,
}

/// Where sign-ins and failed sign-ins are reported (the system log).
#[async_trait::async_trait]
pub trait SignInLog: Send + Sync {
    async fn signed_in(&self, user: &DirectoryUser, method: &str);
    async fn sign_in_failed(&self, username: &str, method: &str);
}

/// The public client the UI signs in with (authorization code + PKCE).
pub const UI_CLIENT_ID: &str = "crm-ui";
/// The client `POST /auth/login` issues tokens to (scripts, the CLI).
pub const CLI_CLIENT_ID: &str = "crm-cli";
