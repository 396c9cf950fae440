//! Account numbers: allocated at opening, printed with check digits, found by number
//! (payee lookup, client search), carried by transfers with a reference; accounts opened
//! before numbers existed get theirs by upcasting, the store untouched.

use cqrs_es::persist::SerializedEvent;
use domain::{AccountId, AccountNumber};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::SqlitePool;

use crate::support::TestApp;

fn number_of(body: &Value) -> AccountNumber {
    body["account_number"].as_str().unwrap().parse().unwrap()
}

/// The number with one digit changed: what a slip of the finger makes.
fn mistyped(number: AccountNumber) -> String {
    let mut text = number.to_string().into_bytes();
    let last = text.len() - 1;
    text[last] = if text[last] == b'9' {
        b'0'
    } else {
        text[last] + 1
    };
    String::from_utf8(text).unwrap()
}

#[tokio::test]
async fn accounts_get_distinct_numbers_that_find_their_payee() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let payer = app.staff(&admin.token, "agent").await;
    let payees_agent = app.staff(&admin.token, "agent").await;
    let auditor = app.staff(&admin.token, "auditor").await;
    let from = app.account_of(&payer, 500).await;
    let to = app.account_of(&payees_agent, 0).await;

    let from_view = app
        .get_when(&payer.token, &format!("/v1/accounts/{from}"), |_| true)
        .await;
    let to_view = app
        .get_when(&payees_agent.token, &format!("/v1/accounts/{to}"), |_| true)
        .await;
    let (from_number, to_number) = (number_of(&from_view.body), number_of(&to_view.body));
    assert_ne!(from_number, to_number);
    // The store's allocation is the account's for good: asking again changes nothing.
    let again = app
        .app
        .store
        .allocate_account_number(to.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(again, to_number);

    // The payer's agent names the payee from the number as printed, in any case.
    for form in [
        to_number.to_string(),
        to_number.to_string().to_lowercase(),
        to_number.compact(),
    ] {
        let path = format!("/v1/payees/{}", form.replace(' ', "%20"));
        let payee = app.get(&payer.token, &path).await;
        assert_eq!(payee.status, StatusCode::OK, "{form}: {:?}", payee.body);
        assert_eq!(payee.body["account_id"], to.as_str());
        assert_eq!(payee.body["name"], "Ada Lovelace");
        assert_eq!(payee.body["currency"], "EUR");
        assert_eq!(payee.body["status"], "open");
        assert_eq!(
            payee.body.as_object().unwrap().len(),
            5,
            "nothing else about the payee"
        );
    }
    // A slip of the finger is caught by the check digits, not sent to someone else.
    let typo = app
        .get(
            &payer.token,
            &format!("/v1/payees/{}", mistyped(to_number).replace(' ', "")),
        )
        .await;
    assert_eq!(
        typo.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        typo.body
    );
    assert_eq!(typo.body["errors"][0]["field"], "number");
    assert!(typo.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("check digits"));
    let garbage = app.get(&payer.token, "/v1/payees/hello").await;
    assert_eq!(garbage.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = AccountNumber::allocated(899_999_999_999).unwrap().compact();
    let missing = app
        .get(&payer.token, &format!("/v1/payees/{unknown}"))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // Only agents make transfers, so only they look payees up.
    for token in [&auditor.token, &admin.token] {
        let denied = app
            .get(token, &format!("/v1/payees/{}", to_number.compact()))
            .await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
    }

    // A transfer carries its reference to both histories, each naming the other number.
    let too_long = app
        .post(
            &payer.token,
            "/v1/transfers",
            json!({"from_account_id": from, "to_account_id": to, "amount": {"amount_minor": 10, "currency": "EUR"}, "reference": "x".repeat(141)}),
        )
        .await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(too_long.body["errors"][0]["field"], "reference");
    for bad in ["", "   ", "Invoice\u{7}7"] {
        let refused = app
            .post(
                &payer.token,
                "/v1/transfers",
                json!({"from_account_id": from, "to_account_id": to, "amount": {"amount_minor": 10, "currency": "EUR"}, "reference": bad}),
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
        assert_eq!(refused.body["errors"][0]["field"], "reference");
    }
    assert_eq!(app.balance(&from).await, 500, "nothing moved");
    let sent = app
        .post(
            &payer.token,
            "/v1/transfers",
            json!({"from_account_id": from, "to_account_id": to, "amount": {"amount_minor": 120, "currency": "EUR"}, "reference": "Invoice 2026-114"}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{:?}", sent.body);
    assert_eq!(sent.body["reference"], "Invoice 2026-114");
    for (token, account, other) in [
        (&payer.token, &from, to_number),
        (&payees_agent.token, &to, from_number),
    ] {
        let history = app
            .get_when(
                token,
                &format!("/v1/accounts/{account}/transactions"),
                |b| {
                    b["items"][0]["kind"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("transfer")
                },
            )
            .await;
        let line = &history.body["items"][0];
        assert_eq!(line["description"], "Invoice 2026-114");
        assert_eq!(
            line["counterparty_account_number"],
            other.compact().as_str()
        );
    }

    // The search box finds a client by an account number, within the agent's own clients.
    let found = app
        .get(
            &payer.token,
            &format!("/v1/clients?q={}", from_number.compact()),
        )
        .await;
    assert_eq!(found.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(found.body["items"][0]["id"], from_view.body["client_id"]);
    let theirs = app
        .get(
            &payer.token,
            &format!("/v1/clients?q={}", to_number.compact()),
        )
        .await;
    assert_eq!(theirs.body["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn accounts_opened_before_numbers_existed_are_upcast_and_the_store_left_as_written() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let agent = app.staff(&admin.token, "agent").await;
    let auditor = app.staff(&admin.token, "auditor").await;
    let today = app.account_of(&agent, 0).await;
    let client = app
        .get_when(&agent.token, &format!("/v1/accounts/{today}"), |_| true)
        .await
        .body["client_id"]
        .as_str()
        .unwrap()
        .to_string();

    // An opening as version 1 wrote it: no number, sealed into its chain.
    let stored = app.app.store.stream("account", &today).await.unwrap();
    let legacy = AccountId::new();
    let mut payload = stored[0].payload.clone();
    let fields = payload["AccountOpened"].as_object_mut().unwrap();
    fields.remove("account_number");
    fields.insert("account_id".into(), json!(legacy.to_string()));
    fields.insert("client_id".into(), json!(client));
    let mut event = SerializedEvent::new(
        legacy.to_string(),
        1,
        "account".into(),
        "AccountOpened".into(),
        "1".into(),
        payload,
        stored[0].metadata.clone(),
    );
    domain::chain::seal(&mut event, domain::chain::GENESIS_HASH);
    let db = SqlitePool::connect(&format!(
        "sqlite://{}",
        app.dir.path().join("ledger.db").display()
    ))
    .await
    .unwrap();
    sqlx::query("INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES ('account', $1, 1, 'AccountOpened', '1', $2, $3)")
        .bind(legacy.to_string())
        .bind(event.payload.to_string())
        .bind(event.metadata.to_string())
        .execute(&db)
        .await
        .unwrap();
    let rebuilt = app.post(&admin.token, "/v1/admin/rebuild", json!({})).await;
    assert_eq!(rebuilt.status, StatusCode::OK, "{:?}", rebuilt.body);

    let expected = AccountNumber::derived(legacy);
    let view = app
        .get_when(&agent.token, &format!("/v1/accounts/{legacy}"), |_| true)
        .await;
    assert_eq!(view.body["account_number"], expected.compact().as_str());
    let payee = app
        .get(&agent.token, &format!("/v1/payees/{}", expected.compact()))
        .await;
    assert_eq!(payee.body["account_id"], legacy.to_string().as_str());
    // The aggregate reads the old event too: the account takes money.
    let deposit = app
        .post(
            &agent.token,
            &format!("/v1/accounts/{legacy}/deposits"),
            json!({"amount": {"amount_minor": 75, "currency": "EUR"}}),
        )
        .await;
    assert_eq!(deposit.status, StatusCode::CREATED, "{:?}", deposit.body);
    let state = app
        .get(
            &auditor.token,
            &format!("/v1/audit/streams/account/{legacy}/state?version=1"),
        )
        .await;
    assert_eq!(state.body["state"]["number"], expected.compact().as_str());
    // The stored event is as it was written, and the chain still verifies.
    let raw: (String, String) = sqlx::query_as(
        "SELECT event_version, payload FROM events WHERE aggregate_id = $1 AND sequence = 1",
    )
    .bind(legacy.to_string())
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(raw.0, "1");
    assert!(!raw.1.contains("account_number"));
    let verified = app.get(&auditor.token, "/v1/audit/verify").await;
    assert_eq!(verified.body["ok"], true, "{:?}", verified.body);
    // New openings are version 2 with their allocated number.
    let current: (String,) =
        sqlx::query_as("SELECT event_version FROM events WHERE aggregate_id = $1 AND sequence = 1")
            .bind(&today)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(current.0, domain::upcast::ACCOUNT_OPENED_VERSION);
}

#[tokio::test]
async fn payee_lookups_are_logged_and_limited_so_names_cannot_be_harvested() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let walker = app.staff(&admin.token, "agent").await;
    let other = app.staff(&admin.token, "agent").await;
    // Walking the numbers one after another, as a harvester would.
    for sequence in 1..=30 {
        let number = AccountNumber::allocated(sequence).unwrap().compact();
        let reply = app
            .get(&walker.token, &format!("/v1/payees/{number}"))
            .await;
        assert_ne!(
            reply.status,
            StatusCode::TOO_MANY_REQUESTS,
            "lookup {sequence}"
        );
    }
    let next = AccountNumber::allocated(31).unwrap().compact();
    let stopped = app.get(&walker.token, &format!("/v1/payees/{next}")).await;
    assert_eq!(
        stopped.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{:?}",
        stopped.body
    );
    assert_eq!(stopped.problem_type(), "/problems/too-many-lookups");
    assert!(stopped.body["detail"]
        .as_str()
        .unwrap()
        .contains("try again in"));
    // Malformed input counts too, and another agent is not held back.
    let garbage = app.get(&walker.token, "/v1/payees/anything").await;
    assert_eq!(garbage.status, StatusCode::TOO_MANY_REQUESTS);
    let fine = app.get(&other.token, &format!("/v1/payees/{next}")).await;
    assert_eq!(fine.status, StatusCode::NOT_FOUND);
    // Every lookup, answered or refused, is in the system log under its actor.
    let log = app
        .get_when(
            &admin.token,
            &format!(
                "/v1/system-log?category=payee-lookup&actor={}&limit=200",
                walker.username
            ),
            |b| b["items"].as_array().unwrap().len() == 32,
        )
        .await;
    let messages: Vec<&str> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        messages.contains(&format!("Payee looked up: {next} (refused: too many lookups)").as_str())
    );
    assert!(messages.iter().any(|m| m.ends_with("(no such account)")));
}
