//! The local AWS mode's front door: one address that does what CloudFront, the load
//! balancer and Cognito's hosted sign-in do in AWS, so that the web UI and the README's
//! requests work against the local topology as they do against `crm serve`.
//!
//! - `/v1/*` goes to the command, query or mail service by the load balancer's own rules
//!   ([`crate::routes`]); `/metrics` and `/health/*` are not served, as at the edge.
//! - Sign-in: OpenID discovery, the authorization endpoint (a sign-in form; code flow
//!   with PKCE S256) and the token endpoint (code and refresh grants), and
//!   `POST /auth/login` as `crm serve` has it. The password goes to the user pool
//!   (`InitiateAuth`), and the tokens handed out are the pool's. moto runs no Lambda
//!   triggers and keeps no sign-in histories, so the door reports each sign-in through
//!   the post-authentication trigger's own handler ([`projections::sign_in`]), and each
//!   failure in the form the sign-in-history reader gives it
//!   ([`projections::sign_in_failures`]).
//! - Anything else: the built UI (`ui/dist`), with every unknown path given its index.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api_kit::{ApiError, AppForm, AppJson};
use aws_lambda_events::event::cognito::CognitoEventUserPoolsPostAuthentication;
use aws_sdk_cognitoidentityprovider::primitives::DateTime;
use aws_sdk_cognitoidentityprovider::types::{
    AuthEventType, ChallengeName, ChallengeResponse, ChallengeResponseType, EventResponseType,
    EventType,
};
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use identity::{
    oauth_error, page_response, sign_in_form, AuthorizeParams, DirectoryError, LoginRequest,
    SignIn, TokenRequest, TokenSet, NOT_CACHEABLE,
};
use projections::SystemLog;
use serde_json::json;
use url::Url;

use crate::routes::{route, Target};

/// How long an authorization code may wait to be redeemed (Cognito: 5 minutes).
const CODE_TTL: Duration = Duration::from_secs(300);
/// The largest request body passed on; the services refuse smaller ones themselves.
const BODY_LIMIT: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct FrontDoorConfig {
    pub commands_url: String,
    pub queries_url: String,
    pub mail_url: String,
    pub user_pool_id: String,
    /// The pool's app client the door signs in through.
    pub app_client_id: String,
    pub region: String,
    /// The issuer the pool's tokens name, and where its keys are.
    pub issuer: String,
    pub jwks_url: String,
    /// The built UI, served when it holds an `index.html`.
    pub ui_dir: Option<PathBuf>,
}

struct Pending {
    tokens: TokenSet,
    client_id: String,
    redirect_uri: String,
    challenge: String,
    expires: Instant,
}

struct Door {
    config: FrontDoorConfig,
    cognito: aws_sdk_cognitoidentityprovider::Client,
    log: Arc<SystemLog>,
    http: reqwest::Client,
    codes: Mutex<HashMap<String, Pending>>,
}

type Shared = State<Arc<Door>>;

pub fn router(
    config: FrontDoorConfig,
    cognito: aws_sdk_cognitoidentityprovider::Client,
    log: Arc<SystemLog>,
) -> Router {
    let ui = config
        .ui_dir
        .clone()
        .filter(|dir| dir.join("index.html").is_file());
    let door = Arc::new(Door {
        config,
        cognito,
        log,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a plain HTTP client builds"),
        codes: Mutex::new(HashMap::new()),
    });
    let router = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/oauth2/authorize", get(authorize_page).post(authorize))
        .route("/oauth2/token", post(token))
        .route("/auth/login", post(login))
        .route("/v1", any(forward))
        .route("/v1/{*rest}", any(forward))
        .route("/metrics", any(forward))
        .route("/health/{*rest}", any(forward))
        .with_state(door);
    match ui {
        Some(dir) => {
            let index = tower_http::services::ServeFile::new(dir.join("index.html"));
            router.fallback_service(tower_http::services::ServeDir::new(dir).fallback(index))
        }
        None => router,
    }
}

/// The origin the browser reached the door at (so the endpoints it is sent to, and the
/// only redirect it is sent back to, are on that origin).
fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

async fn discovery(State(door): Shared, headers: HeaderMap) -> Json<serde_json::Value> {
    let origin = origin(&headers);
    Json(json!({
        "issuer": door.config.issuer,
        "authorization_endpoint": format!("{origin}/oauth2/authorize"),
        "token_endpoint": format!("{origin}/oauth2/token"),
        "jwks_uri": door.config.jwks_url,
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid"],
    }))
}

impl Door {
    /// The UI's own client id, or the pool's app client's.
    fn knows_client(&self, client_id: &str) -> bool {
        client_id == identity::UI_CLIENT_ID || client_id == self.config.app_client_id
    }

    fn check(&self, params: &AuthorizeParams, origin: &str) -> Result<(), &'static str> {
        if params.response_type.as_deref() != Some("code") {
            return Err("response_type must be code");
        }
        if params.code_challenge_method.as_deref() != Some("S256")
            || params.code_challenge.as_deref().is_none_or(str::is_empty)
        {
            return Err("PKCE is required: code_challenge with code_challenge_method=S256");
        }
        if !params
            .client_id
            .as_deref()
            .is_some_and(|id| self.knows_client(id))
        {
            return Err("unknown client");
        }
        if params.redirect_uri.as_deref() != Some(&format!("{origin}/callback")) {
            return Err("redirect_uri must be this origin's /callback");
        }
        Ok(())
    }

    /// The pool's answer to a password, reported to the system log as Cognito would.
    async fn sign_in(&self, username: &str, password: &str) -> Result<TokenSet, DirectoryError> {
        let answer = identity::password_sign_in(
            &self.cognito,
            &self.config.app_client_id,
            username,
            password,
        )
        .await;
        match &answer {
            Ok(tokens) => self.signed_in(username, &tokens.access_token).await,
            Err(DirectoryError::InvalidCredentials) => {
                if let Some(entry) = projections::sign_in_failures::entry(username, &failure()) {
                    self.log.record_or_warn(entry).await;
                }
            }
            Err(_) => {}
        }
        answer
    }

    /// What the pool's post-authentication trigger is given, handed to its handler.
    async fn signed_in(&self, username: &str, access_token: &str) {
        let sub = claim(access_token, "sub").unwrap_or_else(|| username.to_string());
        let event: Result<CognitoEventUserPoolsPostAuthentication, _> =
            serde_json::from_value(json!({
                "version": "1",
                "triggerSource": "PostAuthentication_Authentication",
                "region": self.config.region,
                "userPoolId": self.config.user_pool_id,
                "userName": username,
                "callerContext": {"awsSdkVersion": "ledgerline-front-door",
                                  "clientId": self.config.app_client_id},
                "request": {"newDeviceUsed": false, "userAttributes": {"sub": sub}},
                "response": {}
            }));
        match event {
            Ok(event) => {
                projections::sign_in::handle(Some(&self.log), &self.cognito, event).await;
            }
            Err(error) => tracing::error!(%error, "could not build a post-authentication event"),
        }
    }
}

/// A failed password attempt as Cognito's sign-in history records one.
fn failure() -> AuthEventType {
    AuthEventType::builder()
        .event_id(uuid::Uuid::now_v7().to_string())
        .event_type(EventType::SignIn)
        .event_response(EventResponseType::Fail)
        .creation_date(DateTime::from(std::time::SystemTime::now()))
        .challenge_responses(
            ChallengeResponseType::builder()
                .challenge_name(ChallengeName::Password)
                .challenge_response(ChallengeResponse::Failure)
                .build(),
        )
        .build()
}

/// A claim of a token the pool just issued (read, not verified: it came from the pool).
fn claim(token: &str, name: &str) -> Option<String> {
    let payload = URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    claims.get(name)?.as_str().map(String::from)
}

fn error_page(status: StatusCode, reason: &str) -> Response {
    page_response(
        status,
        format!(
            "<!doctype html><title>Error</title><p>{}</p>",
            identity::escape(reason)
        ),
    )
}

async fn authorize_page(
    State(door): Shared,
    headers: HeaderMap,
    Query(params): Query<AuthorizeParams>,
) -> Response {
    match door.check(&params, &origin(&headers)) {
        Ok(()) => page_response(StatusCode::OK, sign_in_form(&params, None)),
        Err(reason) => error_page(StatusCode::BAD_REQUEST, reason),
    }
}

async fn authorize(
    State(door): Shared,
    headers: HeaderMap,
    AppForm(sign_in): AppForm<SignIn>,
) -> Response {
    let params = sign_in.params;
    let origin = origin(&headers);
    if let Err(reason) = door.check(&params, &origin) {
        return error_page(StatusCode::BAD_REQUEST, reason);
    }
    let tokens = match door.sign_in(&sign_in.username, &sign_in.password).await {
        Ok(tokens) => tokens,
        Err(DirectoryError::InvalidCredentials) => {
            return page_response(
                StatusCode::UNAUTHORIZED,
                sign_in_form(&params, Some("Invalid username or password.")),
            )
        }
        Err(error) => {
            tracing::warn!(%error, "sign-in through the pool failed");
            return page_response(
                StatusCode::SERVICE_UNAVAILABLE,
                sign_in_form(&params, Some("Sign-in is unavailable; try again.")),
            );
        }
    };
    let code = identity::random_token();
    let redirect_uri = format!("{origin}/callback");
    {
        let mut codes = door.codes.lock().expect("the code table is never poisoned");
        let now = Instant::now();
        codes.retain(|_, pending| pending.expires > now);
        codes.insert(
            code.clone(),
            Pending {
                tokens,
                client_id: params.client_id.clone().unwrap_or_default(),
                redirect_uri: redirect_uri.clone(),
                challenge: params.code_challenge.clone().unwrap_or_default(),
                expires: now + CODE_TTL,
            },
        );
    }
    let mut target = Url::parse(&redirect_uri).expect("an http origin with a path parses");
    target.query_pairs_mut().append_pair("code", &code);
    if let Some(state) = &params.state {
        target.query_pairs_mut().append_pair("state", state);
    }
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

async fn token(State(door): Shared, form: Result<Form<TokenRequest>, FormRejection>) -> Response {
    let Ok(Form(request)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send an application/x-www-form-urlencoded body with grant_type",
        );
    };
    let tokens = match request.grant_type.as_str() {
        "authorization_code" => {
            let (code, redirect_uri, client_id, verifier) = match request.code_grant() {
                Ok(fields) => fields,
                Err(missing) => return missing.into_response(),
            };
            // A code is spent by its first redemption, whether or not that succeeds.
            let pending = door
                .codes
                .lock()
                .expect("the code table is never poisoned")
                .remove(code);
            match pending {
                Some(p)
                    if p.expires > Instant::now()
                        && p.client_id == client_id
                        && p.redirect_uri == redirect_uri
                        && identity::pkce_s256(verifier) == p.challenge =>
                {
                    p.tokens
                }
                _ => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "the code is invalid, spent, expired, or not this client's, redirect URI's or verifier's",
                    )
                }
            }
        }
        "refresh_token" => {
            let refresh_token = match request.refresh_grant() {
                Ok(token) => token,
                Err(missing) => return missing.into_response(),
            };
            if let Some(client_id) = &request.client_id {
                if !door.knows_client(client_id) {
                    return oauth_error(
                        StatusCode::UNAUTHORIZED,
                        "invalid_client",
                        "unknown client",
                    );
                }
            }
            match identity::refresh_sign_in(
                &door.cognito,
                &door.config.app_client_id,
                refresh_token,
            )
            .await
            {
                Ok(tokens) => tokens,
                Err(DirectoryError::InvalidCredentials) => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "the refresh token is invalid or expired",
                    )
                }
                Err(error) => {
                    tracing::warn!(%error, "refreshing through the pool failed");
                    return oauth_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "temporarily_unavailable",
                        "try again later",
                    );
                }
            }
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "use authorization_code or refresh_token",
            )
        }
    };
    (NOT_CACHEABLE, Json(tokens)).into_response()
}

/// `POST /auth/login` as `crm serve` has it: a username and password, the pool's tokens.
async fn login(
    State(door): Shared,
    AppJson(request): AppJson<LoginRequest>,
) -> Result<Response, ApiError> {
    match door.sign_in(&request.username, &request.password).await {
        Ok(tokens) => Ok((NOT_CACHEABLE, Json(tokens)).into_response()),
        Err(DirectoryError::InvalidCredentials) => Err(ApiError::Unauthenticated(
            "invalid username or password".into(),
        )),
        Err(error) => Err(ApiError::Unavailable(error.to_string())),
    }
}

/// Headers that describe one hop, not the request (RFC 9110 §7.6.1).
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

/// Passes the request to the service the load balancer's rules name.
async fn forward(State(door): Shared, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let base = match route(parts.method.as_str(), parts.uri.path()) {
        Some(Target::Commands) => &door.config.commands_url,
        Some(Target::Queries) => &door.config.queries_url,
        Some(Target::Mail) => &door.config.mail_url,
        Some(Target::NotFound) | None => {
            return ApiError::NotFound("no such API endpoint".into()).into_response()
        }
    };
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return ApiError::PayloadTooLarge(BODY_LIMIT).into_response();
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut outgoing = door.http.request(parts.method, format!("{base}{path}"));
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = match outgoing.body(body).send().await {
        Ok(answer) => answer,
        Err(error) => {
            tracing::warn!(%error, "a local service did not answer the front door");
            return ApiError::Unavailable("the service is not answering".into()).into_response();
        }
    };
    let status = answer.status();
    let mut headers = HeaderMap::new();
    for (name, value) in answer.headers() {
        if !hop_by_hop(name) {
            headers.append(name, value.clone());
        }
    }
    match answer.bytes().await {
        Ok(bytes) => (status, headers, bytes).into_response(),
        Err(error) => {
            tracing::warn!(%error, "a local service's answer broke off");
            ApiError::Unavailable("the service's answer broke off".into()).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_read_from_the_payload() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"s-1","username":"bob"}"#);
        let token = format!("h.{payload}.sig");
        assert_eq!(claim(&token, "sub").as_deref(), Some("s-1"));
        assert_eq!(claim(&token, "nope"), None);
        assert_eq!(claim("garbage", "sub"), None);
        assert_eq!(claim("a.!!!.c", "sub"), None);
    }

    #[test]
    fn a_failure_is_recorded_in_the_history_readers_form() {
        let entry = projections::sign_in_failures::entry("bob", &failure()).unwrap();
        assert_eq!(entry.category, "sign-in-failed");
        assert!(entry.id.starts_with("cognito-"), "{}", entry.id);
    }
}
