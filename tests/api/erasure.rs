//! Erasure by crypto-shredding, through the API: who may erase, what every reader shows
//! afterwards, that verification and a rebuild still work, and that no file of the data
//! directory holds the client's personal data in its raw bytes.

use reqwest::{Method, StatusCode};
use serde_json::json;
use std::path::{Path, PathBuf};

use crate::support::{person, TestApp, User, PASSWORD};

/// Letters no other client has, so finding them in a file can only mean this client.
fn marker() -> String {
    uuid::Uuid::now_v7().simple().to_string()[20..]
        .bytes()
        .map(|b| (b'a' + b % 26) as char)
        .collect()
}

struct Person {
    first: String,
    last: String,
    email: String,
    street: String,
    new_email: String,
}

impl Person {
    fn new() -> Self {
        let mut made = (0..5).map(|_| marker());
        let mut next = || made.next().unwrap();
        Person {
            first: next(),
            last: next(),
            email: format!("{}@example.com", next()),
            street: format!("{} Road", next()),
            new_email: format!("{}@example.org", next()),
        }
    }

    fn secrets(&self) -> [&str; 5] {
        [
            &self.first,
            &self.last,
            &self.email,
            &self.street,
            &self.new_email,
        ]
    }

    /// Onboarded by `agent`, their email changed, an account opened: the client's id
    /// and the account's number.
    async fn onboarded(&self, app: &TestApp, agent: &User) -> (String, String) {
        let mut body = person(&self.first, &self.last, &self.email);
        body["address"]["line1"] = json!(self.street);
        let created = app.post(&agent.token, "/v1/clients", body).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        let id = created.id();
        let changed = app
            .call(
                Method::PATCH,
                &format!("/v1/clients/{id}"),
                Some(&agent.token),
                Some(json!({"email": self.new_email})),
                &[],
            )
            .await;
        assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.body);
        let opened = app
            .post(
                &agent.token,
                &format!("/v1/clients/{id}/accounts"),
                json!({"account_type": "savings", "currency": "EUR"}),
            )
            .await;
        assert_eq!(opened.status, StatusCode::CREATED, "{:?}", opened.body);
        app.settled().await;
        let account = app
            .get(&agent.token, &format!("/v1/accounts/{}", opened.id()))
            .await;
        let number = account.body["account_number"].as_str().unwrap().to_string();
        (id, number)
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Each of `secrets` found in the raw bytes of a file under `dir`, as "<secret> in <file>".
fn found_in(dir: &Path, secrets: &[&str]) -> Vec<String> {
    let mut all = Vec::new();
    files(dir, &mut all);
    let mut found = Vec::new();
    for file in all {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        for secret in secrets {
            if memchr::memmem::find(&bytes, secret.as_bytes()).is_some() {
                found.push(format!("{secret} in {}", file.display()));
            }
        }
    }
    found
}

#[tokio::test]
async fn an_admin_erases_a_deactivated_client_and_no_file_keeps_their_personal_data() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let agent = app.staff(&admin.token, "agent").await;
    let auditor = app.staff(&admin.token, "auditor").await;
    let worker = app.worker().await;
    let erased = Person::new();
    let kept = Person::new();
    let (id, number) = erased.onboarded(&app, &agent).await;
    let (other, _) = kept.onboarded(&app, &agent).await;
    app.settled().await;
    // The read models hold it, as they must to serve it; the event store does not.
    let before = found_in(app.dir.path(), &erased.secrets());
    assert!(
        before.iter().any(|f| f.contains("read-models")),
        "{before:?}"
    );
    assert!(
        !before.iter().any(|f| f.contains("ledger.db")),
        "{before:?}"
    );
    let search = format!("/v1/clients?q={}", erased.last);
    assert_eq!(app.get(&agent.token, &search).await.body["total"], 1);

    let erase = format!("/v1/clients/{id}/erase");
    let reason = json!({"reason": "asked to be forgotten, ticket DPO-1234"});
    // Only once deactivated.
    let active = app.post(&admin.token, &erase, reason.clone()).await;
    assert_eq!(active.status, StatusCode::CONFLICT, "{:?}", active.body);
    assert_eq!(active.problem_type(), "/problems/client-still-active");
    let deactivated = app
        .post(
            &agent.token,
            &format!("/v1/clients/{id}/deactivate"),
            json!({}),
        )
        .await;
    assert_eq!(deactivated.status, StatusCode::OK);
    let events = app.events("client", &id).await;
    // Never by an agent (not even the client's own), an auditor or a worker.
    for token in [&agent.token, &auditor.token, &worker] {
        let denied = app.post(token, &erase, reason.clone()).await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN, "{:?}", denied.body);
    }
    // Never without a reason.
    for body in [
        json!({}),
        json!({"reason": "  "}),
        json!({"reason": "x".repeat(501)}),
    ] {
        let refused = app.post(&admin.token, &erase, body).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{:?}",
            refused.body
        );
    }
    assert_eq!(app.events("client", &id).await, events, "nothing written");

    let done = app.post(&admin.token, &erase, reason.clone()).await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    let again = app.post(&admin.token, &erase, reason.clone()).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.problem_type(), "/problems/client-erased");
    app.settled().await;

    // Every reader shows the client erased; the other client is untouched.
    let shown = app
        .get(&agent.token, &format!("/v1/clients/{id}"))
        .await
        .body;
    assert_eq!(shown["erased"], true, "{shown:?}");
    for field in ["first_name", "last_name", "email", "phone", "date_of_birth"] {
        assert_eq!(shown[field], serde_json::Value::Null, "{field}: {shown:?}");
    }
    assert_eq!(app.get(&agent.token, &search).await.body["total"], 0);
    let payee = app
        .get(&agent.token, &format!("/v1/payees/{number}"))
        .await
        .body;
    assert_eq!(payee["name"], serde_json::Value::Null, "{payee:?}");
    let state = app
        .get(
            &auditor.token,
            &format!("/v1/audit/streams/client/{id}/state?version=2"),
        )
        .await
        .body;
    assert_eq!(
        state["state"]["details"],
        serde_json::Value::Null,
        "{state:?}"
    );
    let trail = app
        .get(
            &auditor.token,
            &format!("/v1/audit/streams/client/{id}/events"),
        )
        .await
        .body;
    let last = trail["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event_type"], "ClientErased", "{trail:?}");
    assert_eq!(
        last["payload"]["ClientErased"]["reason"],
        "asked to be forgotten, ticket DPO-1234"
    );
    assert_eq!(
        app.get(&agent.token, &format!("/v1/clients/{other}"))
            .await
            .body["last_name"],
        kept.last
    );

    // Refused any new command.
    let update = app
        .call(
            Method::PATCH,
            &format!("/v1/clients/{id}"),
            Some(&agent.token),
            Some(json!({"phone": "+15550199"})),
            &[],
        )
        .await;
    assert_eq!(update.status, StatusCode::CONFLICT);
    assert_eq!(update.problem_type(), "/problems/client-erased");
    let account = app
        .post(
            &agent.token,
            &format!("/v1/clients/{id}/accounts"),
            json!({"account_type": "checking", "currency": "EUR"}),
        )
        .await;
    assert_eq!(account.status, StatusCode::CONFLICT, "{:?}", account.body);

    // Verification passes: every chain, and the Merkle log against a signed digest.
    let chains = app.get(&auditor.token, "/v1/audit/verify").await.body;
    assert_eq!(chains["ok"], true, "{chains:?}");
    let signed = app
        .post(&auditor.token, "/v1/audit/digests", json!({}))
        .await;
    assert!(signed.status.is_success(), "{:?}", signed.body);
    let ledger = app
        .get(&auditor.token, "/v1/audit/ledger/verify")
        .await
        .body;
    assert_eq!(ledger["ok"], true, "{ledger:?}");

    // No file of the data directory holds any of it: the store has only ciphertext,
    // and the read models zeroed what they replaced.
    // (The read models' log is emptied right after the erasure is applied.)
    let mut left = found_in(app.dir.path(), &erased.secrets());
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        left = found_in(app.dir.path(), &erased.secrets());
    }
    assert_eq!(left, Vec::<String>::new());
    assert!(!found_in(app.dir.path(), &kept.secrets()).is_empty());

    // A rebuild from the events shows the same.
    let rebuilt = app.post(&admin.token, "/v1/admin/rebuild", json!({})).await;
    assert!(rebuilt.status.is_success(), "{:?}", rebuilt.body);
    app.settled().await;
    let shown = app
        .get(&agent.token, &format!("/v1/clients/{id}"))
        .await
        .body;
    assert_eq!(
        (shown["erased"].clone(), shown["last_name"].clone()),
        (json!(true), json!(null))
    );
    assert_eq!(
        app.get(&agent.token, &format!("/v1/clients/{other}"))
            .await
            .body["last_name"],
        kept.last
    );
    assert_eq!(
        found_in(app.dir.path(), &erased.secrets()),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn the_root_admin_may_erase_and_an_erasure_survives_a_restart() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let erased = Person::new();
    let (id, _) = erased.onboarded(&app, &agent).await;
    let deactivated = app
        .post(
            &agent.token,
            &format!("/v1/clients/{id}/deactivate"),
            json!({}),
        )
        .await;
    assert_eq!(deactivated.status, StatusCode::OK);
    let done = app
        .post(
            &app.root,
            &format!("/v1/clients/{id}/erase"),
            json!({"reason": "court order 77"}),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);

    let app = app.restart().await;
    let client = app
        .app
        .store
        .load::<domain::client::Client>(&id)
        .await
        .unwrap()
        .aggregate;
    assert!(client.erased && client.details.is_none());
    let missing = app
        .post(
            &app.root,
            &format!("/v1/clients/{}/erase", uuid::Uuid::now_v7()),
            json!({"reason": "no such client"}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        found_in(app.dir.path(), &erased.secrets()),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn the_server_refuses_a_master_key_that_is_missing_or_not_the_stores() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let person = Person::new();
    let (id, _) = person.onboarded(&app, &agent).await;
    let key = app.keys.path().join("personal-data-master.key");
    let kept = app.keys.path().join("kept.key");
    std::fs::rename(&key, &kept).unwrap();

    // Missing: not silently replaced by a new key, under which no client would open.
    let (missing, dir, keys) = app.try_restart_with(|_| {}).await.err().expect("refused");
    assert!(format!("{missing:#}").contains("is missing"), "{missing:#}");
    assert!(!key.exists());
    // Another key: refused before serving anyone.
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
    let (wrong, dir, keys) = TestApp::try_spawn_in(dir, keys)
        .await
        .err()
        .expect("refused");
    assert!(format!("{wrong:#}").contains("is not the one"), "{wrong:#}");

    // The right one back: the client reads as before.
    std::fs::rename(&kept, &key).unwrap();
    let app = TestApp::try_spawn_in(dir, keys).await.expect("starts");
    let token = app.login(&agent.username, PASSWORD).await;
    let shown = app.get(&token, &format!("/v1/clients/{id}")).await;
    assert_eq!(
        shown.body["last_name"],
        person.last.as_str(),
        "{:?}",
        shown.body
    );
}

/// What the store holds as `client`'s data key.
async fn data_key(app: &TestApp, client: &str) -> Option<event_store::DataKey> {
    app.app
        .store
        .backend()
        .data_keys()
        .unwrap()
        .data_key(client)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_erasure_whose_key_outlived_it_is_finished_at_start_and_when_asked_again() {
    use domain::client::{Client, ClientCommand};
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let admin = app.admin().await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (id, _) = Person::new().onboarded(&app, &agent).await;
        let deactivated = app
            .post(
                &agent.token,
                &format!("/v1/clients/{id}/deactivate"),
                json!({}),
            )
            .await;
        assert_eq!(deactivated.status, StatusCode::OK);
        // The erasure's event, as if the process stopped before the key went.
        let metadata = domain::metadata::CommandMetadata {
            actor_id: admin.id.clone(),
            actor_role: domain::policy::Role::Admin,
            correlation_id: "erasure".into(),
            causation_id: "erasure".into(),
            idempotency_key: None,
            occurred_at: chrono::Utc::now(),
        };
        app.app
            .store
            .execute::<Client>(
                &id,
                event_store::Expected::Any,
                &metadata,
                ClientCommand::Erase {
                    reason: "interrupted".into(),
                },
            )
            .await
            .unwrap();
        assert!(matches!(
            data_key(&app, &id).await,
            Some(event_store::DataKey::Live(_))
        ));
        ids.push(id);
    }

    // Asked again: refused as done, and the key destroyed at once.
    let again = app
        .post(
            &admin.token,
            &format!("/v1/clients/{}/erase", ids[0]),
            json!({"reason": "again"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(
        data_key(&app, &ids[0]).await,
        Some(event_store::DataKey::Destroyed)
    );
    assert!(matches!(
        data_key(&app, &ids[1]).await,
        Some(event_store::DataKey::Live(_))
    ));

    // At the next start, before anything is served.
    let app = app.restart().await;
    assert_eq!(
        data_key(&app, &ids[1]).await,
        Some(event_store::DataKey::Destroyed)
    );
}
