//! Transfers: the saga moves money or, when a side refuses, moves none.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::TestApp;

fn transfer(from: &str, to: &str, amount: i64) -> serde_json::Value {
    json!({"from_account_id": from, "to_account_id": to, "amount": {"amount_minor": amount, "currency": "EUR"}})
}

#[tokio::test]
async fn a_transfer_moves_money_between_accounts() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let other = app.agent().await;
    let from = app.account_of(&agent, 100).await;
    let to = app.account_of(&other, 5).await;

    let done = app
        .post(&agent.token, "/v1/transfers", transfer(&from, &to, 40))
        .await;
    assert_eq!(done.status, StatusCode::CREATED, "{:?}", done.body);
    assert_eq!(done.body["status"], "completed");
    assert_eq!((app.balance(&from).await, app.balance(&to).await), (60, 45));

    let id = done.id();
    let read = app
        .call(
            Method::GET,
            &format!("/v1/transfers/{id}"),
            Some(&agent.token),
            None,
            &[],
        )
        .await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["amount"]["amount_minor"], 40);
    let denied = app
        .call(
            Method::GET,
            &format!("/v1/transfers/{id}"),
            Some(&other.token),
            None,
            &[],
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    // Only the source account's agent may send money from it.
    let stolen = app
        .post(&other.token, "/v1/transfers", transfer(&from, &to, 1))
        .await;
    assert_eq!(stolen.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_refused_debit_moves_nothing() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let from = app.account_of(&agent, 10).await;
    let to = app.account_of(&agent, 0).await;
    let refused = app
        .post(&agent.token, "/v1/transfers", transfer(&from, &to, 11))
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{:?}", refused.body);
    assert_eq!(refused.problem_type(), "/problems/insufficient-funds");
    assert_eq!((app.balance(&from).await, app.balance(&to).await), (10, 0));
    let open = app
        .app
        .store
        .open_streams("transfer", &["TransferCompleted", "TransferFailed"])
        .await
        .unwrap();
    assert!(open.is_empty(), "the failed transfer is recorded as failed");
}

#[tokio::test]
async fn a_refused_credit_is_compensated() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let from = app.account_of(&agent, 100).await;
    let to = app.account_of(&agent, 0).await;
    assert_eq!(
        app.call(
            Method::POST,
            &format!("/v1/accounts/{to}/freeze"),
            Some(&agent.token),
            None,
            &[]
        )
        .await
        .status,
        StatusCode::OK
    );

    let refused = app
        .post(&agent.token, "/v1/transfers", transfer(&from, &to, 30))
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{:?}", refused.body);
    assert_eq!(refused.problem_type(), "/problems/account-frozen");
    assert_eq!((app.balance(&from).await, app.balance(&to).await), (100, 0));
    let stream = app.app.store.stream("account", &from).await.unwrap();
    let types: Vec<&str> = stream.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["AccountOpened", "TransferDebited", "TransferDebitReversed"]
    );
}

#[tokio::test]
async fn transfer_input_is_checked_before_anything_happens() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let from = app.account_of(&agent, 100).await;
    let same = app
        .post(&agent.token, "/v1/transfers", transfer(&from, &from, 1))
        .await;
    assert_eq!(same.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(same.fields(), ["to_account_id"]);
    let nowhere = app
        .post(
            &agent.token,
            "/v1/transfers",
            transfer(&from, "0192f000-0000-7000-8000-000000000001", 1),
        )
        .await;
    assert_eq!(nowhere.status, StatusCode::UNPROCESSABLE_ENTITY);
    let usd = app.post(&agent.token, "/v1/transfers", json!({"from_account_id": from, "to_account_id": app.account_of(&agent, 0).await, "amount": {"amount_minor": 1, "currency": "USD"}})).await;
    assert_eq!(usd.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(usd.problem_type(), "/problems/currency-mismatch");
    assert_eq!(app.balance(&from).await, 100);
}

#[tokio::test]
async fn an_interrupted_transfer_is_finished_at_the_next_start() {
    use domain::metadata::CommandMetadata;
    use domain::transfer::{Transfer, TransferCommand};
    use event_store::Expected;

    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let from = app.account_of(&agent, 100).await;
    let to = app.account_of(&agent, 0).await;
    // A transfer whose process stopped right after it was requested.
    let id = domain::TransferId::new();
    let metadata = CommandMetadata {
        actor_id: agent.id.clone(),
        actor_role: domain::policy::Role::Agent,
        correlation_id: "c".into(),
        causation_id: "c".into(),
        idempotency_key: None,
        occurred_at: chrono::Utc::now(),
    };
    let amount = domain::Money::positive(25, domain::Currency::parse("EUR").unwrap()).unwrap();
    app.app
        .store
        .execute::<Transfer>(
            &id.to_string(),
            Expected::Any,
            &metadata,
            TransferCommand::Request {
                transfer_id: id,
                from_account: from.parse().unwrap(),
                to_account: to.parse().unwrap(),
                amount,
            },
        )
        .await
        .unwrap();
    assert_eq!(app.app.transfers.settle_all().await.unwrap(), 1);
    assert_eq!((app.balance(&from).await, app.balance(&to).await), (75, 25));
    assert_eq!(app.app.transfers.settle_all().await.unwrap(), 0);
}
