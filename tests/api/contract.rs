//! The API against its own OpenAPI document, by Schemathesis (PyPI): for each role, every
//! operation with generated valid and invalid input (examples, coverage and fuzzing
//! phases) and, where the document links operations, sequences of them (stateful
//! phase). Every answer must be documented — status, content type, headers and body
//! schema — and none may be a server error. The number of cases is bounded (and the
//! seed fixed) so the run is repeatable and takes seconds.

use crate::mail::{settings, Model};
use crate::support::TestApp;

/// Cases per operation and phase.
const EXAMPLES: &str = "15";
const SEED: &str = "20261127";

fn schemathesis(base: &str, token: &str, report: &std::path::Path) -> (bool, String) {
    let output = std::process::Command::new(test_peers::schemathesis())
        .args([
            "run",
            &format!("{base}/openapi.json"),
            "--header",
            &format!("Authorization: Bearer {token}"),
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            EXAMPLES,
            "--seed",
            SEED,
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,unsupported_method,missing_required_header,ignored_auth",
            "--no-color",
            "--generation-database",
            "none",
            "--report",
            "ndjson",
            "--report-ndjson-path",
        ])
        .arg(report)
        // Schemathesis keeps a cache where it runs: not in the repository.
        .current_dir(report.parent().expect("the report is in a directory"))
        .env("NO_COLOR", "1")
        .output()
        .expect("schemathesis runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_keeps_the_openapi_contract() {
    let model = Model::default();
    let model_url = model.start().await;
    let smtp = test_peers::smtp_sink().await;
    let app = TestApp::spawn_with_mail(settings(Some(&model_url), Some(&smtp))).await;
    let agent = app.agent().await;
    // Something for the agent's reads and commands to find.
    let _account = app.account_of(&agent, 100_000).await;
    let admin = app.admin().await;
    let auditor = app.staff(&admin.token, "auditor").await;
    let reports = tempfile::tempdir().unwrap();
    let mut failed = Vec::new();
    for (role, token) in [
        ("agent", &agent.token),
        ("admin", &admin.token),
        ("auditor", &auditor.token),
    ] {
        let (passed, output) = schemathesis(&app.base, token, &reports.path().join(role));
        let summary: Vec<&str> = output
            .lines()
            .skip_while(|line| !line.contains("SUMMARY"))
            .collect();
        println!("schemathesis as {role}:\n{}", summary.join("\n"));
        if !passed {
            failed.push(format!("as {role}:\n{output}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

/// One command, as a test sends it.
struct Command {
    method: reqwest::Method,
    path: String,
    token: String,
    caller: String,
    body: Option<serde_json::Value>,
}

/// The `sub` of a token (who the idempotency records belong to).
fn subject(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["sub"].as_str().unwrap().to_string()
}

/// The hash the idempotency middleware keys a request by.
fn request_hash(method: &reqwest::Method, path: &str, body: &[u8]) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update(method.as_str().as_bytes());
    hasher.update(b" ");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The shared answers of every command — 401, 400, 412, 413, 415, 422, 409 and 503 —
/// and the few refusals the other tests do not meet, each given for real.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_answer_of_the_commands_is_given() {
    use crate::support::{client_body, eur, PASSWORD};
    use reqwest::{Method, StatusCode};
    use serde_json::json;

    let app = TestApp::spawn().await;
    let document = app
        .call(Method::GET, "/openapi.json", None, None, &[])
        .await
        .body;
    let agent = app.agent().await;
    let admin = app.admin().await;
    let member = app.staff(&admin.token, "agent").await;
    let worker = app.worker().await;
    let client = app.client_of(&agent).await;
    let account = app.account_of(&agent, 1_000).await;
    let other = app.account_of(&agent, 0).await;
    let as_agent = |method: Method, path: String, body: Option<serde_json::Value>| Command {
        method,
        path,
        token: agent.token.clone(),
        caller: agent.id.clone(),
        body,
    };
    let as_admin = |method: Method, path: String, body: Option<serde_json::Value>| Command {
        method,
        path,
        token: admin.token.clone(),
        caller: admin.id.clone(),
        body,
    };
    let mut commands = vec![
        as_admin(
            Method::POST,
            "/v1/staff".into(),
            Some(
                json!({"username": app.unique("contract"), "email": "contract@bank.example",
                "full_name": "Contract Agent", "role": "agent", "password": PASSWORD}),
            ),
        ),
        as_admin(Method::DELETE, format!("/v1/staff/{}", member.id), None),
        as_admin(
            Method::POST,
            format!("/v1/staff/{}/disable", member.id),
            None,
        ),
        as_admin(
            Method::POST,
            format!("/v1/staff/{}/enable", member.id),
            None,
        ),
        as_admin(
            Method::POST,
            format!("/v1/staff/{}/unlock", member.id),
            None,
        ),
        as_admin(
            Method::PATCH,
            format!("/v1/staff/{}", member.id),
            Some(json!({"full_name": "Contract Renamed"})),
        ),
        as_admin(
            Method::POST,
            format!("/v1/staff/{}/password", member.id),
            Some(json!({"password": "violet harbour compass ninety"})),
        ),
        as_agent(Method::POST, "/v1/clients".into(), Some(client_body())),
        as_agent(
            Method::PATCH,
            format!("/v1/clients/{client}"),
            Some(json!({"phone": "+353 1 555 0100"})),
        ),
        as_agent(
            Method::POST,
            format!("/v1/clients/{client}/deactivate"),
            Some(json!({"reason": "contract"})),
        ),
        as_admin(
            Method::POST,
            format!("/v1/clients/{client}/erase"),
            Some(json!({"reason": "contract"})),
        ),
        as_agent(
            Method::POST,
            format!("/v1/clients/{client}/accounts"),
            Some(json!({"account_type": "checking", "currency": "EUR"})),
        ),
        as_agent(
            Method::POST,
            format!("/v1/accounts/{account}/deposits"),
            Some(eur(1)),
        ),
        as_agent(
            Method::POST,
            format!("/v1/accounts/{account}/withdrawals"),
            Some(eur(1)),
        ),
        as_agent(
            Method::POST,
            format!("/v1/accounts/{account}/freeze"),
            Some(json!({"reason": "contract"})),
        ),
        as_agent(
            Method::POST,
            format!("/v1/accounts/{account}/unfreeze"),
            None,
        ),
        as_agent(Method::POST, format!("/v1/accounts/{account}/close"), None),
        as_agent(
            Method::POST,
            "/v1/transfers".into(),
            Some(json!({"from_account_id": account, "to_account_id": other,
                "amount": {"amount_minor": 1, "currency": "EUR"}})),
        ),
        as_agent(
            Method::POST,
            "/v1/mail".into(),
            Some(
                json!({"action": "send", "recipient": "ada@example.com", "subject": "Hi", "body": "Hello"}),
            ),
        ),
    ];
    commands.push(Command {
        method: Method::POST,
        path: format!("/v1/accounts/{account}/external-transactions"),
        caller: subject(&worker),
        token: worker,
        body: Some(json!({"external_id": "contract-1", "direction": "credit",
            "amount": {"amount_minor": 1, "currency": "EUR"}, "booked_at": "2026-11-01T10:00:00Z"})),
    });
    // What the document says of each: its template, If-Match, a JSON body.
    let operation = |command: &Command| {
        let template = document["paths"]
            .as_object()
            .unwrap()
            .keys()
            .find(|template| {
                let (a, b): (Vec<&str>, Vec<&str>) = (
                    template.split('/').collect(),
                    command.path.split('/').collect(),
                );
                a.len() == b.len() && a.iter().zip(&b).all(|(t, p)| t.starts_with('{') || t == p)
            })
            .unwrap()
            .clone();
        let operation =
            document["paths"][&template][command.method.as_str().to_lowercase()].clone();
        assert!(
            operation.is_object(),
            "{} {template} is documented",
            command.method
        );
        operation
    };
    let send = |command: &Command,
                token: Option<&str>,
                body: Vec<u8>,
                headers: Vec<(&'static str, String)>| {
        let mut request = app
            .http
            .request(command.method.clone(), app.url(&command.path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move { request.body(body).send().await.unwrap().status() }
    };
    let json = |command: &Command| {
        command
            .body
            .as_ref()
            .map(|body| serde_json::to_vec(body).unwrap())
            .unwrap_or_default()
    };
    let content_json = || ("content-type", "application/json".to_string());

    for (n, command) in commands.iter().enumerate() {
        let operation = operation(command);
        let label = format!("{} {}", command.method, command.path);
        let documented = |status: &str| operation["responses"].get(status).is_some();
        // No token.
        assert_eq!(
            send(command, None, json(command), vec![content_json()]).await,
            StatusCode::UNAUTHORIZED,
            "{label}"
        );
        // A malformed Idempotency-Key.
        assert_eq!(
            send(
                command,
                Some(&command.token),
                json(command),
                vec![content_json(), ("idempotency-key", "two words".into())]
            )
            .await,
            StatusCode::BAD_REQUEST,
            "{label}"
        );
        // A stale version, then the same key with another body.
        let key = format!("contract-stale-{n}");
        let takes_if_match = operation["parameters"]
            .as_array()
            .is_some_and(|parameters| parameters.iter().any(|p| p["name"] == "If-Match"));
        if takes_if_match {
            assert_eq!(
                send(
                    command,
                    Some(&command.token),
                    json(command),
                    vec![
                        content_json(),
                        ("if-match", "\"999\"".into()),
                        ("idempotency-key", key.clone())
                    ]
                )
                .await,
                StatusCode::PRECONDITION_FAILED,
                "{label}"
            );
        } else {
            // An invalid body, refused and stored as the key's answer.
            send(
                command,
                Some(&command.token),
                b"{\"nonsense\": true}".to_vec(),
                vec![content_json(), ("idempotency-key", key.clone())],
            )
            .await;
        }
        assert_eq!(
            send(
                command,
                Some(&command.token),
                b"{\"other\": 1}".to_vec(),
                vec![content_json(), ("idempotency-key", key)]
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{label}"
        );
        if documented("415") {
            assert_eq!(
                send(
                    command,
                    Some(&command.token),
                    b"hello".to_vec(),
                    vec![("content-type", "text/plain".into())]
                )
                .await,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{label}"
            );
        }
        if documented("413") {
            let huge = serde_json::to_vec(&json!({"padding": "x".repeat(70_000)})).unwrap();
            assert_eq!(
                send(command, Some(&command.token), huge, vec![content_json()]).await,
                StatusCode::PAYLOAD_TOO_LARGE,
                "{label}"
            );
        }
    }

    // A key whose first request is still running: the duplicate waits for it, then 409.
    let store = app.app.store.clone();
    let mut waiting = Vec::new();
    for (n, command) in commands.iter().enumerate() {
        let key = format!("contract-running-{n}");
        let body = json(command);
        let hash = request_hash(&command.method, &command.path, &body);
        let claim = store
            .claim_idempotency(
                &command.caller,
                &key,
                &hash,
                event_store::idempotency::LEASE,
            )
            .await
            .unwrap();
        assert!(matches!(claim, event_store::idempotency::Claim::New { .. }));
        let holder = {
            let (store, caller, key) = (store.clone(), command.caller.clone(), key.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                    store
                        .renew_idempotency(&caller, &key, event_store::idempotency::LEASE)
                        .await
                        .unwrap();
                }
            })
        };
        waiting.push((
            holder,
            send(
                command,
                Some(&command.token),
                body,
                vec![content_json(), ("idempotency-key", key)],
            ),
        ));
    }
    let (holders, requests): (Vec<_>, Vec<_>) = waiting.into_iter().unzip();
    for (status, command) in futures::future::join_all(requests)
        .await
        .into_iter()
        .zip(&commands)
    {
        assert_eq!(
            status,
            StatusCode::CONFLICT,
            "{} {}",
            command.method,
            command.path
        );
    }
    for holder in holders {
        holder.abort();
    }

    // Refusals no other test meets.
    let refused = |method: Method, path: String, token: &str, body: serde_json::Value| {
        let request = app
            .http
            .request(method, app.url(&path))
            .bearer_auth(token)
            .json(&body);
        async move { request.send().await.unwrap().status() }
    };
    let nowhere = "0192f000-0000-7000-8000-00000000dead";
    let worker = app.worker().await;
    assert_eq!(
        refused(Method::POST, format!("/v1/accounts/{nowhere}/external-transactions"), &worker,
            json!({"external_id": "contract-2", "direction": "credit",
                "amount": {"amount_minor": 1, "currency": "EUR"}, "booked_at": "2026-11-01T10:00:00Z"})).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        refused(Method::POST, "/v1/transfers".into(), &agent.token,
            json!({"from_account_id": nowhere, "to_account_id": other, "amount": {"amount_minor": 1, "currency": "EUR"}})).await,
        StatusCode::NOT_FOUND
    );
    let unfreeze = format!("/v1/accounts/{account}/unfreeze");
    assert_eq!(
        refused(Method::POST, unfreeze.clone(), &agent.token, json!({})).await,
        StatusCode::CONFLICT,
        "not frozen"
    );
    let freeze = format!("/v1/accounts/{account}/freeze");
    assert_eq!(
        refused(Method::POST, freeze.clone(), &agent.token, json!({})).await,
        StatusCode::OK
    );
    assert_eq!(
        refused(Method::POST, freeze, &agent.token, json!({})).await,
        StatusCode::CONFLICT,
        "already frozen"
    );
    assert_eq!(
        refused(Method::POST, unfreeze, &agent.token, json!({})).await,
        StatusCode::OK
    );

    // Bodies past what the identity provider reads (axum's 2 MB default there). Announced
    // by Content-Length and refused before any of it is read; sent raw, since a client
    // still writing 3 MB when the server answers and closes gets a broken pipe instead
    // of the answer.
    for (path, content_type) in [
        ("/auth/login", "application/json"),
        ("/oauth2/authorize", "application/x-www-form-urlencoded"),
    ] {
        assert_eq!(
            oversized(&app.base, path, content_type).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{path}"
        );
    }

    // The stores gone: every command answers 503, and so does every read of them.
    let auditor = app.staff(&admin.token, "auditor").await;
    app.app.store.close().await;
    app.app.read.close().await;
    app.app.log.close().await;
    let reads = [
        (&agent.token, format!("/v1/accounts/{account}")),
        (&agent.token, format!("/v1/accounts/{account}/transactions")),
        (&agent.token, "/v1/clients".to_string()),
        (&agent.token, format!("/v1/clients/{client}")),
        (&agent.token, format!("/v1/clients/{client}/accounts")),
        (&agent.token, format!("/v1/clients/{client}/communications")),
        (&agent.token, format!("/v1/transfers/{nowhere}")),
        (
            &agent.token,
            format!(
                "/v1/payees/{}",
                domain::AccountNumber::allocated(1).unwrap().compact()
            ),
        ),
        (&admin.token, "/v1/staff".to_string()),
        (&admin.token, format!("/v1/staff/{}", member.id)),
        (&admin.token, "/v1/system-log".to_string()),
        (&auditor.token, "/v1/audit/log".to_string()),
        (&auditor.token, "/v1/audit/verify".to_string()),
        (&auditor.token, "/v1/audit/verifications".to_string()),
        (&auditor.token, format!("/v1/audit/verifications/{nowhere}")),
        (
            &auditor.token,
            format!("/v1/audit/streams/account/{account}/events"),
        ),
        (
            &auditor.token,
            format!("/v1/audit/streams/account/{account}/state"),
        ),
        (
            &auditor.token,
            format!("/v1/audit/proofs/inclusion?aggregate_type=account&id={account}&sequence=1&tree_size=1"),
        ),
        (
            &auditor.token,
            "/v1/audit/proofs/consistency?from=1&to=1".to_string(),
        ),
        (&auditor.token, "/v1/audit/ledger/verify".to_string()),
    ];
    for (token, path) in reads {
        let status = app
            .http
            .get(app.url(&path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "GET {path}");
    }
    let rebuild = app
        .http
        .post(app.url("/v1/admin/rebuild"))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(rebuild.status(), StatusCode::SERVICE_UNAVAILABLE);
    let verification = app
        .http
        .post(app.url("/v1/audit/verifications"))
        .bearer_auth(&auditor.token)
        .send()
        .await
        .unwrap();
    assert_eq!(verification.status(), StatusCode::SERVICE_UNAVAILABLE);
    let digest = app
        .http
        .post(app.url("/v1/audit/digests"))
        .bearer_auth(&auditor.token)
        .send()
        .await
        .unwrap();
    assert_eq!(digest.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready = app.http.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    for command in &commands {
        assert_eq!(
            send(
                command,
                Some(&command.token),
                json(command),
                vec![content_json()]
            )
            .await,
            StatusCode::SERVICE_UNAVAILABLE,
            "{} {}",
            command.method,
            command.path
        );
    }
}

/// A transfer the manager cannot settle while the request waits is answered 202 with
/// where to follow it; it settles all the same.
#[tokio::test]
async fn a_transfer_still_under_way_is_accepted() {
    use reqwest::{Method, StatusCode};
    let app = TestApp::spawn_configured(tempfile::tempdir().unwrap(), |config| {
        config.transfer_patience = std::time::Duration::ZERO;
    })
    .await;
    let agent = app.agent().await;
    let from = app.account_of(&agent, 100).await;
    let to = app.account_of(&agent, 0).await;
    let accepted = app
        .post(
            &agent.token,
            "/v1/transfers",
            serde_json::json!({"from_account_id": from, "to_account_id": to,
                "amount": {"amount_minor": 40, "currency": "EUR"}}),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{:?}", accepted.body);
    let location = accepted.headers["location"].to_str().unwrap().to_string();
    assert_eq!(location, format!("/v1/transfers/{}", accepted.id()));
    let settled = crate::support::eventually(|| async {
        let view = app
            .call(Method::GET, &location, Some(&agent.token), None, &[])
            .await;
        (view.body["status"] == "completed").then_some(view)
    })
    .await;
    assert_eq!(settled.body["amount"]["amount_minor"], 40);
    assert_eq!((app.balance(&from).await, app.balance(&to).await), (60, 40));
}

/// docs/api.md, the API's reference, names every operation the document serves.
#[tokio::test]
async fn the_api_reference_names_every_operation() {
    let app = TestApp::spawn().await;
    let document = app
        .call(reqwest::Method::GET, "/openapi.json", None, None, &[])
        .await
        .body;
    let reference =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md")).unwrap();
    let mut missing = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let named = format!("`{} {path}", method.to_uppercase());
            if !reference.contains(&named) {
                missing.push(named);
            }
        }
    }
    assert!(missing.is_empty(), "docs/api.md does not name {missing:?}");
}

/// The status a server answers to a POST of a 3 MB body. The body is written by a task
/// of its own that gives up when the server stops reading, while the answer is read
/// here: a client that must finish writing first (reqwest) gets a broken pipe instead.
async fn oversized(base: &str, path: &str, content_type: &str) -> reqwest::StatusCode {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const SIZE: usize = 3 * 1024 * 1024;
    let address = base.trim_start_matches("http://").to_string();
    let socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (mut reader, mut writer) = socket.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: {content_type}\r\nContent-Length: {SIZE}\r\n\r\n"
    );
    let sending = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..SIZE / chunk.len() {
            writer.write_all(&chunk).await?;
        }
        Ok::<_, std::io::Error>(writer)
    });
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(10), reader.read(&mut chunk))
                .await
                .expect("an answer within 10 s")
                .unwrap();
        assert!(read > 0, "closed without an answer");
        answer.extend_from_slice(&chunk[..read]);
    }
    sending.abort();
    let line = String::from_utf8_lossy(&answer);
    let code: u16 = line.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap();
    reqwest::StatusCode::from_u16(code).unwrap()
}
