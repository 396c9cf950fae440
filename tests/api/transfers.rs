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

/// Records a transfer request straight in the store, as a process that stopped right
/// after it would have left it.
async fn requested_and_abandoned(
    app: &TestApp,
    actor: &str,
    from: &str,
    to: &str,
    amount: i64,
) -> domain::TransferId {
    use domain::metadata::CommandMetadata;
    use domain::transfer::{Transfer, TransferCommand};
    use event_store::Expected;

    let id = domain::TransferId::new();
    let metadata = CommandMetadata {
        actor_id: actor.to_string(),
        actor_role: domain::policy::Role::Agent,
        correlation_id: "c".into(),
        causation_id: "c".into(),
        idempotency_key: None,
        occurred_at: chrono::Utc::now(),
    };
    let amount = domain::Amount::new(amount, domain::Currency::parse("EUR").unwrap()).unwrap();
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
                reference: None,
            },
        )
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn an_interrupted_transfer_is_finished_at_the_next_start() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let from = app.account_of(&agent, 100).await;
    let to = app.account_of(&agent, 0).await;
    requested_and_abandoned(&app, &agent.id, &from, &to, 25).await;
    assert_eq!(app.app.transfers.settle_all().await.unwrap(), 1);
    assert_eq!((app.balance(&from).await, app.balance(&to).await), (75, 25));
    assert_eq!(app.app.transfers.settle_all().await.unwrap(), 0);
}

#[tokio::test]
async fn an_abandoned_transfer_is_taken_up_without_a_restart() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let from = app.account_of(&agent, 100).await;
    let to = app.account_of(&agent, 0).await;
    let started = std::time::Instant::now();
    requested_and_abandoned(&app, &agent.id, &from, &to, 25).await;
    // Nobody drives it but the running manager, which noticed the commit.
    crate::support::eventually(|| async {
        let balances = (app.balance(&from).await, app.balance(&to).await);
        (balances == (75, 25)).then_some(())
    })
    .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[tokio::test]
async fn two_drivers_of_one_transfer_reach_one_outcome() {
    use command_api::transfer_manager::Outcome;
    use command_api::{Pace, TransferManager};
    use domain::transfer::TransferStatus;

    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let from = app.account_of(&agent, 100).await;
    let to = app.account_of(&agent, 0).await;
    let frozen = app
        .call(
            Method::POST,
            &format!("/v1/accounts/{to}/freeze"),
            Some(&agent.token),
            None,
            &[],
        )
        .await;
    assert_eq!(frozen.status, StatusCode::OK);
    let id = requested_and_abandoned(&app, &agent.id, &from, &to, 30).await;
    // A second manager on the same store, as another service would be.
    let other = TransferManager::new(app.app.store.clone(), Pace::SHARED);
    let patience = std::time::Duration::from_secs(5);
    let (first, second) = tokio::join!(
        app.app.transfers.settle(id, patience),
        other.settle(id, patience)
    );
    for outcome in [first, second] {
        match outcome {
            Some(Outcome::Settled(transfer, _)) => {
                assert_eq!(transfer.status, TransferStatus::Failed);
                assert_eq!(transfer.failure_reason.as_deref(), Some("account-frozen"));
            }
            other => panic!("not settled: {other:?}"),
        }
    }
    assert_eq!((app.balance(&from).await, app.balance(&to).await), (100, 0));
    for (account, expected) in [
        (
            &from,
            ["AccountOpened", "TransferDebited", "TransferDebitReversed"],
        ),
        (&to, ["AccountOpened", "AccountFrozen", "TransferRefused"]),
    ] {
        let stream = app.app.store.stream("account", account).await.unwrap();
        let types: Vec<&str> = stream.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(types, expected);
    }
}
