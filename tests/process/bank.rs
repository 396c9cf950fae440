//! A small bank to throw impatient and hostile clients at: four accounts of one client,
//! commands (deposits, withdrawals, transfers, staff creation) sent with an
//! Idempotency-Key and abandoned, or sent patiently; and the checks that follow — every
//! key's retry resolves, and the money adds up to what the outcomes say.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

use super::*;

/// A small deterministic generator, so a failure can be replayed from its seed.
pub struct Dice(pub u64);

impl Dice {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[derive(Debug, Clone)]
pub enum Intent {
    Deposit { account: usize, amount: i64 },
    Withdraw { account: usize, amount: i64 },
    Transfer { from: usize, to: usize, amount: i64 },
    CreateStaff { username: String },
}

pub struct Bank {
    pub http: reqwest::Client,
    pub base: String,
    pub admin: String,
    pub agent: String,
    pub accounts: Vec<String>,
}

impl Intent {
    pub fn random(dice: &mut Dice, n: usize) -> Intent {
        let account = dice.below(4) as usize;
        let amount = 1 + dice.below(500) as i64;
        match dice.below(10) {
            0..=2 => Intent::Deposit { account, amount },
            3..=4 => Intent::Withdraw { account, amount },
            5..=8 => Intent::Transfer {
                from: account,
                to: (account + 1 + dice.below(3) as usize) % 4,
                amount,
            },
            _ => Intent::CreateStaff {
                username: format!("hangup.{n}.{}", dice.below(1_000_000)),
            },
        }
    }

    /// Path, body and whose token.
    pub fn request(&self, bank: &Bank) -> (String, Value, bool) {
        let money = |amount: i64| json!({"amount_minor": amount, "currency": "EUR"});
        match self {
            Intent::Deposit { account, amount } => (
                format!("/v1/accounts/{}/deposits", bank.accounts[*account]),
                json!({"amount": money(*amount)}),
                false,
            ),
            Intent::Withdraw { account, amount } => (
                format!("/v1/accounts/{}/withdrawals", bank.accounts[*account]),
                json!({"amount": money(*amount)}),
                false,
            ),
            Intent::Transfer { from, to, amount } => (
                "/v1/transfers".into(),
                json!({"from_account_id": bank.accounts[*from], "to_account_id": bank.accounts[*to], "amount": money(*amount)}),
                false,
            ),
            Intent::CreateStaff { username } => (
                "/v1/staff".into(),
                json!({"username": username, "email": format!("{username}@bank.example"),
                    "full_name": "Hang Up", "role": "agent", "password": PASSWORD}),
                true,
            ),
        }
    }
}

/// Sends the request on a raw connection and hangs up `after` it was written.
pub async fn hang_up(bank: &Bank, intent: &Intent, key: &str, after: Duration) {
    let (path, body, as_admin) = intent.request(bank);
    let token = if as_admin { &bank.admin } else { &bank.agent };
    hang_up_post(bank, &path, token, &body, Some(key), after).await;
}

/// POSTs `body` to `path` as `token` (with `key` as its Idempotency-Key, if any) on a
/// raw connection, and hangs up `after` it was written.
pub async fn hang_up_post(
    bank: &Bank,
    path: &str,
    token: &str,
    body: &Value,
    key: Option<&str>,
    after: Duration,
) {
    let body = body.to_string();
    let host = bank.base.trim_start_matches("http://");
    let key = key
        .map(|key| format!("idempotency-key: {key}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\n{key}content-length: {}\r\n\r\n{body}",
        body.len()
    );
    if let Ok(mut stream) = tokio::net::TcpStream::connect(host).await {
        let _ = stream.write_all(request.as_bytes()).await;
        tokio::time::sleep(after).await;
        // Dropped here: the client is gone.
    }
}

/// The retry a patient client makes: same key, same body. Returns the status, the
/// body, and whether the server replayed a stored answer.
pub async fn retry(bank: &Bank, intent: &Intent, key: &str) -> (StatusCode, Value, bool) {
    let (path, body, as_admin) = intent.request(bank);
    let token = if as_admin { &bank.admin } else { &bank.agent };
    let response = bank
        .http
        .post(format!("{}{path}", bank.base))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .expect("the retry reaches the server");
    let replayed = response.headers().contains_key("idempotent-replay");
    let status = response.status();
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        replayed,
    )
}

pub async fn open_bank(base: &str) -> Bank {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let root = login(&http, base, "root", ROOT_PASSWORD).await;
    let admin = create_staff(&http, base, &root, "hangup.admin", "admin").await;
    let agent = create_staff(&http, base, &admin, "hangup.agent", "agent").await;
    let client = onboard_client(&http, base, &agent).await;
    let mut accounts = Vec::new();
    for _ in 0..4 {
        let (status, account) = call(
            &http,
            Method::POST,
            format!("{base}/v1/clients/{client}/accounts"),
            Some(&agent),
            Some(json!({"account_type": "checking", "currency": "EUR",
                "initial_deposit": {"amount_minor": 10_000, "currency": "EUR"}})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{account}");
        accounts.push(account["id"].as_str().unwrap().to_string());
    }
    Bank {
        http,
        base: base.to_string(),
        admin,
        agent,
        accounts,
    }
}

/// What the bank's money should be, from the outcomes the retries learned.
#[derive(Default)]
pub struct Ledger {
    pub expected_total: i64,
    pub transfers: Vec<String>,
}

impl Ledger {
    /// Records the outcome of one intent; panics on an outcome no intent may have.
    pub fn settle(&mut self, intent: &Intent, status: StatusCode, body: &Value) {
        match (intent, status) {
            (Intent::Deposit { amount, .. }, StatusCode::CREATED) => self.expected_total += amount,
            (Intent::Withdraw { amount, .. }, StatusCode::CREATED) => self.expected_total -= amount,
            (Intent::Withdraw { .. }, StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY) => {
                assert_eq!(
                    body["type"]
                        .as_str()
                        .map(|t| t.ends_with("insufficient-funds")),
                    Some(true),
                    "{body}"
                )
            }
            (Intent::Transfer { .. }, StatusCode::CREATED) => {
                assert_eq!(body["status"], "completed", "{body}");
                self.transfers
                    .push(body["id"].as_str().unwrap().to_string());
            }
            (Intent::Transfer { .. }, StatusCode::CONFLICT) => {
                let detail = body["detail"].as_str().unwrap_or_default();
                assert!(detail.contains("failed"), "{body}");
                self.transfers.push(
                    detail
                        .split_whitespace()
                        .nth(1)
                        .unwrap()
                        .trim_end_matches(':')
                        .to_string(),
                );
            }
            (Intent::CreateStaff { .. }, StatusCode::CREATED) => {}
            (intent, status) => panic!("{intent:?} ended {status}: {body}"),
        }
    }
}

pub async fn total_balance(bank: &Bank) -> i64 {
    let mut total = 0;
    for account in &bank.accounts {
        let (status, view) = call(
            &bank.http,
            Method::GET,
            format!("{}/v1/accounts/{account}", bank.base),
            Some(&bank.agent),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{view}");
        total += view["balance"]["amount_minor"].as_i64().unwrap();
    }
    total
}

/// The accounts hold what the ledger expects (read models lag by milliseconds: waits up
/// to `patience` for them).
pub async fn assert_money_adds_up(bank: &Bank, ledger: &Ledger, patience: Duration) {
    let deadline = Instant::now() + patience;
    while total_balance(bank).await != ledger.expected_total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        total_balance(bank).await,
        ledger.expected_total,
        "no money created or lost"
    );
}

/// Sends `intents` with hang-ups, `concurrency` at a time; returns their keys.
pub async fn hang_up_all(
    bank: &std::sync::Arc<Bank>,
    intents: &[Intent],
    dice: &mut Dice,
    round: &str,
) -> Vec<String> {
    let keys: Vec<String> = (0..intents.len()).map(|n| format!("{round}-{n}")).collect();
    let mut tasks = Vec::new();
    for (intent, key) in intents.iter().zip(&keys) {
        let (bank, intent, key) = (bank.clone(), intent.clone(), key.clone());
        let after = Duration::from_millis(dice.below(21));
        tasks.push(tokio::spawn(async move {
            hang_up(&bank, &intent, &key, after).await
        }));
        if tasks.len() >= 16 {
            for task in tasks.drain(..) {
                task.await.unwrap();
            }
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    keys
}

/// Retries every key (twice) and records the outcomes; each first retry must be
/// answered within `patience`.
pub async fn retries_resolve(
    bank: &Bank,
    intents: &[Intent],
    keys: &[String],
    ledger: &mut Ledger,
    patience: Duration,
) -> usize {
    let mut executed = 0;
    for (intent, key) in intents.iter().zip(keys) {
        let started = Instant::now();
        let (status, body, replayed) = retry(bank, intent, key).await;
        assert!(
            started.elapsed() < patience,
            "{key}: a retry waited {:?} (allowed: {patience:?})",
            started.elapsed()
        );
        assert_ne!(
            status.as_u16(),
            202,
            "{key}: the transfer was still under way: {body}"
        );
        ledger.settle(intent, status, &body);
        executed += usize::from(!replayed);
        // A second retry replays the same answer: the effect happened once.
        let (again, body_again, replayed_again) = retry(bank, intent, key).await;
        assert_eq!(
            (again, &body_again, replayed_again),
            (status, &body, true),
            "{key}"
        );
    }
    executed
}

/// Every transfer the ledger knows is completed or failed, every stream's hash chain
/// verifies, and a digest signed now verifies with every digest before it and every
/// event in the Merkle log (checked by a new auditor named `auditor`, whose token is
/// returned).
pub async fn assert_settled_and_verified(bank: &Bank, ledger: &Ledger, auditor: &str) -> String {
    for transfer in &ledger.transfers {
        let (status, view) = call(
            &bank.http,
            Method::GET,
            format!("{}/v1/transfers/{transfer}", bank.base),
            Some(&bank.agent),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{view}");
        assert!(
            matches!(view["status"].as_str(), Some("completed" | "failed")),
            "{view}"
        );
    }
    let token = create_staff(&bank.http, &bank.base, &bank.admin, auditor, "auditor").await;
    let (_, verify) = call(
        &bank.http,
        Method::GET,
        format!("{}/v1/audit/verify", bank.base),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(verify["ok"], true, "{verify}");
    let (status, digest) = call(
        &bank.http,
        Method::POST,
        format!("{}/v1/audit/digests", bank.base),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{digest}");
    let (_, ledger) = call(
        &bank.http,
        Method::GET,
        format!("{}/v1/audit/ledger/verify", bank.base),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(ledger["ok"], true, "{ledger}");
    assert_eq!(ledger["latest_digest"][0], digest["tree_size"], "{ledger}");
    println!(
        "ledger: {} events and {} digests verified",
        ledger["events"], ledger["digests"]
    );
    token
}
