//! The AWS services on a par with `crm serve`, over HTTP in the local AWS mode: the
//! README's walkthrough passwords are accepted by the user pool (one password policy),
//! every service answers readiness and metrics, and refusals — by the command service,
//! the query service and the mail Lambda — reach the system log.

mod support;

use aws_stack::{LocalOptions, LocalStack, Topology};
use serde_json::{json, Value};
use support::{sign_in, Peers};

/// The passwords of the README's walkthrough.
const ROOT: (&str, &str) = ("root", "change-me-now-please");
const ADMIN: (&str, &str) = ("alice", "alice-password-1");
const AGENT: (&str, &str) = ("bob", "bob-password-12");
const AUDITOR: (&str, &str) = ("carol", "carol-password-1");

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_match_crm_serve() {
    let peers = Peers::start().await;
    let clients = peers.clients(None).await;
    let database = test_peers::postgres::fresh("crm_aws_parity").await;
    let any = "127.0.0.1:0".parse().unwrap();
    let stack = LocalStack::start(
        clients.clone(),
        LocalOptions {
            topology: Topology::new("par-"),
            read_database_url: database.clone(),
            command_addr: any,
            query_addr: any,
            mail_addr: any,
            mail_from: "no-reply@bank.example".into(),
            root_username: ROOT.0.into(),
            root_password: ROOT.1.into(),
            region: "us-east-1".into(),
            jwks_base: Some(peers.moto.endpoint.clone()),
        },
    )
    .await
    .unwrap();
    let app = stack.stack.app_client_id.clone();
    let http = reqwest::Client::new();
    let commands = stack.command_url.clone();

    // The walkthrough's staff, with its passwords; each signs in through the pool.
    let root = sign_in(&clients, &app, ROOT.0, ROOT.1).await;
    let person = |(username, password): (&str, &str), role: &str| {
        json!({"username": username, "email": format!("{username}@bank.example"),
               "full_name": "Walk Through", "role": role, "password": password})
    };
    let (status, body) = send(
        http.post(format!("{commands}/v1/staff"))
            .bearer_auth(&root)
            .json(&person(ADMIN, "admin")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let admin = sign_in(&clients, &app, ADMIN.0, ADMIN.1).await;
    for (who, role) in [(AGENT, "agent"), (AUDITOR, "auditor")] {
        let (status, body) = send(
            http.post(format!("{commands}/v1/staff"))
                .bearer_auth(&admin)
                .json(&person(who, role)),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    // A guessable password is refused by the product, before the pool is asked.
    let (status, body) = send(
        http.post(format!("{commands}/v1/staff"))
            .bearer_auth(&admin)
            .json(&person(("dave", "password1234"), "agent")),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let agent = sign_in(&clients, &app, AGENT.0, AGENT.1).await;
    // `crm aws sign-in`: anyone, by the topology's names; a wrong password is refused.
    let topology = Topology::new("par-");
    let (pool, ui) = (topology.user_pool(), topology.app_client());
    let auditor =
        identity::sign_in_with_password(&clients.cognito, &pool, &ui, AUDITOR.0, AUDITOR.1)
            .await
            .unwrap();
    // `crm aws root-admin` on a deployed stack finds what is there and changes nothing;
    // a wrong prefix is named.
    let root_again = aws_stack::ensure_root_deployed(&clients, &topology, ROOT.0, ROOT.1)
        .await
        .unwrap();
    assert_eq!(root_again, stack.root_id);
    let elsewhere =
        aws_stack::ensure_root_deployed(&clients, &Topology::new("nowhere-"), ROOT.0, ROOT.1)
            .await
            .unwrap_err();
    assert!(
        elsewhere
            .to_string()
            .contains("no user pool named nowhere-staff"),
        "{elsewhere}"
    );
    let wrong =
        identity::sign_in_with_password(&clients.cognito, &pool, &ui, AUDITOR.0, "not-the-one-1")
            .await;
    assert!(
        matches!(wrong, Err(identity::DirectoryError::InvalidCredentials)),
        "{wrong:?}"
    );

    // One refusal per service.
    let (status, _) = send(
        http.post(format!("{commands}/v1/clients"))
            .bearer_auth(&auditor)
            .json(&json!({
                "first_name": "Ada", "last_name": "Lovelace", "date_of_birth": "1990-12-10",
                "gender": "female", "email": "ada@example.com", "phone": "+353 1 234 5678",
                "address": {"line1": "1 Main Street", "city": "Dublin", "state": "",
                            "country": "IE", "postal_code": "D01 F5P2"}
            })),
    )
    .await;
    assert_eq!(status, 403, "an auditor onboards no client");
    let (status, _) = send(
        http.get(format!("{}/v1/staff", stack.query_url))
            .bearer_auth(&agent),
    )
    .await;
    assert_eq!(status, 403, "an agent lists no staff");
    let (status, _) = send(
        http.post(format!("{}/v1/mail", stack.mail_url))
            .bearer_auth(&auditor)
            .json(&json!({"action": "generate", "prompt": "Thank them for their visit"})),
    )
    .await;
    assert_eq!(status, 403, "an auditor writes no mail");

    let (status, log) = send(
        http.get(format!(
            "{}/v1/system-log?category=denied&limit=50",
            stack.query_url
        ))
        .bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, 200, "{log}");
    let mut refused: Vec<String> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            format!(
                "{} by {}",
                entry["message"].as_str().unwrap(),
                entry["actor_role"].as_str().unwrap_or("?")
            )
        })
        .collect();
    refused.sort();
    assert_eq!(
        refused,
        [
            "GET /v1/staff refused by agent",
            "POST /v1/clients refused by auditor",
            "POST /v1/mail refused by auditor",
        ]
    );

    // Every service: ready, and metrics by route.
    for (service, url, route) in [
        ("commands", &stack.command_url, "/v1/clients"),
        ("queries", &stack.query_url, "/v1/staff"),
        ("mail", &stack.mail_url, "/v1/mail"),
    ] {
        let (status, body) = send(http.get(format!("{url}/health/ready"))).await;
        assert_eq!(
            (status, &body["status"]),
            (200, &json!("ready")),
            "{service}"
        );
        let metrics = http
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains(&format!("route=\"{route}\",status=\"403\"}} 1")),
            "{service}: {metrics}"
        );
    }
    stack.stop().await;
    test_peers::postgres::drop(&database).await;
}
