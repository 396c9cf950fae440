//! Running `crm serve` as a process for the tests that kill it: start it on a data
//! directory, wait until it is ready, and talk to it over HTTP.
#![allow(dead_code, unreachable_pub)]

pub mod bank;

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ROOT_PASSWORD: &str = "root-password-for-crash-tests";
pub const PASSWORD: &str = "a-long-enough-password";

pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn start(data_dir: &std::path::Path, port: u16) -> Server {
    start_with(data_dir, port, &[]).await
}

/// `start` with more arguments for `crm serve`. The server's data directory is `data`
/// in `dir`; its digest key and digest file go beside it, in `data-ledger`.
pub async fn start_with(dir: &std::path::Path, port: u16, args: &[&str]) -> Server {
    let data_dir = dir.join("data");
    let base = format!("http://127.0.0.1:{port}");
    let server = Server {
        child: Command::new(env!("CARGO_BIN_EXE_crm"))
            .args([
                "serve",
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(&data_dir)
            .args(args)
            .env("CRM_ROOT_PASSWORD", ROOT_PASSWORD)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the crm binary starts"),
        base: base.clone(),
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = client.get(format!("{base}/health/ready")).send().await {
            if response.status() == StatusCode::OK {
                return server;
            }
        }
        assert!(Instant::now() < deadline, "crm serve did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    call_with_key(http, method, url, token, body, None).await
}

/// `call` with an `Idempotency-Key`.
pub async fn call_with_key(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = http.request(method, url);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            (status, response.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Value::Null),
    }
}

pub async fn login(http: &reqwest::Client, base: &str, username: &str, password: &str) -> String {
    let (status, body) = call(
        http,
        reqwest::Method::POST,
        format!("{base}/auth/login"),
        None,
        Some(json!({"username": username, "password": password})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

pub async fn create_staff(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    username: &str,
    role: &str,
) -> String {
    let body = json!({"username": username, "email": format!("{username}@bank.example"), "full_name": "Crash Test", "role": role, "password": PASSWORD});
    let (status, reply) = call(
        http,
        reqwest::Method::POST,
        format!("{base}/v1/staff"),
        Some(token),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    login(http, base, username, PASSWORD).await
}

/// Every page of a list.
pub async fn all(http: &reqwest::Client, base: &str, token: &str, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{base}{path}{separator}limit=200");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let (status, page) = call(http, reqwest::Method::GET, url, Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return items,
        }
    }
}

/// The agent onboards Ada Lovelace; her id.
pub async fn onboard_client(http: &reqwest::Client, base: &str, agent: &str) -> String {
    let body = json!({"first_name": "Ada", "last_name": "Lovelace", "date_of_birth": "1990-12-10", "gender": "female",
        "email": "ada@example.com", "phone": "+353 1 234 5678",
        "address": {"line1": "1 Main Street", "city": "Dublin", "state": "", "country": "IE", "postal_code": "D01"}});
    let (status, client) = call(
        http,
        reqwest::Method::POST,
        format!("{base}/v1/clients"),
        Some(agent),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    client["id"].as_str().unwrap().to_string()
}

/// What the read side shows of `accounts` (views and histories) and the audit log: two
/// snapshots are equal when the read models hold the same.
pub async fn snapshot(
    http: &reqwest::Client,
    base: &str,
    auditor: &str,
    accounts: &[String],
) -> Vec<Value> {
    let mut views = vec![Value::Array(
        all(http, base, auditor, "/v1/audit/log").await,
    )];
    for account in accounts {
        views.push(
            call(
                http,
                reqwest::Method::GET,
                format!("{base}/v1/accounts/{account}"),
                Some(auditor),
                None,
            )
            .await
            .1,
        );
        views.push(Value::Array(
            all(
                http,
                base,
                auditor,
                &format!("/v1/accounts/{account}/transactions"),
            )
            .await,
        ));
    }
    views
}
