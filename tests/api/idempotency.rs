//! `Idempotency-Key`: a retry replays the first answer and appends nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{eur, TestApp};

#[tokio::test]
async fn a_retry_returns_the_first_answer_and_appends_nothing() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let account = app.account_of(&agent, 100).await;
    let path = format!("/v1/accounts/{account}/withdrawals");
    let key = [("idempotency-key", "withdraw-1")];

    let first = app
        .call(Method::POST, &path, Some(&agent.token), Some(eur(30)), &key)
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let retry = app
        .call(Method::POST, &path, Some(&agent.token), Some(eur(30)), &key)
        .await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(retry.body, first.body);
    assert_eq!(retry.headers["etag"], first.headers["etag"]);
    assert_eq!(retry.headers["idempotent-replay"], "true");
    assert_eq!(app.events("account", &account).await, 2);
    assert_eq!(app.balance(&account).await, 70);

    let different = app
        .call(Method::POST, &path, Some(&agent.token), Some(eur(31)), &key)
        .await;
    assert_eq!(different.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(different.problem_type(), "/problems/idempotency-key-reused");
    assert_eq!(app.events("account", &account).await, 2);

    // Keys belong to their caller: another agent's same key is a new request.
    let other = app.agent().await;
    let theirs = app.account_of(&other, 10).await;
    let reply = app
        .call(
            Method::POST,
            &format!("/v1/accounts/{theirs}/withdrawals"),
            Some(&other.token),
            Some(eur(1)),
            &key,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_refusal_is_replayed_too() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let account = app.account_of(&agent, 5).await;
    let path = format!("/v1/accounts/{account}/withdrawals");
    let key = [("idempotency-key", "too-much")];
    let first = app
        .call(Method::POST, &path, Some(&agent.token), Some(eur(10)), &key)
        .await;
    assert_eq!(first.status, StatusCode::CONFLICT);
    // Money arrives, but the retried request keeps its first answer.
    assert_eq!(
        app.post(
            &agent.token,
            &format!("/v1/accounts/{account}/deposits"),
            eur(100)
        )
        .await
        .status,
        StatusCode::CREATED
    );
    let retry = app
        .call(Method::POST, &path, Some(&agent.token), Some(eur(10)), &key)
        .await;
    assert_eq!(retry.status, StatusCode::CONFLICT);
    assert_eq!(retry.body, first.body);
    assert_eq!(app.balance(&account).await, 105);
}

#[tokio::test]
async fn concurrent_duplicates_have_one_effect() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let account = app.account_of(&agent, 0).await;
    let path = format!("/v1/accounts/{account}/deposits");
    let key = [("idempotency-key", "deposit-once")];
    let replies = futures::future::join_all(
        (0..10).map(|_| app.call(Method::POST, &path, Some(&agent.token), Some(eur(7)), &key)),
    )
    .await;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        assert_eq!(reply.body, replies[0].body);
    }
    assert_eq!(app.balance(&account).await, 7);
    assert_eq!(app.events("account", &account).await, 2);
}

#[tokio::test]
async fn a_new_client_is_created_once_under_a_key() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let key = [("idempotency-key", "onboard-ada")];
    let first = app
        .call(
            Method::POST,
            "/v1/clients",
            Some(&agent.token),
            Some(crate::support::client_body()),
            &key,
        )
        .await;
    let again = app
        .call(
            Method::POST,
            "/v1/clients",
            Some(&agent.token),
            Some(crate::support::client_body()),
            &key,
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.headers["location"], first.headers["location"]);
    assert_eq!(
        app.app
            .store
            .open_streams("client", &[])
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_bad_key_is_refused() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let long = "k".repeat(256);
    for key in [long.as_str(), "has space"] {
        let reply = app
            .call(
                Method::POST,
                "/v1/clients",
                Some(&agent.token),
                Some(json!({})),
                &[("idempotency-key", key)],
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{key}");
        assert!(reply.is_problem());
    }
}
