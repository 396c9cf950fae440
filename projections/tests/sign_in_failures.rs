//! Failed sign-ins read from Cognito's sign-in histories: which events become entries and
//! in what form; on PostgreSQL, a history read twice records each failure once, and a
//! run moves its read position only when it read everything. moto keeps no sign-in
//! histories (`AdminListUserAuthEvents` is not emulated), so the events here are built
//! with the SDK's own types, as its deserializer builds them from Cognito's answer.

use aws_sdk_cognitoidentityprovider::primitives::DateTime;
use aws_sdk_cognitoidentityprovider::types::{
    AuthEventType, ChallengeName, ChallengeResponse, ChallengeResponseType, EventContextDataType,
    EventResponseType, EventRiskType, EventType, RiskDecisionType, RiskLevelType,
};
use aws_sdk_cognitoidentityprovider::Client;
use projections::sign_in_failures::{collect, entry, AuditError};
use projections::{LogFilter, SystemLog};
use serde_json::Value;

fn attempt(id: &str, response: EventResponseType, failed: ChallengeName) -> AuthEventType {
    let challenge = |name: ChallengeName, failure: bool| {
        ChallengeResponseType::builder()
            .challenge_name(name)
            .challenge_response(if failure {
                ChallengeResponse::Failure
            } else {
                ChallengeResponse::Success
            })
            .build()
    };
    AuthEventType::builder()
        .event_id(id)
        .event_type(EventType::SignIn)
        .event_response(response)
        .creation_date(DateTime::from_secs(1_795_000_000))
        .challenge_responses(challenge(
            ChallengeName::Password,
            failed == ChallengeName::Password,
        ))
        .challenge_responses(challenge(ChallengeName::Mfa, failed == ChallengeName::Mfa))
        .event_context_data(
            EventContextDataType::builder()
                .ip_address("192.0.2.7")
                .country("Ireland")
                .build(),
        )
        .event_risk(
            EventRiskType::builder()
                .risk_level(RiskLevelType::Low)
                .risk_decision(RiskDecisionType::NoRisk)
                .compromised_credentials_detected(false)
                .build(),
        )
        .build()
}

fn details(entry: &projections::LogEntry) -> Value {
    serde_json::from_str(entry.details.as_deref().unwrap()).unwrap()
}

#[test]
fn only_failed_sign_ins_become_entries() {
    let wrong = entry(
        "bob",
        &attempt("e-1", EventResponseType::Fail, ChallengeName::Password),
    )
    .unwrap();
    assert_eq!(
        (
            wrong.id.as_str(),
            wrong.level.as_str(),
            wrong.category.as_str()
        ),
        ("cognito-e-1", "warn", "sign-in-failed")
    );
    assert_eq!(wrong.message, "failed sign-in as bob");
    assert_eq!(wrong.occurred_at, "2026-11-18T11:06:40.000000Z");
    let said = details(&wrong);
    assert_eq!(said["method"], "cognito");
    assert_eq!(said["username"], "bob");
    assert_eq!(said["reason"], "wrong password");
    assert_eq!(said["ip"], "192.0.2.7");
    assert_eq!(said["risk_level"], "Low");
    assert_eq!(wrong.actor_id, None, "as crm serve: a failure names no one");

    let mfa = entry(
        "bob",
        &attempt("e-2", EventResponseType::Fail, ChallengeName::Mfa),
    )
    .unwrap();
    assert_eq!(details(&mfa)["reason"], "wrong MFA code");

    let mut blocked = attempt("e-3", EventResponseType::Fail, ChallengeName::Password);
    blocked.event_risk = Some(
        EventRiskType::builder()
            .risk_decision(RiskDecisionType::Block)
            .build(),
    );
    assert_eq!(
        details(&entry("bob", &blocked).unwrap())["reason"],
        "blocked as a risk"
    );

    // A sign-in that passed is the trigger's to record; other events are not sign-ins.
    let passed = attempt("e-4", EventResponseType::Pass, ChallengeName::Password);
    assert_eq!(entry("bob", &passed), None);
    let mut reset = attempt("e-5", EventResponseType::Fail, ChallengeName::Password);
    reset.event_type = Some(EventType::ForgotPassword);
    assert_eq!(entry("bob", &reset), None);
    let mut undated = attempt("e-6", EventResponseType::Fail, ChallengeName::Password);
    undated.creation_date = None;
    assert_eq!(entry("bob", &undated), None, "no time, no entry");
    let long = "x".repeat(500);
    let shown = entry(
        &long,
        &attempt("e-7", EventResponseType::Fail, ChallengeName::Password),
    )
    .unwrap();
    assert_eq!(details(&shown)["username"].as_str().unwrap().len(), 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_read_twice_is_recorded_once_and_a_failed_run_moves_nothing() {
    let url = test_peers::postgres::fresh("sign_in_failures").await;
    let log = SystemLog::open(&url).await.unwrap();
    let failed = entry(
        "bob",
        &attempt("e-1", EventResponseType::Fail, ChallengeName::Password),
    )
    .unwrap();
    log.record(failed.clone()).await.unwrap();
    log.record(failed).await.unwrap();
    let listed = log
        .list(LogFilter {
            category: Some("sign-in-failed".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .items;
    assert_eq!(listed.len(), 1, "{listed:?}");

    // The read position: none, set, moved on.
    assert_eq!(log.sign_ins_checked_through("pool-1").await.unwrap(), None);
    log.set_sign_ins_checked_through("pool-1", "2026-11-27T10:00:00.000000Z")
        .await
        .unwrap();
    log.set_sign_ins_checked_through("pool-1", "2026-11-27T10:01:00.000000Z")
        .await
        .unwrap();
    assert_eq!(
        log.sign_ins_checked_through("pool-1")
            .await
            .unwrap()
            .as_deref(),
        Some("2026-11-27T10:01:00.000000Z")
    );

    // Cognito unreachable: the run fails, and the position stays for the next run.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let unreachable = Client::new(&test_peers::aws::config(&nowhere).await);
    let error = collect(&unreachable, &log, "pool-1").await.unwrap_err();
    assert!(matches!(error, AuditError::Pool(_)), "{error}");
    assert_eq!(
        log.sign_ins_checked_through("pool-1")
            .await
            .unwrap()
            .as_deref(),
        Some("2026-11-27T10:01:00.000000Z")
    );

    // A pool with no users (on moto): the run reads nothing and moves the position on.
    let moto = test_peers::moto().await;
    let cognito = Client::new(&test_peers::aws::config(&moto.endpoint).await);
    let pool = cognito
        .create_user_pool()
        .pool_name("histories")
        .send()
        .await
        .unwrap()
        .user_pool()
        .and_then(|p| p.id())
        .unwrap()
        .to_string();
    let before = chrono::Utc::now();
    let run = collect(&cognito, &log, &pool).await.unwrap();
    assert_eq!((run.users, run.failures), (0, 0));
    let through = log.sign_ins_checked_through(&pool).await.unwrap().unwrap();
    assert!(through >= projections::timestamp(before), "{through}");

    // The system log gone mid-way (closed, as when the database refuses): the run fails
    // and the position stays where it was.
    log.close().await;
    let error = collect(&cognito, &log, &pool).await.unwrap_err();
    assert!(matches!(error, AuditError::Log(_)), "{error}");
    let reopened = SystemLog::open(&url).await.unwrap();
    assert_eq!(
        reopened.sign_ins_checked_through(&pool).await.unwrap(),
        Some(through)
    );
    reopened.close().await;
    test_peers::postgres::drop(&url).await;
}
