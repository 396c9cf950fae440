//! Kills `crm serve` with SIGKILL in the middle of a burst of commands, restarts it, and
//! checks that no accepted command was lost and that the read models equal a fresh
//! rebuild from the event store.

mod process;

use process::*;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_accepted_command() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut server = start(dir.path(), port).await;
    let base = server.base.clone();
    let root = login(&http, &base, "root", ROOT_PASSWORD).await;
    let admin = create_staff(&http, &base, &root, "crash.admin", "admin").await;
    let agent = create_staff(&http, &base, &admin, "crash.agent", "agent").await;
    let auditor = create_staff(&http, &base, &admin, "crash.auditor", "auditor").await;
    let client = onboard_client(&http, &base, &agent).await;
    let mut accounts = Vec::new();
    for _ in 0..4 {
        let (status, account) = call(
            &http,
            reqwest::Method::POST,
            format!("{base}/v1/clients/{client}/accounts"),
            Some(&agent),
            Some(json!({"account_type": "checking", "currency": "EUR"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        accounts.push(account["id"].as_str().unwrap().to_string());
    }

    // A burst of deposits from eight concurrent clients, cut short by SIGKILL.
    let burst: Vec<_> = (0..8)
        .map(|worker| {
            let (http, base, agent, account) = (
                http.clone(),
                base.clone(),
                agent.clone(),
                accounts[worker % 4].clone(),
            );
            tokio::spawn(async move {
                let mut accepted = Vec::new();
                for _ in 0..2_000 {
                    let body = json!({"amount": {"amount_minor": 1, "currency": "EUR"}});
                    let (status, reply) = call(
                        &http,
                        reqwest::Method::POST,
                        format!("{base}/v1/accounts/{account}/deposits"),
                        Some(&agent),
                        Some(body),
                    )
                    .await;
                    if status == StatusCode::CREATED {
                        accepted.push((
                            account.clone(),
                            reply["transaction_id"].as_str().unwrap().to_string(),
                        ));
                    } else if status == StatusCode::SERVICE_UNAVAILABLE {
                        break;
                    }
                }
                accepted
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let mut accepted = Vec::new();
    for task in burst {
        accepted.extend(task.await.unwrap());
    }
    assert!(
        accepted.len() > 20,
        "the burst was under way when the server died ({} accepted)",
        accepted.len()
    );

    let mut server = start(dir.path(), port).await;
    for account in &accounts {
        let history: HashSet<String> = all(
            &http,
            &base,
            &auditor,
            &format!("/v1/accounts/{account}/transactions"),
        )
        .await
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
        let (_, view) = call(
            &http,
            reqwest::Method::GET,
            format!("{base}/v1/accounts/{account}"),
            Some(&auditor),
            None,
        )
        .await;
        assert_eq!(
            view["balance"]["amount_minor"].as_u64().unwrap() as usize,
            history.len(),
            "balance = number of deposits of 1"
        );
        for (_, id) in accepted.iter().filter(|(a, _)| a == account) {
            assert!(history.contains(id), "accepted deposit {id} was lost");
        }
    }
    let before = snapshot(&http, &base, &auditor, &accounts).await;
    let (status, body) = call(
        &http,
        reqwest::Method::POST,
        format!("{base}/v1/admin/rebuild"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        snapshot(&http, &base, &auditor, &accounts).await,
        before,
        "incremental read models equal a fresh rebuild"
    );
    let (_, verify) = call(
        &http,
        reqwest::Method::GET,
        format!("{base}/v1/audit/verify"),
        Some(&auditor),
        None,
    )
    .await;
    assert_eq!(verify["ok"], true, "{verify}");

    // `crm replay` refuses to rebuild offline under a live server …
    let refused = Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(["replay", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--server"));
    // … rebuilds through it while it serves …
    let through = Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(["replay", "--server", &base, "--data-dir"])
        .arg(dir.path().join("data"))
        .env("CRM_USERNAME", "crash.admin")
        .env("CRM_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(
        through.status.success(),
        "{}",
        String::from_utf8_lossy(&through.stderr)
    );
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    // … and offline once it is gone.
    let offline = Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(["replay", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(
        offline.status.success(),
        "{}",
        String::from_utf8_lossy(&offline.stderr)
    );
    assert!(String::from_utf8_lossy(&offline.stdout).contains("events/s"));
    let server = start(dir.path(), port).await;
    assert_eq!(
        snapshot(
            &http,
            &base,
            &auditor_after_restart(&http, &base).await,
            &accounts
        )
        .await,
        before
    );
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

async fn auditor_after_restart(http: &reqwest::Client, base: &str) -> String {
    login(http, base, "crash.auditor", PASSWORD).await
}
