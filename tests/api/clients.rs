//! Clients: onboarding, contact changes and deactivation, each only by the client's agent.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{client_body, TestApp};

#[tokio::test]
async fn an_agent_onboards_their_own_clients_only() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let agent = app.staff(&admin.token, "agent").await;
    let other = app.staff(&admin.token, "agent").await;
    let auditor = app.staff(&admin.token, "auditor").await;
    let worker = app.worker().await;

    let created = app.post(&agent.token, "/v1/clients", client_body()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["version"], 1);
    let id = created.id();
    assert_eq!(
        created.headers["location"],
        format!("/v1/clients/{id}").as_str()
    );
    let client = app
        .app
        .store
        .load::<domain::client::Client>(&id)
        .await
        .unwrap()
        .aggregate;
    assert_eq!(client.agent_id.to_string(), agent.id);

    let mut for_other = client_body();
    for_other["agent_id"] = json!(other.id);
    assert_eq!(
        app.post(&agent.token, "/v1/clients", for_other)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    for token in [&app.root, &admin.token, &auditor.token, &worker] {
        let reply = app.post(token, "/v1/clients", client_body()).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{:?}", reply.body);
    }
}

#[tokio::test]
async fn contact_details_change_for_the_owner_only() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let agent = app.staff(&admin.token, "agent").await;
    let other = app.staff(&admin.token, "agent").await;
    let id = app.client_of(&agent).await;
    let path = format!("/v1/clients/{id}");

    let denied = app
        .call(
            Method::PATCH,
            &path,
            Some(&other.token),
            Some(json!({"email": "x@example.com"})),
            &[],
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert!(
        !denied.body.to_string().contains("Lovelace"),
        "a denial shows no client data"
    );
    let denied_admin = app
        .call(
            Method::PATCH,
            &path,
            Some(&admin.token),
            Some(json!({"email": "x@example.com"})),
            &[],
        )
        .await;
    assert_eq!(denied_admin.status, StatusCode::FORBIDDEN);

    let changed = app
        .call(Method::PATCH, &path, Some(&agent.token), Some(json!({"email": "new@example.com", "address": {"line1": "2 Side St", "city": "Cork", "country": "IE", "postal_code": "T12"}})), &[])
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.body);
    assert_eq!(changed.body["version"], 2);
    let client = app
        .app
        .store
        .load::<domain::client::Client>(&id)
        .await
        .unwrap()
        .aggregate;
    assert_eq!(client.details.unwrap().email.as_str(), "new@example.com");

    let nothing = app
        .call(
            Method::PATCH,
            &path,
            Some(&agent.token),
            Some(json!({})),
            &[],
        )
        .await;
    assert_eq!(nothing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(nothing.problem_type(), "/problems/nothing-to-update");

    let bad = app.call(Method::PATCH, &path, Some(&agent.token), Some(json!({"phone": "12", "address": {"line1": "", "city": "C", "country": "ZZ", "postal_code": "1"}})), &[]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.fields(), ["phone", "address.line1", "address.country"]);
    assert_eq!(
        app.events("client", &id).await,
        2,
        "refusals append nothing"
    );

    let unknown = app
        .call(
            Method::PATCH,
            "/v1/clients/0192f000-0000-7000-8000-000000000001",
            Some(&agent.token),
            Some(json!({"phone": "+3531234567"})),
            &[],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_deactivated_client_takes_no_changes() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let other = app.agent().await;
    let id = app.client_of(&agent).await;
    let path = format!("/v1/clients/{id}/deactivate");
    assert_eq!(
        app.call(Method::POST, &path, Some(&other.token), None, &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let done = app
        .post(&agent.token, &path, json!({"reason": "moved abroad"}))
        .await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    let again = app
        .call(Method::POST, &path, Some(&agent.token), None, &[])
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.problem_type(), "/problems/client-deactivated");
    let patch = app
        .call(
            Method::PATCH,
            &format!("/v1/clients/{id}"),
            Some(&agent.token),
            Some(json!({"phone": "+3531234567"})),
            &[],
        )
        .await;
    assert_eq!(patch.status, StatusCode::CONFLICT);
    let account = app
        .post(
            &agent.token,
            &format!("/v1/clients/{id}/accounts"),
            json!({"account_type": "savings", "currency": "EUR"}),
        )
        .await;
    assert_eq!(account.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn client_lists_sort_by_name_or_age_page_by_page_and_say_how_many() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let names = [
        ("Zoe", "Adams"),
        ("ada", "lovelace"),
        ("Grace", "Hopper"),
        ("Alan", "Turing"),
        ("Edsger", "Dijkstra"),
    ];
    for (first, last) in names {
        let mut body = crate::support::client_body();
        body["first_name"] = json!(first);
        body["last_name"] = json!(last);
        let reply = app.post(&agent.token, "/v1/clients", body).await;
        assert_eq!(reply.status, StatusCode::CREATED);
    }
    app.settled().await;
    // Every page of a sort, joined: the whole list in that order.
    let walk = |sort: &'static str| {
        let (app, token) = (&app, agent.token.clone());
        async move {
            crate::support::walk(app, &token, &format!("/v1/clients?sort={sort}"), 2)
                .await
                .iter()
                .map(|c| c["last_name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let first = app.get(&agent.token, "/v1/clients?limit=2").await;
    assert_eq!(
        (
            first.body["total"].clone(),
            first.body["total_exact"].clone()
        ),
        (json!(5), json!(true))
    );
    assert_eq!(
        walk("name").await,
        ["Adams", "Dijkstra", "Hopper", "lovelace", "Turing"]
    );
    let newest = walk("newest").await;
    assert_eq!(
        newest,
        ["Dijkstra", "Turing", "Hopper", "lovelace", "Adams"]
    );
    let mut oldest = walk("oldest").await;
    oldest.reverse();
    assert_eq!(oldest, newest);
    // A filter counts what it matches.
    let found = app.get(&agent.token, "/v1/clients?q=hopper").await;
    assert_eq!(found.body["total"], 1);
    // An agent searches their own clients with any text; a search of everyone's needs
    // three characters, which the text index can find (or an account number).
    let auditor = app.staff(&app.admin().await.token, "auditor").await;
    for (token, q, status, total) in [
        (&agent.token, "ho", StatusCode::OK, Some(1)),
        (&agent.token, "tu", StatusCode::OK, Some(1)),
        (&auditor.token, "hop", StatusCode::OK, Some(1)),
        (&auditor.token, "%20%20hop%20", StatusCode::OK, Some(1)),
        (&auditor.token, "", StatusCode::OK, Some(5)),
        (&auditor.token, "ho", StatusCode::BAD_REQUEST, None),
        (&auditor.token, "%20o%20%20", StatusCode::BAD_REQUEST, None),
    ] {
        let reply = app.get(token, &format!("/v1/clients?q={q}")).await;
        assert_eq!(reply.status, status, "{q:?}: {}", reply.body);
        if let Some(total) = total {
            assert_eq!(reply.body["total"], total, "{q:?}");
        } else {
            assert_eq!(reply.problem_type(), "/problems/invalid-query", "{q:?}");
        }
    }
    // An unknown sort, and a cursor of another sort, are refused.
    let bad = app.get(&agent.token, "/v1/clients?sort=balance").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let by_age = app.get(&agent.token, "/v1/clients?limit=1").await;
    let cursor = by_age.body["next_cursor"].as_str().unwrap();
    let mixed = app
        .get(
            &agent.token,
            &format!("/v1/clients?sort=name&cursor={cursor}"),
        )
        .await;
    assert_eq!(mixed.status, StatusCode::BAD_REQUEST);
}
