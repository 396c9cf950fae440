//! Bad input gets a clear 4xx problem+json, never a 5xx, and nothing is appended.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn bad_movements_are_refused_without_effect() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let account = app.account_of(&agent, 100).await;
    let url = app.url(&format!("/v1/accounts/{account}/deposits"));
    let token = agent.token.clone();
    let raw = |body: &'static str, content_type: &'static str| {
        let app = &app;
        let url = url.clone();
        let token = token.clone();
        async move {
            let response = app
                .http
                .post(url)
                .bearer_auth(&token)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            TestApp::read(response).await
        }
    };
    let huge = "x".repeat(100 * 1024);
    let oversized = app
        .http
        .post(&url)
        .bearer_auth(&agent.token)
        .json(&json!({"amount": {"amount_minor": 1, "currency": "EUR"}, "description": huge}))
        .send()
        .await
        .unwrap();
    let oversized = TestApp::read(oversized).await;
    assert_eq!(oversized.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(oversized.is_problem());

    let cases: Vec<(&str, &str, StatusCode, &str)> = vec![
        ("{\"amount\": ", "application/json", StatusCode::BAD_REQUEST, ""),
        ("not json", "application/json", StatusCode::BAD_REQUEST, ""),
        ("{\"amount\": {\"amount_minor\": 1, \"currency\": \"EUR\"}}", "text/plain", StatusCode::UNSUPPORTED_MEDIA_TYPE, ""),
        ("{\"amount\": {\"amount_minor\": 1, \"currency\": \"EUR\"}, \"colour\": \"red\"}", "application/json", StatusCode::UNPROCESSABLE_ENTITY, "colour"),
        ("{\"amount\": {\"amount_minor\": \"ten\", \"currency\": \"EUR\"}}", "application/json", StatusCode::UNPROCESSABLE_ENTITY, "amount.amount_minor"),
        ("{\"amount\": {\"amount_minor\": 1.5, \"currency\": \"EUR\"}}", "application/json", StatusCode::UNPROCESSABLE_ENTITY, "amount.amount_minor"),
        ("{\"amount\": {\"amount_minor\": 0, \"currency\": \"EUR\"}}", "application/json", StatusCode::UNPROCESSABLE_ENTITY, "amount.amount_minor"),
        ("{\"amount\": {\"amount_minor\": -5, \"currency\": \"EUR\"}}", "application/json", StatusCode::UNPROCESSABLE_ENTITY, "amount.amount_minor"),
        ("{\"amount\": {\"amount_minor\": 1000000000000000001, \"currency\": \"EUR\"}}", "application/json", StatusCode::UNPROCESSABLE_ENTITY, "amount.amount_minor"),
        ("{\"amount\": {\"amount_minor\": 99999999999999999999999, \"currency\": \"EUR\"}}", "application/json", StatusCode::UNPROCESSABLE_ENTITY, "amount.amount_minor"),
        ("{\"amount\": {\"amount_minor\": 1, \"currency\": \"XYZ\"}}", "application/json", StatusCode::UNPROCESSABLE_ENTITY, "amount.currency"),
        ("{\"amount\": {\"amount_minor\": 1, \"currency\": \"USD\"}}", "application/json", StatusCode::UNPROCESSABLE_ENTITY, ""),
        ("{\"amount\": {\"amount_minor\": 1, \"currency\": \"EUR\"}, \"description\": \"a\\u0000b\"}", "application/json", StatusCode::UNPROCESSABLE_ENTITY, "description"),
        ("{}", "application/json", StatusCode::UNPROCESSABLE_ENTITY, "amount"),
        ("[]", "application/json", StatusCode::UNPROCESSABLE_ENTITY, ""),
    ];
    for (body, content_type, status, field) in cases {
        let reply = raw(body, content_type).await;
        assert_eq!(reply.status, status, "{body}: {:?}", reply.body);
        assert!(reply.is_problem(), "{body}");
        for key in ["type", "title", "status", "detail"] {
            assert!(reply.body.get(key).is_some(), "{body} lacks {key}");
        }
        if !field.is_empty() {
            assert!(
                reply.fields().iter().any(|f| f == field),
                "{body}: {:?}",
                reply.body
            );
        }
    }
    let mismatch = raw(
        "{\"amount\": {\"amount_minor\": 1, \"currency\": \"USD\"}}",
        "application/json",
    )
    .await;
    assert_eq!(mismatch.problem_type(), "/problems/currency-mismatch");
    assert_eq!(app.events("account", &account).await, 1, "nothing appended");
    assert_eq!(app.balance(&account).await, 100);
}

#[tokio::test]
async fn a_bad_client_names_every_field() {
    let app = TestApp::spawn().await;
    let agent = app.agent().await;
    let reply = app
        .post(
            &agent.token,
            "/v1/clients",
            json!({"first_name": "", "last_name": "L", "date_of_birth": "31/12/1990", "gender": "x", "email": "a@b",
                   "phone": "call me", "address": {"line1": "1", "city": "", "country": "Ireland", "postal_code": ""}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        reply.fields(),
        [
            "first_name",
            "date_of_birth",
            "gender",
            "email",
            "phone",
            "address.city",
            "address.country",
            "address.postal_code"
        ]
    );
    let missing = app
        .post(&agent.token, "/v1/clients", json!({"first_name": "A"}))
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing.fields(), ["last_name"]);
    assert!(app
        .app
        .store
        .open_streams("client", &[])
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn the_openapi_document_lists_every_command() {
    let app = TestApp::spawn().await;
    let reply = app
        .call(reqwest::Method::GET, "/openapi.json", None, None, &[])
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let paths = reply.body["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/staff", "post"),
        ("/v1/staff/{id}", "delete"),
        ("/v1/staff/{id}/disable", "post"),
        ("/v1/staff/{id}/enable", "post"),
        ("/v1/clients", "post"),
        ("/v1/clients/{id}", "patch"),
        ("/v1/clients/{id}/deactivate", "post"),
        ("/v1/clients/{id}/erase", "post"),
        ("/v1/clients/{id}/accounts", "post"),
        ("/v1/accounts/{id}/deposits", "post"),
        ("/v1/accounts/{id}/withdrawals", "post"),
        ("/v1/accounts/{id}/external-transactions", "post"),
        ("/v1/accounts/{id}/freeze", "post"),
        ("/v1/accounts/{id}/unfreeze", "post"),
        ("/v1/accounts/{id}/close", "post"),
        ("/v1/transfers", "post"),
        ("/v1/transfers/{id}", "get"),
        ("/v1/staff", "get"),
        ("/v1/staff/{id}", "get"),
        ("/v1/clients", "get"),
        ("/v1/clients/{id}", "get"),
        ("/v1/clients/{id}/accounts", "get"),
        ("/v1/accounts/{id}", "get"),
        ("/v1/accounts/{id}/transactions", "get"),
        ("/v1/system-log", "get"),
        ("/v1/admin/rebuild", "post"),
        ("/v1/audit/streams/{aggregate_type}/{id}/events", "get"),
        ("/v1/audit/streams/{aggregate_type}/{id}/state", "get"),
        ("/v1/audit/verify", "get"),
        ("/v1/audit/log", "get"),
        ("/v1/audit/verifications", "get"),
        ("/v1/audit/verifications", "post"),
        ("/v1/audit/verifications/{id}", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from /openapi.json"
        );
    }
    assert!(reply.body["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn health_and_metrics_answer() {
    let app = TestApp::spawn().await;
    for path in ["/health/live", "/health/ready"] {
        let reply = app.call(reqwest::Method::GET, path, None, None, &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
    }
    let agent = app.agent().await;
    app.account_of(&agent, 10).await;
    app.settled().await;
    let text = metrics(&app).await;
    for name in [
        "ledgerline_http_responses_total{class=\"2xx\"}",
        "ledgerline_events_projected_total",
        "ledgerline_projection_lag_events 0",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    // Restarted on a caught-up store, the read models are where they were: no lag.
    let restarted = app.restart().await;
    restarted.settled().await;
    let text = metrics(&restarted).await;
    assert!(
        text.contains("ledgerline_projection_lag_events 0"),
        "after a restart:\n{text}"
    );
}

async fn metrics(app: &TestApp) -> String {
    let reply = app.http.get(app.url("/metrics")).send().await.unwrap();
    reply.text().await.unwrap()
}

#[tokio::test]
async fn the_web_ui_is_served_with_client_side_routes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("ui/assets")).unwrap();
    std::fs::write(
        dir.path().join("ui/index.html"),
        "<!doctype html><title>Ledgerline</title>",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("ui/assets/app.js"),
        "console.log('ledgerline')",
    )
    .unwrap();
    let app = TestApp::spawn_in(dir).await;
    for (path, expected) in [
        ("/", "<title>Ledgerline"),
        ("/clients/123", "<title>Ledgerline"),
        ("/assets/app.js", "console.log"),
    ] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(body.contains(expected), "{path}: {body}");
    }
    // The API keeps answering as the API.
    let reply = app
        .call(reqwest::Method::GET, "/v1/clients", None, None, &[])
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let unknown = app
        .call(reqwest::Method::GET, "/v1/nothing-here", None, None, &[])
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.is_problem());
}

/// CRM_GROUP_COMMIT=0 and CRM_AGGREGATE_CACHE=0 reach the store (they once stopped at
/// the configuration, so the benchmark's "off" row measured "on"), and commands work so.
#[tokio::test]
async fn the_store_runs_with_the_settings_it_is_given() {
    let off = event_store::SqliteOptions {
        group_commit: false,
        aggregate_cache: false,
    };
    let app =
        TestApp::spawn_configured(tempfile::tempdir().unwrap(), |config| config.store = off).await;
    assert_eq!(app.app.store.backend().sqlite_options(), Some(off));
    assert!(!app.app.store.caches_aggregates());
    let agent = app.agent().await;
    let account = app.account_of(&agent, 10).await;
    let deposit = app
        .post(
            &agent.token,
            &format!("/v1/accounts/{account}/deposits"),
            crate::support::eur(5),
        )
        .await;
    assert_eq!(deposit.status, reqwest::StatusCode::CREATED);
    assert_eq!(app.balance(&account).await, 15);
    // Idempotency records are made one transaction each, without the record writer.
    let path = format!("/v1/accounts/{account}/deposits");
    let key = [("idempotency-key", "deposit-1")];
    let keyed = || {
        app.call(
            reqwest::Method::POST,
            &path,
            Some(&agent.token),
            Some(crate::support::eur(5)),
            &key,
        )
    };
    let (first, retry) = (keyed().await, keyed().await);
    assert_eq!(first.status, reqwest::StatusCode::CREATED);
    assert_eq!(retry.headers["idempotent-replay"], "true");
    assert_eq!(retry.body, first.body);
    assert_eq!(app.balance(&account).await, 20);

    let defaults = TestApp::spawn().await;
    assert_eq!(
        defaults.app.store.backend().sqlite_options(),
        Some(event_store::SqliteOptions::default())
    );
    assert!(defaults.app.store.caches_aggregates());
}
