//! Clients that would hold the server or lock staff out, against `crm serve` as a
//! process: connections that never finish their headers are closed after the header
//! timeout while others are served; a password guesser from one address waits for the
//! name it guesses while the same name signs in from another, until an admin unlocks it.

mod process;

use process::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = start_with(dir.path(), port, &["--header-timeout-secs", "2"]).await;
    let host = format!("127.0.0.1:{port}");
    let opened = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
        stream
            .write_all(b"POST /v1/clients HTTP/1.1\r\nhost: x\r\nx-slow: ")
            .await
            .unwrap();
        slow.push(stream);
    }
    // Normal requests are served meanwhile.
    let http = reqwest::Client::new();
    for _ in 0..20 {
        let response = http
            .get(format!("{}/health/live", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    // Every slow connection is closed by the server soon after the timeout.
    for mut stream in slow {
        let mut buffer = [0u8; 512];
        let closed = tokio::time::timeout(Duration::from_secs(6), async {
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "a connection without headers was still open after {:?}",
            opened.elapsed()
        );
    }
    assert!(
        opened.elapsed() >= Duration::from_secs(2),
        "closed before the timeout"
    );
}

/// A client whose connections come from `source` (any 127.x address is this machine).
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn sign_in(
    http: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    http.post(format!("{base}/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guesser_cannot_lock_a_name_out_for_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = start(dir.path(), port).await;
    let base = server.base.clone();
    let desk = client_from("127.0.0.1");
    let guesser = client_from("127.0.0.2");
    let root = login(&desk, &base, "root", ROOT_PASSWORD).await;
    let admin = create_staff(&desk, &base, &root, "hostile.admin", "admin").await;
    let _ = create_staff(&desk, &base, &admin, "hostile.agent", "agent").await;

    // Tokens are never cacheable.
    let answer = sign_in(&desk, &base, "hostile.agent", PASSWORD).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["cache-control"], "no-store");

    for _ in 0..8 {
        let answer = sign_in(&guesser, &base, "hostile.agent", "not-the-password-1").await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    }
    // The guesser's address now waits, even with the right password …
    assert_eq!(
        sign_in(&guesser, &base, "hostile.agent", PASSWORD)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // … the agent at their own desk does not …
    assert_eq!(
        sign_in(&desk, &base, "hostile.agent", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    // … and an admin can lift the wait (an agent cannot).
    let (_, staff) = call(
        &desk,
        Method::GET,
        format!("{base}/v1/staff?limit=200"),
        Some(&admin),
        None,
    )
    .await;
    let agent_id = staff["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["username"] == "hostile.agent")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let agent = login(&desk, &base, "hostile.agent", PASSWORD).await;
    let unlock = format!("{base}/v1/staff/{agent_id}/unlock");
    let (status, _) = call(&desk, Method::POST, unlock.clone(), Some(&agent), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = call(&desk, Method::POST, unlock, Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        sign_in(&guesser, &base, "hostile.agent", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );

    // Guessable passwords are refused when staff are created, naming the field.
    let (status, body) = call(
        &desk,
        Method::POST,
        format!("{base}/v1/staff"),
        Some(&admin),
        Some(json!({"username": "weak.one", "email": "weak.one@bank.example", "full_name": "Weak One",
            "role": "agent", "password": "password1234"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "password", "{body}");
}
