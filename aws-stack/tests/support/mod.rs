//! What the topology tests share: peers, clients, sign-in, and a comparable dump of a
//! read-model database.

#![allow(dead_code, unreachable_pub)]

use aws_sdk_cognitoidentityprovider::types::AuthFlowType;
use aws_stack::AwsClients;
use chrono::Utc;
use domain::account::{Account, AccountCommand, AccountType};
use domain::metadata::CommandMetadata;
use domain::policy::Role;
use domain::{AccountId, ClientId, Currency, TransactionId};
use event_store::{EventStore, Expected};
use sqlx::Row;
use std::time::Duration;

pub const PASSWORD: &str = "A-long-enough-passw0rd";

pub struct Peers {
    pub dynamodb: test_peers::Peer,
    pub moto: test_peers::Peer,
}

impl Peers {
    pub async fn start() -> Self {
        Peers {
            dynamodb: test_peers::dynamodb_local().await,
            moto: test_peers::moto().await,
        }
    }

    /// Clients for the peers; EventBridge through `events_endpoint` when given.
    pub async fn clients(&self, events_endpoint: Option<&str>) -> AwsClients {
        let services = test_peers::aws::config(&self.moto.endpoint).await;
        let mut clients = AwsClients::split(
            &test_peers::aws::config(&self.dynamodb.endpoint).await,
            &services,
        );
        if let Some(endpoint) = events_endpoint {
            clients.events =
                aws_sdk_eventbridge::Client::new(&test_peers::aws::config(endpoint).await);
        }
        clients
    }
}

/// An access token from the pool (USER_PASSWORD_AUTH).
pub async fn sign_in(clients: &AwsClients, app: &str, username: &str, password: &str) -> String {
    clients
        .cognito
        .initiate_auth()
        .auth_flow(AuthFlowType::UserPasswordAuth)
        .client_id(app)
        .auth_parameters("USERNAME", username)
        .auth_parameters("PASSWORD", password)
        .send()
        .await
        .unwrap()
        .authentication_result()
        .and_then(|r| r.access_token())
        .unwrap()
        .to_string()
}

/// Every row of every read model, the projection bookkeeping and the system log's
/// event-derived entries, as text, in a fixed order: two databases built from the same
/// events must dump the same.
pub async fn dump(url: &str) -> Vec<String> {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let mut rows = Vec::new();
    for (table, filter) in [
        ("clients", ""),
        ("client_communications", ""),
        ("accounts", ""),
        ("transactions", ""),
        ("staff", ""),
        ("audit_log", ""),
        ("stream_positions", ""),
        ("dead_letters", ""),
        ("system_log", "WHERE category = 'staff'"),
    ] {
        let sql = format!(
            "SELECT '{table}: ' || t::text AS row FROM {table} t {filter} ORDER BY t::text"
        );
        for row in sqlx::query(&sql).fetch_all(&pool).await.unwrap() {
            rows.push(row.get::<String, _>("row"));
        }
    }
    pool.close().await;
    rows
}

/// Waits (up to a minute) until the live read models dump like `expected`; returns the
/// last dump either way.
pub async fn settle(live: &str, expected: &[String]) -> Vec<String> {
    let mut last = Vec::new();
    for _ in 0..120 {
        last = dump(live).await;
        if last == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    last
}

/// The rows that differ, for a readable failure.
pub fn difference(left: &[String], right: &[String]) -> String {
    let only = |a: &[String], b: &[String]| {
        a.iter()
            .filter(|row| !b.contains(row))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  ")
    };
    format!(
        "only live:\n  {}\nonly rebuilt:\n  {}",
        only(left, right),
        only(right, left)
    )
}

pub fn metadata() -> CommandMetadata {
    CommandMetadata {
        actor_id: "agent-1".into(),
        actor_role: Role::Agent,
        correlation_id: "corr".into(),
        causation_id: "req".into(),
        idempotency_key: None,
        occurred_at: Utc::now(),
    }
}

pub fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}

pub async fn open(store: &EventStore) -> AccountId {
    let id = AccountId::new();
    let command = AccountCommand::Open {
        account_id: id,
        client_id: ClientId::new(),
        client: domain::client::ClientStanding::Active,
        account_type: AccountType::Checking,
        currency: eur(),
        initial_deposit: None,
        opening_transaction_id: TransactionId::new(),
        account_number: domain::AccountNumber::derived(id),
    };
    store
        .execute::<Account>(&id.to_string(), Expected::Any, &metadata(), command)
        .await
        .unwrap();
    id
}

pub async fn deposit(store: &EventStore, id: AccountId, amount: i64) {
    let command = AccountCommand::Deposit {
        transaction_id: TransactionId::new(),
        amount: domain::Amount::new(amount, eur()).unwrap(),
        description: None,
    };
    store
        .execute::<Account>(&id.to_string(), Expected::Any, &metadata(), command)
        .await
        .unwrap();
}

pub async fn balance(url: &str, id: AccountId) -> i64 {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let (balance,): (i64,) = sqlx::query_as("SELECT balance_minor FROM accounts WHERE id = $1")
        .bind(id.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    balance
}
