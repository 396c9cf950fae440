//! Accounts and the movements on them.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{eur, TestApp};

#[tokio::test]
async fn opening_accounts() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let other = app.agent().await;
    let client = app.client_of(&agent).await;
    let path = format!("/v1/clients/{client}/accounts");
    let body = json!({"account_type": "savings", "currency": "EUR", "initial_deposit": {"amount_minor": 2500, "currency": "EUR"}});
    assert_eq!(
        app.post(&other.token, &path, body.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post(&app.root, &path, body.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    let opened = app.post(&agent.token, &path, body).await;
    assert_eq!(opened.status, StatusCode::CREATED, "{:?}", opened.body);
    assert_eq!(app.balance(&opened.id()).await, 2500);
    let mismatch = app
        .post(&agent.token, &path, json!({"account_type": "checking", "currency": "EUR", "initial_deposit": {"amount_minor": 1, "currency": "USD"}}))
        .await;
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(mismatch.problem_type(), "/problems/currency-mismatch");
    let unknown = app
        .post(
            &agent.token,
            "/v1/clients/0192f000-0000-7000-8000-000000000001/accounts",
            json!({"account_type": "savings", "currency": "EUR"}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deposits_and_withdrawals() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let other = app.agent().await;
    let auditor = app.staff(&app.admin().await.token, "auditor").await;
    let account = app.account_of(&agent, 100).await;

    let deposited = app
        .post(
            &agent.token,
            &format!("/v1/accounts/{account}/deposits"),
            json!({"amount": {"amount_minor": 50, "currency": "EUR"}, "description": "cash"}),
        )
        .await;
    assert_eq!(
        deposited.status,
        StatusCode::CREATED,
        "{:?}",
        deposited.body
    );
    assert_eq!(
        deposited.body["balance"],
        json!({"amount_minor": 150, "currency": "EUR"})
    );
    assert_eq!(deposited.body["version"], 2);
    assert!(deposited.body["transaction_id"].as_str().is_some());

    let withdrawn = app
        .post(
            &agent.token,
            &format!("/v1/accounts/{account}/withdrawals"),
            eur(150),
        )
        .await;
    assert_eq!(withdrawn.status, StatusCode::CREATED);
    assert_eq!(withdrawn.body["balance"]["amount_minor"], 0);

    let overdraft = app
        .post(
            &agent.token,
            &format!("/v1/accounts/{account}/withdrawals"),
            eur(1),
        )
        .await;
    assert_eq!(overdraft.status, StatusCode::CONFLICT);
    assert!(overdraft.is_problem());
    assert_eq!(overdraft.problem_type(), "/problems/insufficient-funds");
    assert_eq!(app.events("account", &account).await, 3);

    for token in [&other.token, &auditor.token, &app.root] {
        for kind in ["deposits", "withdrawals"] {
            let reply = app
                .post(token, &format!("/v1/accounts/{account}/{kind}"), eur(1))
                .await;
            assert_eq!(
                reply.status,
                StatusCode::FORBIDDEN,
                "{kind}: {:?}",
                reply.body
            );
        }
    }
    let unknown = app
        .post(
            &agent.token,
            "/v1/accounts/0192f000-0000-7000-8000-000000000001/deposits",
            eur(1),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(app.balance(&account).await, 0);
}

#[tokio::test]
async fn freeze_unfreeze_close() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let other = app.agent().await;
    let account = app.account_of(&agent, 10).await;
    let at = |action: &str| format!("/v1/accounts/{account}/{action}");

    assert_eq!(
        app.call(Method::POST, &at("freeze"), Some(&other.token), None, &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let frozen = app
        .post(
            &agent.token,
            &at("freeze"),
            json!({"reason": "suspicious activity"}),
        )
        .await;
    assert_eq!(frozen.status, StatusCode::OK, "{:?}", frozen.body);
    let deposit = app.post(&agent.token, &at("deposits"), eur(5)).await;
    assert_eq!(deposit.status, StatusCode::CONFLICT);
    assert_eq!(deposit.problem_type(), "/problems/account-frozen");
    assert_eq!(
        app.call(Method::POST, &at("unfreeze"), Some(&other.token), None, &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(Method::POST, &at("unfreeze"), Some(&agent.token), None, &[])
            .await
            .status,
        StatusCode::OK
    );

    let not_zero = app
        .call(Method::POST, &at("close"), Some(&agent.token), None, &[])
        .await;
    assert_eq!(not_zero.status, StatusCode::CONFLICT);
    assert_eq!(not_zero.problem_type(), "/problems/balance-not-zero");
    assert_eq!(
        app.post(&agent.token, &at("withdrawals"), eur(10))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.call(Method::POST, &at("close"), Some(&other.token), None, &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let closed = app
        .call(Method::POST, &at("close"), Some(&agent.token), None, &[])
        .await;
    assert_eq!(closed.status, StatusCode::OK);
    let after = app.post(&agent.token, &at("deposits"), eur(5)).await;
    assert_eq!(after.status, StatusCode::CONFLICT);
    assert_eq!(after.problem_type(), "/problems/account-closed");
}

#[tokio::test]
async fn workers_record_external_transactions_once() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let worker = app.worker().await;
    let account = app.account_of(&agent, 100).await;
    let path = format!("/v1/accounts/{account}/external-transactions");
    let body = json!({"external_id": "core-42", "direction": "debit", "amount": {"amount_minor": 30, "currency": "EUR"}, "booked_at": "2026-11-24T09:00:00Z", "description": "card payment"});

    let recorded = app.post(&worker, &path, body.clone()).await;
    assert_eq!(recorded.status, StatusCode::CREATED, "{:?}", recorded.body);
    assert_eq!(recorded.body["recorded"], true);
    assert_eq!(recorded.body["balance"]["amount_minor"], 70);
    let repeat = app.post(&worker, &path, body.clone()).await;
    assert_eq!(repeat.body["recorded"], false);
    assert_eq!(repeat.body["balance"]["amount_minor"], 70);
    assert_eq!(app.events("account", &account).await, 2);

    for token in [&agent.token, &app.root] {
        assert_eq!(
            app.post(token, &path, body.clone()).await.status,
            StatusCode::FORBIDDEN
        );
    }
    let overdraw = app.post(&worker, &path, json!({"external_id": "core-43", "direction": "debit", "amount": {"amount_minor": 71, "currency": "EUR"}, "booked_at": "2026-11-24T09:00:00Z"})).await;
    assert_eq!(overdraw.status, StatusCode::CONFLICT);
    assert_eq!(overdraw.problem_type(), "/problems/insufficient-funds");
}

#[tokio::test]
async fn twenty_concurrent_withdrawals_of_ten_from_a_hundred() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let account = app.account_of(&agent, 100).await;
    let path = format!("/v1/accounts/{account}/withdrawals");
    let attempts = (0..20).map(|_| app.post(&agent.token, &path, eur(10)));
    let replies = futures::future::join_all(attempts).await;
    let accepted = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    let refused = replies
        .iter()
        .filter(|r| {
            r.status == StatusCode::CONFLICT && r.problem_type() == "/problems/insufficient-funds"
        })
        .count();
    assert_eq!(
        (accepted, refused),
        (10, 10),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(app.balance(&account).await, 0);
    assert_eq!(app.events("account", &account).await, 11);
}

#[tokio::test]
async fn a_stale_if_match_is_refused() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let account = app.account_of(&agent, 100).await;
    let path = format!("/v1/accounts/{account}/deposits");
    let fresh = app
        .call(
            Method::POST,
            &path,
            Some(&agent.token),
            Some(eur(1)),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(fresh.status, StatusCode::CREATED, "{:?}", fresh.body);
    assert_eq!(fresh.headers["etag"], "\"2\"");
    let stale = app
        .call(
            Method::POST,
            &path,
            Some(&agent.token),
            Some(eur(1)),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.problem_type(), "/problems/version-mismatch");
    let malformed = app
        .call(
            Method::POST,
            &path,
            Some(&agent.token),
            Some(eur(1)),
            &[("if-match", "two")],
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.events("account", &account).await, 2);
}
