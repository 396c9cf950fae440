//! The read side: what commands did is visible within a second, lists paginate without
//! gaps or duplicates, and every read endpoint enforces who may see what.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashSet;

use crate::support::{client_body, eur, person, TestApp};

#[tokio::test]
async fn a_read_after_a_command_reflects_it() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let client = app.client_of(&agent).await;
    let detail = app
        .get_when(&agent.token, &format!("/v1/clients/{client}"), |_| true)
        .await;
    assert_eq!(detail.body["last_name"], "Lovelace");
    assert_eq!(detail.body["address"]["country"], "IE");
    assert_eq!(detail.body["agent_id"], agent.id.as_str());
    assert_eq!(detail.body["status"], "active");
    assert_eq!(detail.headers["etag"], "\"1\"");

    let opened = app.post(&agent.token, &format!("/v1/clients/{client}/accounts"), json!({"account_type": "savings", "currency": "EUR", "initial_deposit": {"amount_minor": 1000, "currency": "EUR"}})).await;
    let account = opened.id();
    app.post(
        &agent.token,
        &format!("/v1/accounts/{account}/deposits"),
        json!({"amount": {"amount_minor": 250, "currency": "EUR"}, "description": "salary"}),
    )
    .await;
    app.post(
        &agent.token,
        &format!("/v1/accounts/{account}/withdrawals"),
        eur(100),
    )
    .await;
    let view = app
        .get_when(&agent.token, &format!("/v1/accounts/{account}"), |b| {
            b["version"] == 3
        })
        .await;
    assert_eq!(
        view.body["balance"],
        json!({"amount_minor": 1150, "currency": "EUR"})
    );
    assert_eq!(view.body["status"], "open");
    assert_eq!(view.headers["etag"], "\"3\"");

    let list = app
        .get(&agent.token, &format!("/v1/clients/{client}/accounts"))
        .await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    let history = app
        .get(
            &agent.token,
            &format!("/v1/accounts/{account}/transactions"),
        )
        .await;
    let kinds: Vec<&str> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["withdrawal", "deposit", "opening_deposit"]);
    let deposit = &history.body["items"][1];
    assert_eq!(deposit["amount"]["amount_minor"], 250);
    assert_eq!(deposit["balance_after"]["amount_minor"], 1250);
    assert_eq!(deposit["description"], "salary");
    for field in ["id", "occurred_at"] {
        assert!(deposit.get(field).is_some());
    }
}

#[tokio::test]
async fn transaction_history_takes_a_date_range() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let worker = app.worker().await;
    let account = app.account_of(&agent, 0).await;
    for (id, day) in [
        ("a", "2026-01-05"),
        ("b", "2026-02-10"),
        ("c", "2026-03-15"),
    ] {
        let body = json!({"external_id": id, "direction": "credit", "amount": {"amount_minor": 10, "currency": "EUR"}, "booked_at": format!("{day}T12:00:00Z")});
        assert_eq!(
            app.post(
                &worker,
                &format!("/v1/accounts/{account}/external-transactions"),
                body
            )
            .await
            .status,
            StatusCode::CREATED
        );
    }
    app.settled().await;
    let path = format!(
        "/v1/accounts/{account}/transactions?from=2026-02-01T00:00:00Z&to=2026-03-01T00:00:00Z"
    );
    let february = app.get(&agent.token, &path).await;
    let items = february.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["external_id"], "b");
    assert_eq!(items[0]["kind"], "external_credit");
    let bad = app
        .get(
            &agent.token,
            &format!("/v1/accounts/{account}/transactions?from=yesterday"),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.is_problem());
    // Oldest first, page by page, is the same history the other way round.
    let path = format!("/v1/accounts/{account}/transactions");
    let mut oldest = walk(&app, &agent.token, &format!("{path}?sort=oldest"), 2).await;
    oldest.reverse();
    assert_eq!(oldest, walk(&app, &agent.token, &path, 2).await);
    let first = app
        .get(&agent.token, &format!("{path}?sort=oldest&limit=1"))
        .await;
    assert_eq!(first.body["items"][0]["external_id"], "a");
    assert_eq!(first.body["total"], 3);
    let unknown = app.get(&agent.token, &format!("{path}?sort=amount")).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
}

/// Follows `next_cursor` through a list, returning every item's id.
async fn walk(app: &TestApp, token: &str, path: &str, limit: usize) -> Vec<String> {
    crate::support::walk(app, token, path, limit)
        .await
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn pagination_has_no_duplicates_or_gaps() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let mut created = Vec::new();
    for n in 0..7 {
        let reply = app
            .post(
                &agent.token,
                "/v1/clients",
                person(&format!("Client{n}"), "Pager", &format!("c{n}@example.com")),
            )
            .await;
        created.push(reply.id());
    }
    let account = app.account_of(&agent, 0).await;
    for _ in 0..23 {
        app.post(
            &agent.token,
            &format!("/v1/accounts/{account}/deposits"),
            eur(1),
        )
        .await;
    }
    app.settled().await;
    let clients = walk(&app, &agent.token, "/v1/clients", 3).await;
    assert_eq!(clients.len(), 8, "seven clients plus the account's");
    assert_eq!(clients.iter().collect::<HashSet<_>>().len(), 8);
    assert!(created.iter().all(|id| clients.contains(id)));
    let transactions = walk(
        &app,
        &agent.token,
        &format!("/v1/accounts/{account}/transactions"),
        10,
    )
    .await;
    assert_eq!(transactions.len(), 23);
    assert_eq!(transactions.iter().collect::<HashSet<_>>().len(), 23);
    let bad = app
        .get(&agent.token, "/v1/clients?cursor=not-a-cursor")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.problem_type(), "/problems/invalid-cursor");
    let too_many = app.get(&agent.token, "/v1/clients?limit=1000").await;
    assert_eq!(too_many.status, StatusCode::OK);
}

#[tokio::test]
async fn clients_are_searched_by_name_and_email() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    app.post(
        &agent.token,
        "/v1/clients",
        person("Grace", "Hopper", "grace@navy.example"),
    )
    .await;
    app.post(
        &agent.token,
        "/v1/clients",
        person("Alan", "Turing", "alan@bletchley.example"),
    )
    .await;
    app.post(
        &agent.token,
        "/v1/clients",
        person("Ada", "Lovelace", "ada_l@example.com"),
    )
    .await;
    app.settled().await;
    let names = |reply: crate::support::Reply| -> Vec<String> {
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["last_name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(app.get(&agent.token, "/v1/clients?q=hopper").await),
        ["Hopper"]
    );
    assert_eq!(
        names(app.get(&agent.token, "/v1/clients?q=BLETCHLEY").await),
        ["Turing"]
    );
    assert_eq!(
        names(app.get(&agent.token, "/v1/clients?q=a%20lovelace").await),
        ["Lovelace"]
    );
    // LIKE wildcards in the query are taken literally.
    assert_eq!(
        names(app.get(&agent.token, "/v1/clients?q=ada_l").await),
        ["Lovelace"]
    );
    assert!(names(app.get(&agent.token, "/v1/clients?q=%25").await).is_empty());
    assert_eq!(names(app.get(&agent.token, "/v1/clients").await).len(), 3);
}

#[tokio::test]
async fn every_read_endpoint_enforces_the_policy() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let agent = app.staff(&admin.token, "agent").await;
    let other = app.staff(&admin.token, "agent").await;
    let auditor = app.staff(&admin.token, "auditor").await;
    let worker = app.worker().await;
    let client = app.client_of(&agent).await;
    let theirs = app.client_of(&other).await;
    let account = app.account_of(&agent, 10).await;
    app.settled().await;

    let root = app.root.clone();
    let [admin, agent, other, auditor] =
        [&admin.token, &agent.token, &other.token, &auditor.token].map(String::clone);
    let staff_id = app.app.root_id.clone();
    let number = app
        .get(&agent, &format!("/v1/accounts/{account}"))
        .await
        .body["account_number"]
        .as_str()
        .unwrap()
        .to_string();
    let cases: Vec<(String, Vec<&String>, Vec<&String>)> = vec![
        // Any agent names a payee (the payee's client may be another agent's).
        (
            format!("/v1/payees/{number}"),
            vec![&agent, &other],
            vec![&admin, &root, &auditor, &worker],
        ),
        (
            "/v1/staff".into(),
            vec![&admin, &root],
            vec![&agent, &auditor, &worker],
        ),
        (
            format!("/v1/staff/{staff_id}"),
            vec![&admin, &root],
            vec![&agent, &auditor, &worker],
        ),
        (
            "/v1/clients".into(),
            vec![&agent, &auditor],
            vec![&admin, &root, &worker],
        ),
        (
            format!("/v1/clients/{client}"),
            vec![&agent, &auditor],
            vec![&other, &admin, &root, &worker],
        ),
        (
            format!("/v1/clients/{client}/accounts"),
            vec![&agent, &auditor],
            vec![&other, &admin, &root, &worker],
        ),
        (
            format!("/v1/clients/{client}/communications"),
            vec![&agent, &auditor],
            vec![&other, &admin, &root, &worker],
        ),
        (
            format!("/v1/accounts/{account}"),
            vec![&agent, &auditor, &worker],
            vec![&other, &admin, &root],
        ),
        (
            format!("/v1/accounts/{account}/transactions"),
            vec![&agent, &auditor],
            vec![&other, &admin, &root, &worker],
        ),
        (
            format!("/v1/audit/streams/client/{client}/events"),
            vec![&auditor],
            vec![&agent, &admin, &root, &worker],
        ),
        (
            format!("/v1/audit/streams/client/{client}/state?version=1"),
            vec![&auditor],
            vec![&agent, &admin, &root, &worker],
        ),
        (
            "/v1/audit/verify".into(),
            vec![&auditor],
            vec![&agent, &admin, &root, &worker],
        ),
        (
            "/v1/audit/log".into(),
            vec![&auditor],
            vec![&agent, &admin, &root, &worker],
        ),
        (
            "/v1/audit/verifications".into(),
            vec![&auditor],
            vec![&agent, &admin, &root, &worker],
        ),
        (
            "/v1/system-log".into(),
            vec![&admin, &root],
            vec![&agent, &auditor, &worker],
        ),
    ];
    for (path, allowed, denied) in &cases {
        for token in allowed {
            let reply = app.get(token, path).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}: {:?}", reply.body);
        }
        for token in denied {
            let reply = app.get(token, path).await;
            assert_eq!(
                reply.status,
                StatusCode::FORBIDDEN,
                "{path}: {:?}",
                reply.body
            );
            assert!(
                !reply.body.to_string().contains("Lovelace"),
                "a denial carries no client data"
            );
        }
        let anonymous = app.call(Method::GET, path, None, None, &[]).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    // An agent's list holds their own clients only; an auditor's holds everyone's.
    let own: Vec<Value> = app.get(&agent, "/v1/clients").await.body["items"]
        .as_array()
        .unwrap()
        .clone();
    assert!(own.iter().all(|c| c["id"] != theirs.as_str()));
    let all = app.get(&auditor, "/v1/clients").await.body["items"]
        .as_array()
        .unwrap()
        .len();
    assert!(all >= 3);
    for token in [&agent, &auditor] {
        assert_eq!(
            app.post(token, "/v1/admin/rebuild", json!({})).await.status,
            StatusCode::FORBIDDEN
        );
    }
    let unknown = app
        .get(&agent, "/v1/clients/0192f000-0000-7000-8000-000000000001")
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let _ = client_body();
}
