//! The provider's HTTP surface: `POST /auth/login`, `POST /oauth2/token`,
//! `GET|POST /oauth2/authorize`, discovery and the JWKS.

use api_kit::{ApiError, AppJson};
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use crate::directory::DirectoryError;
use crate::tokens::{GrantError, TokenSet};
use crate::{authorize, Identity, CLI_CLIENT_ID};

pub fn router(identity: Identity) -> Router {
    Router::new()
        .route("/auth/login", post(login))
        .route("/oauth2/token", post(token))
        .route(
            "/oauth2/authorize",
            get(authorize::page).post(authorize::submit),
        )
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(identity)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// Username and password → tokens, as Cognito's USER_PASSWORD_AUTH.
#[utoipa::path(post, path = "/auth/login", tag = "identity", request_body = LoginRequest,
    responses((status = 200, body = TokenSet), (status = 401, description = "Unknown user or wrong password (one answer for both)")))]
pub(crate) async fn login(
    State(identity): State<Identity>,
    source: Source,
    AppJson(request): AppJson<LoginRequest>,
) -> Result<([(axum::http::HeaderName, &'static str); 2], Json<TokenSet>), ApiError> {
    let mut failed = false;
    let user = identity
        .directory
        .authenticate(&request.username, &request.password, &source.0)
        .await
        .map_err(|error| match error {
            DirectoryError::InvalidCredentials => {
                tracing::info!(username = %request.username, "failed sign-in");
                failed = true;
                ApiError::Unauthenticated("invalid username or password".into())
            }
            other => ApiError::Unavailable(other.to_string()),
        });
    if failed {
        identity
            .sign_ins
            .sign_in_failed(&request.username, "password")
            .await;
    }
    let user = user?;
    tracing::info!(user = %user.id, role = %user.role, "sign-in");
    identity.sign_ins.signed_in(&user, "password").await;
    let tokens = identity
        .issuer
        .issue_for_user(&user, CLI_CLIENT_ID, None)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((NOT_CACHEABLE, Json(tokens)))
}

/// Tokens must not be kept by a browser or proxy cache (RFC 6749 §5.1).
pub const NOT_CACHEABLE: [(axum::http::HeaderName, &str); 2] = [
    (axum::http::header::CACHE_CONTROL, "no-store"),
    (axum::http::header::PRAGMA, "no-cache"),
];

/// Where a sign-in comes from: the peer's address, for the throttle.
pub(crate) struct Source(pub(crate) String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Source {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or_else(|| "unknown".to_string(), |info| info.0.ip().to_string());
        Ok(Source(peer))
    }
}

/// The fields of every grant the token endpoint takes (RFC 6749 form encoding).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct TokenRequest {
    pub grant_type: String,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scope: Option<String>,
}

/// A grant without the fields it needs: RFC 6749's `invalid_request`.
#[derive(Debug)]
pub struct MissingFields(&'static str);

impl IntoResponse for MissingFields {
    fn into_response(self) -> Response {
        oauth_error(StatusCode::BAD_REQUEST, "invalid_request", self.0)
    }
}

impl TokenRequest {
    /// The authorization_code grant's code, redirect URI, client id and PKCE verifier.
    pub fn code_grant(&self) -> Result<(&str, &str, &str, &str), MissingFields> {
        match (
            &self.code,
            &self.redirect_uri,
            &self.client_id,
            &self.code_verifier,
        ) {
            (Some(code), Some(redirect_uri), Some(client_id), Some(verifier)) => {
                Ok((code, redirect_uri, client_id, verifier))
            }
            _ => Err(MissingFields(
                "code, redirect_uri, client_id and code_verifier are required",
            )),
        }
    }

    /// The refresh_token grant's token.
    pub fn refresh_grant(&self) -> Result<&str, MissingFields> {
        self.refresh_token
            .as_deref()
            .ok_or(MissingFields("refresh_token is required"))
    }
}

/// An OAuth error response (RFC 6749 §5.2), never cached.
pub fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        "no-store".parse().expect("static header"),
    );
    response
}

fn grant_error(error: GrantError) -> Response {
    match error {
        GrantError::InvalidGrant(reason) => {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", reason)
        }
        other => {
            tracing::error!(error = %other, "token endpoint failure");
            oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "try again later",
            )
        }
    }
}

/// `Authorization: Basic base64(client_id:client_secret)`, if present.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let decoded = STANDARD.decode(value.strip_prefix("Basic ")?).ok()?;
    let (id, secret) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// The token endpoint: authorization_code (with PKCE), refresh_token, client_credentials.
#[utoipa::path(post, path = "/oauth2/token", tag = "identity",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = TokenSet), (status = 400, description = "RFC 6749 error: invalid_grant, invalid_request, unsupported_grant_type"),
        (status = 401, description = "invalid_client")))]
pub(crate) async fn token(
    State(identity): State<Identity>,
    headers: HeaderMap,
    form: Result<Form<TokenRequest>, FormRejection>,
) -> Response {
    let Ok(Form(request)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send an application/x-www-form-urlencoded body with grant_type",
        );
    };
    let result = match request.grant_type.as_str() {
        "authorization_code" => {
            let (code, redirect_uri, client_id, verifier) = match request.code_grant() {
                Ok(fields) => fields,
                Err(missing) => return missing.into_response(),
            };
            identity
                .issuer
                .redeem_code(code, client_id, redirect_uri, verifier)
                .await
        }
        "refresh_token" => {
            let refresh_token = match request.refresh_grant() {
                Ok(token) => token,
                Err(missing) => return missing.into_response(),
            };
            identity
                .issuer
                .refresh(refresh_token, request.client_id.as_deref())
                .await
        }
        "client_credentials" => {
            let credentials = basic_credentials(&headers)
                .or_else(|| request.client_id.clone().zip(request.client_secret.clone()));
            let Some((client_id, secret)) = credentials else {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "client authentication is required",
                );
            };
            match identity
                .directory
                .authenticate_worker(&client_id, &secret)
                .await
            {
                Ok(()) => identity.issuer.issue_for_worker(&client_id),
                Err(DirectoryError::InvalidCredentials) => {
                    return oauth_error(
                        StatusCode::UNAUTHORIZED,
                        "invalid_client",
                        "unknown client or wrong secret",
                    )
                }
                Err(other) => Err(other.into()),
            }
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "use authorization_code, refresh_token or client_credentials",
            )
        }
    };
    match result {
        Ok(tokens) => (NOT_CACHEABLE, Json(tokens)).into_response(),
        Err(error) => grant_error(error),
    }
}

/// OpenID Connect discovery.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "identity", responses((status = 200)))]
pub(crate) async fn discovery(State(identity): State<Identity>) -> Json<serde_json::Value> {
    let issuer = identity.issuer.issuer();
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth2/authorize"),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile", "email"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "cognito:username", "cognito:groups"],
    }))
}

/// The provider's public signing keys.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "identity", responses((status = 200)))]
pub(crate) async fn jwks(State(identity): State<Identity>) -> Json<serde_json::Value> {
    Json(identity.issuer.key().jwks())
}

/// The identity provider's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        login,
        token,
        discovery,
        jwks,
        crate::authorize::page,
        crate::authorize::submit
    ),
    components(schemas(TokenSet, LoginRequest, TokenRequest))
)]
pub struct IdentityDoc;
