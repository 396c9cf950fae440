//! The embedded identity provider: login, code + PKCE, refresh, client credentials,
//! discovery and JWKS.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::{client_body, TestApp, PASSWORD, ROOT_PASSWORD};

const REDIRECT: &str = "http://127.0.0.1:5173/callback";

#[tokio::test]
async fn login_answers_the_same_for_unknown_users_and_wrong_passwords() {
    let app = TestApp::spawn().await;
    let wrong = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "root", "password": "wrong-password-here"})),
            &[],
        )
        .await;
    let unknown = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "nobody", "password": "wrong-password-here"})),
            &[],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body, unknown.body);
    let good = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "root", "password": ROOT_PASSWORD})),
            &[],
        )
        .await;
    assert_eq!(good.status, StatusCode::OK);
    for field in ["access_token", "id_token", "refresh_token", "expires_in"] {
        assert!(good.body.get(field).is_some(), "{field}");
    }
    assert_eq!(good.body["token_type"], "Bearer");
    // The access token has Cognito's shape.
    let payload = good.body["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["cognito:groups"], json!(["root-admin"]));
    assert_eq!(claims["token_use"], "access");
    assert_eq!(claims["iss"], app.base.as_str());
    for field in ["sub", "username", "exp", "client_id"] {
        assert!(claims.get(field).is_some(), "{field}");
    }
}

async fn token(app: &TestApp, form: &[(&str, &str)]) -> crate::support::Reply {
    TestApp::read(
        app.http
            .post(app.url("/oauth2/token"))
            .form(form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn authorization_code_with_pkce_then_refresh() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let verifier = "a-random-verifier-with-enough-entropy-0123456789";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let query = [
        ("response_type", "code"),
        ("client_id", "crm-ui"),
        ("redirect_uri", REDIRECT),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "xyz"),
        ("scope", "openid"),
    ];
    let page = app
        .http
        .get(app.url("/oauth2/authorize"))
        .query(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("name=\"password\""));

    let mut bad_redirect = query.to_vec();
    bad_redirect[2] = ("redirect_uri", "https://evil.example/callback");
    let refused = app
        .http
        .get(app.url("/oauth2/authorize"))
        .query(&bad_redirect)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    let mut wrong_password = query.to_vec();
    wrong_password.extend([
        ("username", agent.username.as_str()),
        ("password", "not-the-password"),
    ]);
    let failed = app
        .http
        .post(app.url("/oauth2/authorize"))
        .form(&wrong_password)
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);

    let mut sign_in = query.to_vec();
    sign_in.extend([
        ("username", agent.username.as_str()),
        ("password", PASSWORD),
    ]);
    let redirect = app
        .http
        .post(app.url("/oauth2/authorize"))
        .form(&sign_in)
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), StatusCode::FOUND);
    let location = url::Url::parse(redirect.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT));
    let params: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(params["state"], "xyz");
    let code = params["code"].clone();

    let wrong_verifier = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", "crm-ui"),
            ("code_verifier", "wrong"),
        ],
    )
    .await;
    assert_eq!(wrong_verifier.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong_verifier.body["error"], "invalid_grant");
    // A failed redemption spends the code: codes are single-use whatever happens.
    let spent = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", "crm-ui"),
            ("code_verifier", verifier),
        ],
    )
    .await;
    assert_eq!(spent.status, StatusCode::BAD_REQUEST);

    let redirect = app
        .http
        .post(app.url("/oauth2/authorize"))
        .form(&sign_in)
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(redirect.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    let tokens = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", "crm-ui"),
            ("code_verifier", verifier),
        ],
    )
    .await;
    assert_eq!(tokens.status, StatusCode::OK, "{:?}", tokens.body);
    let access = tokens.body["access_token"].as_str().unwrap();
    assert_eq!(
        app.post(access, "/v1/clients", client_body()).await.status,
        StatusCode::CREATED
    );

    let refresh = tokens.body["refresh_token"].as_str().unwrap().to_string();
    let renewed = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "crm-ui"),
        ],
    )
    .await;
    assert_eq!(renewed.status, StatusCode::OK, "{:?}", renewed.body);
    assert_ne!(renewed.body["refresh_token"], tokens.body["refresh_token"]);
    let reused = token(
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(
        reused.status,
        StatusCode::BAD_REQUEST,
        "a refresh token works once"
    );

    // Disabling the user ends their refresh tokens too.
    let admin_token = app.login("root", ROOT_PASSWORD).await;
    let _ = admin_token;
    let next = renewed.body["refresh_token"].as_str().unwrap().to_string();
    let admin = app.admin().await;
    let other_agent = app.staff(&admin.token, "agent").await;
    let login = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": other_agent.username, "password": PASSWORD})),
            &[],
        )
        .await;
    let their_refresh = login.body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(
        app.post(
            &admin.token,
            &format!("/v1/staff/{}/disable", other_agent.id),
            json!({})
        )
        .await
        .status,
        StatusCode::OK
    );
    let after_disable = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &their_refresh),
        ],
    )
    .await;
    assert_eq!(after_disable.status, StatusCode::BAD_REQUEST);
    let still_fine = token(
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", &next)],
    )
    .await;
    assert_eq!(still_fine.status, StatusCode::OK);
}

#[tokio::test]
async fn client_credentials_for_workers() {
    let app = TestApp::spawn().await;
    let worker = app.app.directory.register_worker("sftp").await.unwrap();
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", worker.client_id, worker.client_secret));
    let response = app
        .http
        .post(app.url("/oauth2/token"))
        .header("authorization", format!("Basic {basic}"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let reply = TestApp::read(response).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert!(reply.body.get("refresh_token").is_none());
    let wrong = token(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &worker.client_id),
            ("client_secret", "guess"),
        ],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body["error"], "invalid_client");
    let unsupported = token(
        &app,
        &[
            ("grant_type", "password"),
            ("username", "root"),
            ("password", ROOT_PASSWORD),
        ],
    )
    .await;
    assert_eq!(unsupported.body["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn discovery_and_keys() {
    let app = TestApp::spawn().await;
    let discovery = app
        .call(
            Method::GET,
            "/.well-known/openid-configuration",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(discovery.status, StatusCode::OK);
    assert_eq!(discovery.body["issuer"], app.base.as_str());
    assert_eq!(
        discovery.body["token_endpoint"],
        format!("{}/oauth2/token", app.base)
    );
    assert_eq!(
        discovery.body["code_challenge_methods_supported"],
        json!(["S256"])
    );
    let jwks = app
        .call(Method::GET, "/.well-known/jwks.json", None, None, &[])
        .await;
    let key = &jwks.body["keys"][0];
    assert_eq!(key["kty"], "EC");
    assert!(key.get("d").is_none(), "the private part never leaves");

    // The key survives a restart: tokens issued before it still verify after.
    let token = app.login("root", ROOT_PASSWORD).await;
    let restarted = app.restart().await;
    let again = restarted
        .call(Method::GET, "/.well-known/jwks.json", None, None, &[])
        .await;
    assert_eq!(again.body["keys"][0]["kid"], key["kid"]);
    let _ = token;
}

#[tokio::test]
async fn repeated_failures_lock_a_name_for_a_while() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    for _ in 0..5 {
        let wrong = app
            .call(
                Method::POST,
                "/auth/login",
                None,
                Some(json!({"username": agent.username, "password": "guessing-passwords"})),
                &[],
            )
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
    // Now even the right password is refused, with the same answer.
    let locked = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": agent.username, "password": PASSWORD})),
            &[],
        )
        .await;
    assert_eq!(locked.status, StatusCode::UNAUTHORIZED);
    assert_eq!(locked.body["detail"], "invalid username or password");
    // Other people are not affected, and tokens already issued keep working.
    assert_eq!(
        app.call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "root", "password": ROOT_PASSWORD})),
            &[]
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.post(&agent.token, "/v1/clients", client_body())
            .await
            .status,
        StatusCode::CREATED
    );
}
