//! The mail service in `crm serve`: drafting against a small OpenAI-compatible server
//! started here (which checks that no personal data reached it), sending through a real
//! SMTP sink (aiosmtpd), every send recorded on the client's stream; who may do what.

use axum::extract::State;
use axum::routing::post;
use axum::Json;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

use crate::support::{person, TestApp, User};

/// An OpenAI-compatible chat endpoint that keeps every request and answers with a draft
/// that uses the placeholders it was given.
#[derive(Clone, Default)]
pub(crate) struct Model {
    requests: Arc<Mutex<Vec<Value>>>,
    /// Calls to answer 503 before answering properly.
    failures: Arc<Mutex<usize>>,
}

impl Model {
    pub(crate) async fn start(&self) -> String {
        async fn complete(
            State(model): State<Model>,
            Json(body): Json<Value>,
        ) -> Result<Json<Value>, axum::http::StatusCode> {
            let prompt = body["messages"][1]["content"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            model.requests.lock().unwrap().push(body);
            {
                let mut failures = model.failures.lock().unwrap();
                if *failures > 0 {
                    *failures -= 1;
                    return Err(axum::http::StatusCode::SERVICE_UNAVAILABLE);
                }
            }
            let placeholders: Vec<&str> = prompt
                .split("[[")
                .skip(1)
                .filter_map(|rest| rest.split_once("]]").map(|(inside, _)| inside))
                .collect();
            let draft = format!(
                "Dear [[{}]],\nthank you for banking with us.\nKind regards",
                placeholders.first().copied().unwrap_or("NAME_1")
            );
            Ok(Json(
                json!({"choices": [{"message": {"role": "assistant", "content": draft}}]}),
            ))
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(complete))
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    fn seen(&self) -> String {
        serde_json::to_string(&*self.requests.lock().unwrap()).unwrap()
    }
}

pub(crate) fn settings(
    model_url: Option<&str>,
    smtp: Option<&test_peers::SmtpSink>,
) -> mail::MailSettings {
    mail::MailSettings {
        provider: model_url.map(|_| "openai".into()),
        model: model_url.map(|_| "test-model".into()),
        openai_url: model_url.map(String::from),
        smtp_url: smtp.map(|sink| sink.peer.endpoint.clone()),
        from: "Ledgerline <no-reply@bank.example>".into(),
        timeout: std::time::Duration::from_secs(5),
        ..Default::default()
    }
}

async fn client_named(app: &TestApp, agent: &User, email: &str) -> String {
    let reply = app
        .post(
            &agent.token,
            "/v1/clients",
            person("Grace", "Hopper", email),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.id()
}

fn send(recipient: &str) -> Value {
    json!({"action": "send", "recipient": recipient, "subject": "Your new account", "body": "Dear Grace,\nyour account is open."})
}

#[tokio::test]
async fn a_draft_is_made_without_personal_data_reaching_the_model() {
    let model = Model::default();
    let url = model.start().await;
    let app = TestApp::spawn_with_mail(settings(Some(&url), None)).await;
    let agent = app.agent().await;
    let client = client_named(&app, &agent, "grace@example.com").await;
    let account = app.account_of(&agent, 0).await;
    let prompt = format!(
        "Tell Grace Hopper (grace@example.com, +353 1 234 5678) that account {account} is open."
    );
    let reply = app
        .post(
            &agent.token,
            "/v1/mail",
            json!({"action": "generate", "prompt": prompt, "client_id": client}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let draft = reply.body["draft"].as_str().unwrap();
    assert!(
        draft.starts_with("Dear Grace Hopper,"),
        "placeholders restored: {draft}"
    );
    let seen = model.seen();
    for secret in [
        "Grace",
        "Hopper",
        "grace@example.com",
        "234 5678",
        account.as_str(),
    ] {
        assert!(!seen.contains(secret), "{secret} reached the model: {seen}");
    }
    assert!(seen.contains("[[NAME_1]]"), "{seen}");

    // Under an Idempotency-Key, the draft (the client's details in it) is not kept as
    // the key's answer: a retry drafts again, and the store's records hold no copy.
    let keyed = json!({"action": "generate", "prompt": "Say hello", "client_id": client});
    for _ in 0..2 {
        let reply = app
            .call(
                Method::POST,
                "/v1/mail",
                Some(&agent.token),
                Some(keyed.clone()),
                &[("idempotency-key", "draft-1")],
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        assert!(reply.headers.get("idempotent-replay").is_none());
    }
    let event_store::Backend::Sqlite(sqlite) = app.app.store.backend() else {
        unreachable!("crm serve keeps its events in SQLite")
    };
    let (kept,): (i64,) = sqlx::query_as("SELECT count(*) FROM idempotency WHERE key = 'draft-1'")
        .fetch_one(sqlite.pool())
        .await
        .unwrap();
    assert_eq!(kept, 0);

    // A model that fails twice is retried (with backoff) and the draft still comes.
    *model.failures.lock().unwrap() = 2;
    let before = model.requests.lock().unwrap().len();
    let reply = app
        .post(
            &agent.token,
            "/v1/mail",
            json!({"action": "generate", "prompt": "Say hello"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(model.requests.lock().unwrap().len(), before + 3);
    // Failing every time: a 503 after three attempts, never an invented text.
    *model.failures.lock().unwrap() = 3;
    let reply = app
        .post(
            &agent.token,
            "/v1/mail",
            json!({"action": "generate", "prompt": "Say hello"}),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        reply.body
    );
    assert!(reply.body.get("draft").is_none());

    // Without a client: the agent's own drafting, patterns still redacted.
    let reply = app
        .post(
            &agent.token,
            "/v1/mail",
            json!({"action": "generate", "prompt": "Invite ada@example.org to the branch"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert!(!model.seen().contains("ada@example.org"));

    // Another agent's client, an admin, an auditor, no token: refused, nothing drafted.
    let before = model.requests.lock().unwrap().len();
    let other = app.agent().await;
    let generate = json!({"action": "generate", "prompt": "Hello", "client_id": client});
    assert_eq!(
        app.post(&other.token, "/v1/mail", generate.clone())
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let admin = app.admin().await;
    assert_eq!(
        app.post(&admin.token, "/v1/mail", generate.clone())
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let auditor = app.staff(&admin.token, "auditor").await;
    assert_eq!(
        app.post(&auditor.token, "/v1/mail", generate.clone())
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let anonymous = app
        .call(Method::POST, "/v1/mail", None, Some(generate), &[])
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(model.requests.lock().unwrap().len(), before);
}

#[tokio::test]
async fn without_a_model_or_transport_the_answer_is_503() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let reply = app
        .post(
            &agent.token,
            "/v1/mail",
            json!({"action": "generate", "prompt": "Hello"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.is_problem());
    assert!(reply.body["detail"]
        .as_str()
        .unwrap()
        .contains("no language model is configured"));
    client_named(&app, &agent, "grace@example.com").await;
    app.settled().await;
    let reply = app
        .post(&agent.token, "/v1/mail", send("grace@example.com"))
        .await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        reply.body
    );
}

#[tokio::test]
async fn a_send_goes_out_once_and_is_recorded_on_the_clients_stream() {
    let sink = test_peers::smtp_sink().await;
    let app = TestApp::spawn_with_mail(settings(None, Some(&sink))).await;
    let agent = app.agent().await;
    let client = client_named(&app, &agent, "grace@example.com").await;
    app.settled().await;

    let key = [("idempotency-key", "mail-1")];
    let first = app
        .call(
            Method::POST,
            "/v1/mail",
            Some(&agent.token),
            Some(send("grace@example.com")),
            &key,
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(first.body["client_id"], client.as_str());
    let retry = app
        .call(
            Method::POST,
            "/v1/mail",
            Some(&agent.token),
            Some(send("grace@example.com")),
            &key,
        )
        .await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(retry.headers.get("idempotent-replay").unwrap(), "true");
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "a retried send goes out once");
    assert!(
        messages[0].contains("To: grace@example.com"),
        "{}",
        messages[0]
    );
    assert!(messages[0].contains("Subject: Your new account"));
    assert!(messages[0].contains("your account is open."));

    let stream = app.app.store.stream("client", &client).await.unwrap();
    let sent: Vec<_> = stream
        .iter()
        .filter(|e| e.event_type == "CommunicationSent")
        .collect();
    assert_eq!(sent.len(), 1);
    let payload = &sent[0].payload["CommunicationSent"];
    // The recipient is personal data: stored encrypted under the client's key, opened
    // for readers that fold events.
    assert!(payload["recipient"]["sealed_v1"].is_string(), "{payload}");
    assert!(!sent[0].payload.to_string().contains("grace@example.com"));
    let opened = app
        .app
        .store
        .stream_after("client", &client, 0)
        .await
        .unwrap();
    let opened = opened
        .iter()
        .find(|e| e.event.event_type == "CommunicationSent")
        .unwrap();
    assert_eq!(
        opened.event.payload["CommunicationSent"]["recipient"],
        "grace@example.com"
    );
    assert_eq!(payload["subject"], "Your new account");
    assert_eq!(
        payload["body_sha256"].as_str().unwrap().len(),
        64,
        "the body only as a hash"
    );
    assert!(!sent[0].payload.to_string().contains("your account is open"));
    assert_eq!(sent[0].metadata["actor_id"], agent.id.as_str());

    // The client's mail as the UI lists it: the message once, with who sent it.
    let listed = crate::support::eventually(|| async {
        let reply = app
            .get(
                &agent.token,
                &format!("/v1/clients/{client}/communications"),
            )
            .await;
        (reply.status == StatusCode::OK
            && reply.body["items"]
                .as_array()
                .is_some_and(|i| !i.is_empty()))
        .then_some(reply.body)
    })
    .await;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(items[0]["subject"], "Your new account");
    assert_eq!(items[0]["recipient"], "grace@example.com");
    assert_eq!(items[0]["body_sha256"], payload["body_sha256"]);
    assert_eq!(items[0]["sent_by"], agent.id.as_str());
    assert_eq!(items[0]["sent_by_username"], agent.username.as_str());
    let nobody = format!("/v1/clients/{}/communications", uuid::Uuid::now_v7());
    assert_eq!(
        app.get(&agent.token, &nobody).await.status,
        StatusCode::NOT_FOUND
    );

    // Someone else's client, an address that is no client, other roles: refused, and
    // nothing more is sent. The first two get the same answer: no oracle of which
    // addresses are the bank's clients.
    let other = app.agent().await;
    let someone_elses = app
        .post(&other.token, "/v1/mail", send("grace@example.com"))
        .await;
    let nobodys = app
        .post(&other.token, "/v1/mail", send("stranger@example.com"))
        .await;
    assert_eq!(someone_elses.status, StatusCode::NOT_FOUND);
    assert_eq!(
        (nobodys.status, &nobodys.body),
        (someone_elses.status, &someone_elses.body)
    );
    let admin = app.admin().await;
    assert_eq!(
        app.post(&admin.token, "/v1/mail", send("grace@example.com"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let worker = app.worker().await;
    assert_eq!(
        app.post(&worker, "/v1/mail", send("grace@example.com"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(
            Method::POST,
            "/v1/mail",
            None,
            Some(send("grace@example.com")),
            &[]
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );

    // Bad input: 400 problem+json, nothing sent or recorded.
    for body in [
        json!({"action": "shout", "prompt": "x"}),
        json!({"action": "send", "recipient": "grace@example.com", "subject": "Hi"}),
        json!({"action": "send", "recipient": "not-an-address", "subject": "Hi", "body": "x"}),
        json!({"action": "send", "recipient": "grace@example.com", "subject": "Hi", "body": "x".repeat(20_001)}),
    ] {
        let reply = app.post(&agent.token, "/v1/mail", body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
        assert!(reply.is_problem());
    }
    assert_eq!(sink.messages().len(), 1);
    assert_eq!(app.events("client", &client).await, 2);

    // A deactivated client gets no mail.
    let reply = app
        .post(
            &agent.token,
            &format!("/v1/clients/{client}/deactivate"),
            json!({}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let reply = app
        .post(&agent.token, "/v1/mail", send("grace@example.com"))
        .await;
    assert!(reply.status.is_client_error(), "{:?}", reply.body);
    assert_eq!(sink.messages().len(), 1);
}
