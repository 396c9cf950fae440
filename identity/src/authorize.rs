//! The authorization endpoint (code flow with PKCE S256): a sign-in page, and its
//! submission, which redirects back to the client with a one-time code. Only registered
//! redirect URIs are ever redirected to.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use url::Url;

use crate::Identity;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub scope: Option<String>,
}

/// The sign-in form: the authorization request's parameters, and the credentials.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SignIn {
    #[serde(flatten)]
    pub params: AuthorizeParams,
    pub username: String,
    pub password: String,
}

/// Text made safe for HTML.
pub fn escape(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Checks the request; an error here is shown, never redirected.
async fn validate(identity: &Identity, params: &AuthorizeParams) -> Result<(), &'static str> {
    if params.response_type.as_deref() != Some("code") {
        return Err("response_type must be code");
    }
    if params.code_challenge_method.as_deref() != Some("S256")
        || params.code_challenge.as_deref().is_none_or(str::is_empty)
    {
        return Err("PKCE is required: code_challenge with code_challenge_method=S256");
    }
    let (Some(client_id), Some(redirect_uri)) = (&params.client_id, &params.redirect_uri) else {
        return Err("client_id and redirect_uri are required");
    };
    match identity
        .directory
        .public_client_allows(client_id, redirect_uri)
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err("unknown client or unregistered redirect_uri"),
        Err(_) => Err("the identity provider is unavailable"),
    }
}

/// The sign-in page for an authorization request, with `message` as an error if any.
pub fn sign_in_form(params: &AuthorizeParams, message: Option<&str>) -> String {
    let hidden: String = [
        ("response_type", &params.response_type),
        ("client_id", &params.client_id),
        ("redirect_uri", &params.redirect_uri),
        ("code_challenge", &params.code_challenge),
        ("code_challenge_method", &params.code_challenge_method),
        ("state", &params.state),
        ("nonce", &params.nonce),
        ("scope", &params.scope),
    ]
    .into_iter()
    .filter_map(|(name, value)| {
        value.as_ref().map(|v| {
            format!(
                r#"<input type="hidden" name="{name}" value="{}">"#,
                escape(v)
            )
        })
    })
    .collect();
    let message = message
        .map(|m| format!(r#"<p role="alert" class="error">{}</p>"#, escape(m)))
        .unwrap_or_default();
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Ledgerline</title><style>
body{{font-family:system-ui,sans-serif;background:#f4f6f8;color:#1c2530;display:flex;justify-content:center;padding-top:10vh}}
form{{background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002;width:20rem}}
label{{display:block;margin-top:1rem;font-weight:600}}input[type=text],input[type=password]{{width:100%;padding:.5rem;margin-top:.25rem;box-sizing:border-box}}
button{{margin-top:1.5rem;width:100%;padding:.6rem;background:#0b4f8a;color:#fff;border:0;border-radius:4px;font-size:1rem}}
.error{{color:#a4000f}}</style></head><body><form method="post" action="/oauth2/authorize">
<h1>Ledgerline</h1>{message}{hidden}
<label for="username">Username</label><input id="username" name="username" type="text" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form></body></html>"#
    )
}

/// An HTML page that is never cached or framed.
pub fn page_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, Html(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        "no-store".parse().expect("static header"),
    );
    headers.insert("x-frame-options", "DENY".parse().expect("static header"));
    response
}

/// The sign-in page of the authorization code flow (PKCE S256 required).
#[utoipa::path(get, path = "/oauth2/authorize", tag = "identity",
    params(("response_type" = String, Query), ("client_id" = String, Query), ("redirect_uri" = String, Query),
        ("code_challenge" = String, Query), ("code_challenge_method" = String, Query), ("state" = Option<String>, Query)),
    responses((status = 200, description = "HTML sign-in form"), (status = 400, description = "Unknown client or redirect URI")))]
pub(crate) async fn page(
    State(identity): State<Identity>,
    Query(params): Query<AuthorizeParams>,
) -> Response {
    match validate(&identity, &params).await {
        Ok(()) => page_response(StatusCode::OK, sign_in_form(&params, None)),
        Err(reason) => page_response(
            StatusCode::BAD_REQUEST,
            format!(
                "<!doctype html><title>Error</title><p>{}</p>",
                escape(reason)
            ),
        ),
    }
}

/// The sign-in form's submission: redirects to the client with a one-time code.
#[utoipa::path(post, path = "/oauth2/authorize", tag = "identity",
    request_body(content = SignIn, content_type = "application/x-www-form-urlencoded"),
    responses((status = 302, description = "To redirect_uri with code and state"),
        (status = 400, description = "Unknown client or redirect URI, or a missing PKCE challenge"),
        (status = 401, description = "The form again, with an error"),
        (status = 413, description = "The form is too large"),
        (status = 415, description = "Not a form (application/x-www-form-urlencoded)"),
        (status = 422, description = "The form lacks the username or password")))]
pub(crate) async fn submit(
    State(identity): State<Identity>,
    source: crate::routes::Source,
    api_kit::AppForm(sign_in): api_kit::AppForm<SignIn>,
) -> Response {
    let params = sign_in.params;
    if let Err(reason) = validate(&identity, &params).await {
        return page_response(
            StatusCode::BAD_REQUEST,
            format!(
                "<!doctype html><title>Error</title><p>{}</p>",
                escape(reason)
            ),
        );
    }
    let user = match identity
        .directory
        .authenticate(&sign_in.username, &sign_in.password, &source.0)
        .await
    {
        Ok(user) => user,
        Err(_) => {
            tracing::info!(username = %sign_in.username, "failed sign-in (authorize)");
            identity
                .sign_ins
                .sign_in_failed(&sign_in.username, "authorization-code")
                .await;
            return page_response(
                StatusCode::UNAUTHORIZED,
                sign_in_form(&params, Some("Invalid username or password.")),
            );
        }
    };
    let (client_id, redirect_uri, challenge) = (
        params.client_id.clone().unwrap_or_default(),
        params.redirect_uri.clone().unwrap_or_default(),
        params.code_challenge.clone().unwrap_or_default(),
    );
    let code = match identity
        .issuer
        .create_code(
            &user,
            &client_id,
            &redirect_uri,
            &challenge,
            params.nonce.as_deref(),
        )
        .await
    {
        Ok(code) => code,
        Err(error) => {
            tracing::error!(%error, "could not create an authorization code");
            return page_response(
                StatusCode::SERVICE_UNAVAILABLE,
                sign_in_form(&params, Some("Sign-in is unavailable; try again.")),
            );
        }
    };
    let Ok(mut target) = Url::parse(&redirect_uri) else {
        return page_response(
            StatusCode::BAD_REQUEST,
            "<!doctype html><p>invalid redirect_uri</p>".into(),
        );
    };
    {
        let mut query = target.query_pairs_mut();
        query.append_pair("code", &code);
        if let Some(state) = &params.state {
            query.append_pair("state", state);
        }
    }
    tracing::info!(user = %user.id, "sign-in (authorize)");
    identity
        .sign_ins
        .signed_in(&user, "authorization-code")
        .await;
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}
