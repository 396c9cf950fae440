//! Authentication: every command needs a valid access token; forged, expired or foreign
//! tokens get 401.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{client_body, TestApp};

/// Every command route, with a body that would otherwise be valid enough to reach auth.
const ROUTES: [(&str, &str); 16] = [
    ("POST", "/v1/staff"),
    ("DELETE", "/v1/staff/0192f000-0000-7000-8000-000000000001"),
    (
        "POST",
        "/v1/staff/0192f000-0000-7000-8000-000000000001/disable",
    ),
    (
        "POST",
        "/v1/staff/0192f000-0000-7000-8000-000000000001/enable",
    ),
    ("POST", "/v1/clients"),
    ("PATCH", "/v1/clients/0192f000-0000-7000-8000-000000000001"),
    (
        "POST",
        "/v1/clients/0192f000-0000-7000-8000-000000000001/deactivate",
    ),
    (
        "POST",
        "/v1/clients/0192f000-0000-7000-8000-000000000001/accounts",
    ),
    (
        "POST",
        "/v1/accounts/0192f000-0000-7000-8000-000000000001/deposits",
    ),
    (
        "POST",
        "/v1/accounts/0192f000-0000-7000-8000-000000000001/withdrawals",
    ),
    (
        "POST",
        "/v1/accounts/0192f000-0000-7000-8000-000000000001/external-transactions",
    ),
    (
        "POST",
        "/v1/accounts/0192f000-0000-7000-8000-000000000001/freeze",
    ),
    (
        "POST",
        "/v1/accounts/0192f000-0000-7000-8000-000000000001/unfreeze",
    ),
    (
        "POST",
        "/v1/accounts/0192f000-0000-7000-8000-000000000001/close",
    ),
    ("POST", "/v1/transfers"),
    ("GET", "/v1/transfers/0192f000-0000-7000-8000-000000000001"),
];

#[tokio::test]
async fn every_route_wants_a_token() {
    let app = TestApp::spawn().await;
    for (method, path) in ROUTES {
        let method: Method = method.parse().unwrap();
        for header in [
            None,
            Some("Bearer"),
            Some("Basic cm9vdDpyb290"),
            Some("Bearer not.a.jwt"),
        ] {
            let mut request = app
                .http
                .request(method.clone(), app.url(path))
                .json(&json!({}));
            if let Some(value) = header {
                request = request.header("authorization", value);
            }
            let reply = TestApp::read(request.send().await.unwrap()).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {header:?}"
            );
            assert!(reply.is_problem());
            assert_eq!(reply.headers["www-authenticate"], "Bearer");
        }
    }
}

struct Forger {
    key: EncodingKey,
    kid: String,
    issuer: String,
}

impl Forger {
    async fn new(app: &TestApp) -> Forger {
        let pem = std::fs::read(app.dir.path().join("signing-key.pem")).unwrap();
        let jwks = app
            .call(Method::GET, "/.well-known/jwks.json", None, None, &[])
            .await;
        Forger {
            key: EncodingKey::from_ec_pem(&pem).unwrap(),
            kid: jwks.body["keys"][0]["kid"].as_str().unwrap().to_string(),
            issuer: app.base.clone(),
        }
    }

    fn claims(&self, sub: &str) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({"sub": sub, "username": "forged", "cognito:groups": ["agent"], "token_use": "access",
               "iss": self.issuer, "exp": now + 600, "iat": now, "client_id": "crm-cli"})
    }

    fn sign(&self, claims: &Value, kid: &str, key: &EncodingKey) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_string());
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }
}

#[tokio::test]
async fn forged_and_stale_tokens_are_refused() {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};

    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let forger = Forger::new(&app).await;
    let genuine = forger.sign(&forger.claims(&agent.id), &forger.kid, &forger.key);
    // The forger's own token is accepted, so each refusal below is for its one flaw.
    assert_eq!(
        app.post(&genuine, "/v1/clients", client_body())
            .await
            .status,
        StatusCode::CREATED
    );

    let mut expired = forger.claims(&agent.id);
    expired["exp"] = json!(chrono::Utc::now().timestamp() - 3600);
    let mut foreign = forger.claims(&agent.id);
    foreign["iss"] = json!("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other");
    let mut id_token = forger.claims(&agent.id);
    id_token["token_use"] = json!("id");
    let other_key = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let other_key =
        EncodingKey::from_ec_pem(other_key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes())
            .unwrap();
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(forger.claims(&agent.id).to_string())
    );
    let jwks = app
        .call(Method::GET, "/.well-known/jwks.json", None, None, &[])
        .await;
    let mut hs256 = Header::new(Algorithm::HS256);
    hs256.kid = Some(forger.kid.clone());
    let confused = jsonwebtoken::encode(
        &hs256,
        &forger.claims(&agent.id),
        &EncodingKey::from_secret(jwks.body.to_string().as_bytes()),
    )
    .unwrap();
    let mut tampered_parts: Vec<String> = genuine.split('.').map(String::from).collect();
    let mut elevated = forger.claims(&agent.id);
    elevated["cognito:groups"] = json!(["admin"]);
    tampered_parts[1] = URL_SAFE_NO_PAD.encode(elevated.to_string());
    let tampered = tampered_parts.join(".");

    let cases = [
        ("expired", forger.sign(&expired, &forger.kid, &forger.key)),
        (
            "wrong issuer",
            forger.sign(&foreign, &forger.kid, &forger.key),
        ),
        ("id token", forger.sign(&id_token, &forger.kid, &forger.key)),
        (
            "wrong signature",
            forger.sign(&forger.claims(&agent.id), &forger.kid, &other_key),
        ),
        (
            "unknown kid",
            forger.sign(&forger.claims(&agent.id), "no-such-key", &forger.key),
        ),
        ("alg none", unsigned),
        ("hs256 with the public key", confused),
        ("tampered claims", tampered),
    ];
    let before = app
        .app
        .store
        .open_streams("client", &[])
        .await
        .unwrap()
        .len();
    for (name, token) in cases {
        let reply = app.post(&token, "/v1/clients", client_body()).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{name}: {:?}",
            reply.body
        );
        assert!(reply.is_problem(), "{name}");
    }
    assert_eq!(
        app.app
            .store
            .open_streams("client", &[])
            .await
            .unwrap()
            .len(),
        before
    );
}
