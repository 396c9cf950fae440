//! The whole AWS topology on DynamoDB Local, moto and PostgreSQL: a day's work over
//! HTTP with Cognito tokens — staff changes, onboarding, accounts, deposits, a
//! withdrawal, a transfer — ends with read models, audit log and system log equal to a
//! rebuild from the DynamoDB event store.

mod support;

use aws_stack::{LocalOptions, LocalStack, Topology};
use serde_json::{json, Value};
use support::{difference, dump, settle, sign_in, Peers, PASSWORD};

struct Api {
    http: reqwest::Client,
    commands: String,
    queries: String,
}

impl Api {
    async fn post(&self, token: &str, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.commands))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "POST {path}: {status} {body}");
        body
    }

    async fn delete(&self, token: &str, path: &str) {
        let response = self
            .http
            .delete(format!("{}{path}", self.commands))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "DELETE {path}: {}",
            response.status()
        );
    }

    /// A read, retried until `ready` holds (the read side follows the events).
    async fn get_until(&self, token: &str, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        for _ in 0..120 {
            let response = self
                .http
                .get(format!("{}{path}", self.queries))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            last = response.json().await.unwrap_or(Value::Null);
            if ready(&last) {
                return last;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        panic!("GET {path} never got ready: {last}");
    }
}

fn eur(amount: i64) -> Value {
    json!({"amount": {"amount_minor": amount, "currency": "EUR"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_over_http_ends_equal_to_a_rebuild_from_dynamodb() {
    let peers = Peers::start().await;
    let clients = peers.clients(None).await;
    let live = test_peers::postgres::fresh("crm_aws_live").await;
    let any = "127.0.0.1:0".parse().unwrap();
    let stack = LocalStack::start(
        clients.clone(),
        LocalOptions {
            topology: Topology::new("day-"),
            read_database_url: live.clone(),
            command_addr: any,
            query_addr: any,
            mail_addr: any,
            front_addr: any,
            ui_dir: None,
            mail_from: "no-reply@bank.example".into(),
            root_username: "root".into(),
            root_password: PASSWORD.into(),
            region: "us-east-1".into(),
            jwks_base: Some(peers.moto.endpoint.clone()),
            projector_workers: aws_stack::local::DEFAULT_PROJECTOR_WORKERS,
        },
    )
    .await
    .unwrap();
    let app = stack.stack.app_client_id.clone();
    let api = Api {
        http: reqwest::Client::new(),
        commands: stack.command_url.clone(),
        queries: stack.query_url.clone(),
    };
    let token = |username: &'static str| sign_in(&clients, &app, username, PASSWORD);

    // Staff: the root admin makes an admin, who makes an agent and an auditor, and a
    // second agent who is disabled, enabled again and deleted.
    let root = token("root").await;
    let staff = |username: &str, role: &str| json!({"username": username, "email": format!("{username}@bank.example"), "full_name": "Test Person", "role": role, "password": PASSWORD});
    api.post(&root, "/v1/staff", staff("alice", "admin")).await;
    let admin = token("alice").await;
    api.post(&admin, "/v1/staff", staff("bob", "agent")).await;
    api.post(&admin, "/v1/staff", staff("carol", "auditor"))
        .await;
    let dave = api.post(&admin, "/v1/staff", staff("dave", "agent")).await;
    let dave = dave["id"].as_str().unwrap().to_string();
    api.post(&admin, &format!("/v1/staff/{dave}/disable"), json!({}))
        .await;
    api.post(&admin, &format!("/v1/staff/{dave}/enable"), json!({}))
        .await;
    api.delete(&admin, &format!("/v1/staff/{dave}")).await;

    // An agent's day.
    let agent = token("bob").await;
    let client = api
        .post(
            &agent,
            "/v1/clients",
            json!({
                "first_name": "Ada", "last_name": "Lovelace", "date_of_birth": "1990-12-10",
                "gender": "female", "email": "ada@example.com", "phone": "+353 1 234 5678",
                "address": {"line1": "1 Main Street", "city": "Dublin", "state": "", "country": "IE", "postal_code": "D01 F5P2"}
            }),
        )
        .await;
    let client = client["id"].as_str().unwrap().to_string();
    let open = |deposit: Option<i64>| {
        let mut body = json!({"account_type": "checking", "currency": "EUR"});
        if let Some(amount) = deposit {
            body["initial_deposit"] = json!({"amount_minor": amount, "currency": "EUR"});
        }
        body
    };
    let from = api
        .post(
            &agent,
            &format!("/v1/clients/{client}/accounts"),
            open(Some(10_000)),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let to = api
        .post(
            &agent,
            &format!("/v1/clients/{client}/accounts"),
            open(None),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    api.post(&agent, &format!("/v1/accounts/{from}/deposits"), eur(5_000))
        .await;
    api.post(
        &agent,
        &format!("/v1/accounts/{from}/withdrawals"),
        eur(2_000),
    )
    .await;
    let transfer = api
        .post(
            &agent,
            "/v1/transfers",
            json!({"from_account_id": from, "to_account_id": to, "amount": {"amount_minor": 3_000, "currency": "EUR"}}),
        )
        .await;
    assert!(transfer["id"].is_string(), "{transfer}");

    // The mail Lambda writes to the agent's client through SES (once the read models
    // know the client's address), and records it on the client's stream.
    api.get_until(&agent, &format!("/v1/clients/{client}"), |v| {
        v["email"].is_string()
    })
    .await;
    let sent = api
        .http
        .post(format!("{}/v1/mail", stack.mail_url))
        .bearer_auth(&agent)
        .json(&json!({"action": "send", "recipient": "ada@example.com", "subject": "Your accounts", "body": "Dear Ada,\nyour accounts are open."}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200, "{:?}", sent.text().await);
    let ses: Value = reqwest::get(format!("{}/moto-api/data.json", peers.moto.endpoint))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(ses["ses"].to_string().contains("Your accounts"));

    // The query service answers from Aurora (PostgreSQL) once the events got there.
    let balance = |account: &Value| account["balance"]["amount_minor"].as_i64();
    let view = api
        .get_until(&agent, &format!("/v1/accounts/{to}"), |v| {
            balance(v) == Some(3_000)
        })
        .await;
    assert_eq!(view["client_id"], client.as_str());
    let view = api
        .get_until(&agent, &format!("/v1/accounts/{from}"), |v| {
            balance(v) == Some(10_000)
        })
        .await;
    assert_eq!(view["status"], "open", "{view}");
    let auditor = token("carol").await;
    let verified = api
        .get_until(&auditor, "/v1/audit/verify", |v| v["ok"].is_boolean())
        .await;
    assert_eq!(verified["ok"], true, "{verified}");

    // The client's personal data is sealed in the store (a KMS key wraps its data key),
    // and the projector opened it for the read models.
    let stored = stack
        .store()
        .stream("client", client.as_str())
        .await
        .unwrap();
    let onboarded = stored[0].payload.to_string();
    assert!(onboarded.contains("sealed_v1"), "{onboarded}");
    let read = api
        .get_until(&agent, &format!("/v1/clients/{client}"), |v| {
            v["last_name"].is_string()
        })
        .await;
    assert!(
        !onboarded.contains(read["last_name"].as_str().unwrap()),
        "{onboarded}"
    );

    // What an outside auditor is handed: the store exported and the digests published
    // to S3, checked with the KMS key's public half alone.
    let signed = api
        .http
        .post(format!("{}/v1/audit/digests", api.queries))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status().as_u16(), 201);
    let export = tempfile::tempdir().unwrap();
    let out = export.path().join("export");
    let exported = aws_stack::export_for_audit(
        &clients,
        &Topology::new("day-"),
        &out,
        Some(&stack.keys.digest_bucket),
    )
    .await
    .unwrap();
    assert_eq!(exported.digests, Some(1));
    let public = proofs::aws::public_key(&clients.digests.kms, &stack.keys.digest_key)
        .await
        .unwrap();
    let text = std::fs::read_to_string(out.join("digests.jsonl")).unwrap();
    let digests = proofs::digest_file::parse(&out.join("digests.jsonl"), &text).unwrap();
    let report = proofs::export::verify(&out, &digests, &[public].into_iter().collect()).unwrap();
    assert!(report.ok && report.digests == 1, "{:?}", report.problems);

    // A rebuild from the DynamoDB event store equals what the Lambdas built.
    let rebuilt_url = test_peers::postgres::fresh("crm_aws_rebuilt").await;
    let rebuilt = aws_stack::rebuild(stack.store(), &rebuilt_url)
        .await
        .unwrap();
    assert_eq!(rebuilt.events, rebuilt.applied, "every event applies once");
    let expected = dump(&rebuilt_url).await;
    let live_rows = settle(&live, &expected).await;
    assert!(
        live_rows == expected,
        "{}",
        difference(&live_rows, &expected)
    );

    let count = |prefix: &str| {
        expected
            .iter()
            .filter(|row| row.starts_with(prefix))
            .count()
    };
    assert_eq!(
        count("audit_log: "),
        rebuilt.events as usize,
        "one audit row per event"
    );
    assert_eq!(
        count("staff: "),
        5,
        "root, alice, bob, carol and dave (deleted)"
    );
    assert_eq!(
        count("system_log: "),
        8,
        "every staff event: 5 created, disabled, enabled, deleted"
    );
    assert_eq!(count("dead_letters: "), 0);
    assert!(
        count("transactions: ") >= 4,
        "opening deposit, deposit, withdrawal, transfer legs"
    );

    // The SFTP worker's queue got the client and account events (and only those).
    let queued = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&stack.stack.sftp_exports_queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    let queued: usize = queued.attributes().unwrap()
        [&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages]
        .parse()
        .unwrap();
    let exported = expected
        .iter()
        .filter(|row| {
            row.starts_with("audit_log: (client,") || row.starts_with("audit_log: (account,")
        })
        .count();
    assert_eq!(queued, exported, "one message per client and account event");

    stack.stop().await;
    test_peers::postgres::drop(&live).await;
    test_peers::postgres::drop(&rebuilt_url).await;
}
