//! Token verification against a JWKS served over HTTP: keys are fetched on first use and
//! again when a token names an unknown key id (rotation), at most once per interval.

use api_kit::auth::{HttpKeySource, TokenError, TokenVerifier};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use domain::policy::Role;
use identity::{EmbeddedDirectory, SigningKey, TokenIssuer};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ISSUER: &str = "https://issuer.test";

#[derive(Clone)]
struct Jwks {
    current: Arc<Mutex<serde_json::Value>>,
    fetches: Arc<AtomicUsize>,
}

async fn serve_jwks(jwks: Jwks) -> String {
    let router = Router::new()
        .route(
            "/jwks.json",
            get(|State(jwks): State<Jwks>| async move {
                jwks.fetches.fetch_add(1, Ordering::SeqCst);
                Json(jwks.current.lock().unwrap().clone())
            }),
        )
        .with_state(jwks);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/jwks.json")
}

async fn issuer(key: Arc<SigningKey>, dir: &tempfile::TempDir) -> TokenIssuer {
    let directory = Arc::new(
        EmbeddedDirectory::open(&dir.path().join("identity.db"))
            .await
            .unwrap(),
    );
    TokenIssuer::new(ISSUER, key, directory)
}

#[tokio::test]
async fn a_rotated_key_is_fetched_and_a_retired_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let old = Arc::new(SigningKey::ephemeral().unwrap());
    let new = Arc::new(SigningKey::ephemeral().unwrap());
    let jwks = Jwks {
        current: Arc::new(Mutex::new(old.jwks())),
        fetches: Arc::new(AtomicUsize::new(0)),
    };
    let url = serve_jwks(jwks.clone()).await;
    let verifier = TokenVerifier::new(ISSUER, Arc::new(HttpKeySource::new(url)))
        .with_refresh_interval(Duration::ZERO);

    let old_token = issuer(old, &dir)
        .await
        .access_token("s-1", "alice", Role::Agent, "crm-cli")
        .unwrap();
    let claims = verifier.verify(&old_token).await.unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.groups.as_slice()),
        ("s-1", &["agent".to_string()][..])
    );
    verifier.verify(&old_token).await.unwrap();
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 1, "keys are cached");

    *jwks.current.lock().unwrap() = new.jwks();
    let new_token = issuer(new, &dir)
        .await
        .access_token("s-2", "bob", Role::Admin, "crm-cli")
        .unwrap();
    assert_eq!(verifier.verify(&new_token).await.unwrap().sub, "s-2");
    assert_eq!(
        jwks.fetches.load(Ordering::SeqCst),
        2,
        "an unknown kid triggers one fetch"
    );
    assert_eq!(
        verifier.verify(&old_token).await,
        Err(TokenError::UnknownKey)
    );
}

#[tokio::test]
async fn unknown_kids_do_not_hammer_the_jwks() {
    let dir = tempfile::tempdir().unwrap();
    let known = Arc::new(SigningKey::ephemeral().unwrap());
    let stranger = Arc::new(SigningKey::ephemeral().unwrap());
    let jwks = Jwks {
        current: Arc::new(Mutex::new(known.jwks())),
        fetches: Arc::new(AtomicUsize::new(0)),
    };
    let url = serve_jwks(jwks.clone()).await;
    let verifier = TokenVerifier::new(ISSUER, Arc::new(HttpKeySource::new(url)))
        .with_refresh_interval(Duration::from_secs(3600));
    let forged = issuer(stranger, &dir)
        .await
        .access_token("s", "mallory", Role::Admin, "crm-cli")
        .unwrap();
    for _ in 0..5 {
        assert_eq!(verifier.verify(&forged).await, Err(TokenError::UnknownKey));
    }
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unreachable_jwks_is_reported_as_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SigningKey::ephemeral().unwrap());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    drop(listener);
    let verifier = TokenVerifier::new(ISSUER, Arc::new(HttpKeySource::new(url)));
    let token = issuer(key, &dir)
        .await
        .access_token("s", "a", Role::Agent, "crm-cli")
        .unwrap();
    assert!(matches!(
        verifier.verify(&token).await,
        Err(TokenError::KeysUnavailable(_))
    ));
}

#[tokio::test]
async fn client_ids_are_checked_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SigningKey::ephemeral().unwrap());
    let jwks = Jwks {
        current: Arc::new(Mutex::new(key.jwks())),
        fetches: Arc::new(AtomicUsize::new(0)),
    };
    let url = serve_jwks(jwks).await;
    let verifier = TokenVerifier::new(ISSUER, Arc::new(HttpKeySource::new(url)))
        .with_client_ids(vec!["app-client".into()]);
    let issuer = issuer(key, &dir).await;
    assert!(verifier
        .verify(
            &issuer
                .access_token("s", "a", Role::Agent, "app-client")
                .unwrap()
        )
        .await
        .is_ok());
    assert_eq!(
        verifier
            .verify(
                &issuer
                    .access_token("s", "a", Role::Agent, "other-client")
                    .unwrap()
            )
            .await,
        Err(TokenError::UnknownClient)
    );
}
