//! The sign-in trigger on real peers: a post-authentication event of the shape Cognito
//! sends (fixture) for a user of a pool on moto becomes a `sign-in` entry in the system
//! log in PostgreSQL, with the staff id and the role; the event is handed back as it
//! came. With the pool unreachable the entry is still written (without a role), and with
//! no system log the sign-in still goes through: a trigger must never refuse it.

use aws_lambda_events::event::cognito::CognitoEventUserPoolsPostAuthentication;
use aws_sdk_cognitoidentityprovider::Client;
use projections::{LogFilter, SystemLog};

fn event(pool: &str, sub: &str) -> CognitoEventUserPoolsPostAuthentication {
    let text = include_str!("fixtures/cognito-post-authentication.json")
        .replace("POOL_ID", pool)
        .replace("SUB", sub);
    serde_json::from_str(&text).unwrap()
}

async fn sign_ins(log: &SystemLog) -> Vec<projections::LogEntry> {
    log.list(LogFilter {
        category: Some("sign-in".into()),
        limit: 10,
        ..Default::default()
    })
    .await
    .unwrap()
    .items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cognito_sign_in_reaches_the_system_log() {
    let moto = test_peers::moto().await;
    let cognito = Client::new(&test_peers::aws::config(&moto.endpoint).await);
    let pool = cognito
        .create_user_pool()
        .pool_name("sign-ins")
        .send()
        .await
        .unwrap()
        .user_pool()
        .and_then(|p| p.id())
        .unwrap()
        .to_string();
    cognito
        .create_group()
        .user_pool_id(&pool)
        .group_name("agent")
        .send()
        .await
        .unwrap();
    let created = cognito
        .admin_create_user()
        .user_pool_id(&pool)
        .username("bob")
        .send()
        .await
        .unwrap();
    let sub = created
        .user()
        .unwrap()
        .attributes()
        .iter()
        .find(|a| a.name() == "sub")
        .and_then(|a| a.value())
        .unwrap()
        .to_string();
    cognito
        .admin_add_user_to_group()
        .user_pool_id(&pool)
        .username("bob")
        .group_name("agent")
        .send()
        .await
        .unwrap();
    let url = test_peers::postgres::fresh("sign_in_trigger").await;
    let log = SystemLog::open(&url).await.unwrap();

    let sent = event(&pool, &sub);
    let answered = projections::sign_in::handle(Some(&log), &cognito, sent.clone()).await;
    assert_eq!(answered, sent, "the trigger hands the event back unchanged");
    let entries = sign_ins(&log).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!(entry.message, "bob signed in");
    assert_eq!(entry.actor_id.as_deref(), Some(sub.as_str()));
    assert_eq!(entry.actor_role.as_deref(), Some("agent"));
    let details: serde_json::Value =
        serde_json::from_str(entry.details.as_deref().unwrap()).unwrap();
    assert_eq!(details["method"], "cognito");
    assert_eq!(details["client_id"], "3n4b5urk1ft4fl3mg5e62d9ado");

    // The pool unreachable (nothing listens there): recorded without a role.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let unreachable = Client::new(&test_peers::aws::config(&nowhere).await);
    projections::sign_in::handle(Some(&log), &unreachable, event(&pool, &sub)).await;
    let entries = sign_ins(&log).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0].actor_role, None);

    // No system log at all: the sign-in is handed back all the same.
    let answered = projections::sign_in::handle(None, &cognito, sent.clone()).await;
    assert_eq!(answered, sent);
    test_peers::postgres::drop(&url).await;
}
