//! Staff management: who may create, disable, enable and delete whom.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{TestApp, PASSWORD};

fn staff_body(username: &str, role: &str) -> serde_json::Value {
    json!({"username": username, "email": format!("{username}@bank.example"), "full_name": "Someone", "role": role, "password": PASSWORD})
}

#[tokio::test]
async fn who_may_create_whom() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let agent = app.staff(&admin.token, "agent").await;
    let auditor = app.staff(&admin.token, "auditor").await;
    let worker = app.worker().await;
    let cases = [
        (app.root.as_str(), "admin", StatusCode::CREATED),
        (app.root.as_str(), "agent", StatusCode::FORBIDDEN),
        (app.root.as_str(), "auditor", StatusCode::FORBIDDEN),
        (app.root.as_str(), "root-admin", StatusCode::FORBIDDEN),
        (admin.token.as_str(), "agent", StatusCode::CREATED),
        (admin.token.as_str(), "auditor", StatusCode::CREATED),
        (admin.token.as_str(), "admin", StatusCode::FORBIDDEN),
        (admin.token.as_str(), "root-admin", StatusCode::FORBIDDEN),
        (agent.token.as_str(), "agent", StatusCode::FORBIDDEN),
        (agent.token.as_str(), "admin", StatusCode::FORBIDDEN),
        (auditor.token.as_str(), "agent", StatusCode::FORBIDDEN),
        (worker.as_str(), "agent", StatusCode::FORBIDDEN),
    ];
    for (token, role, expected) in cases {
        let username = app.unique("new");
        let reply = app
            .post(token, "/v1/staff", staff_body(&username, role))
            .await;
        assert_eq!(reply.status, expected, "creating {role}: {:?}", reply.body);
        if expected == StatusCode::FORBIDDEN {
            assert!(reply.is_problem());
            assert_eq!(reply.problem_type(), "/problems/forbidden");
        } else {
            assert_eq!(reply.body["version"], 1);
            assert_eq!(reply.headers["etag"], "\"1\"");
        }
    }
}

#[tokio::test]
async fn a_duplicate_username_is_a_conflict() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let first = app
        .post(&admin.token, "/v1/staff", staff_body("jane.doe", "agent"))
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = app
        .post(&admin.token, "/v1/staff", staff_body("Jane.Doe", "auditor"))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.problem_type(), "/problems/username-taken");
}

#[tokio::test]
async fn invalid_staff_fields_are_named_and_nothing_is_created() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let reply = app
        .post(&admin.token, "/v1/staff", json!({"username": "x", "email": "nope", "full_name": "", "role": "wizard", "password": "short"}))
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        reply.fields(),
        ["username", "email", "full_name", "role", "password"]
    );
    let weak = app.post(&admin.token, "/v1/staff", json!({"username": "weakling", "email": "w@bank.example", "full_name": "W", "role": "agent", "password": "short"})).await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(weak.fields(), ["password"]);
    let login = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": "weakling", "password": "short"})),
            &[],
        )
        .await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn disabling_stops_sign_in_and_existing_tokens_until_enabled() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let agent = app.staff(&admin.token, "agent").await;
    assert_eq!(
        app.post(&agent.token, "/v1/clients", crate::support::client_body())
            .await
            .status,
        StatusCode::CREATED
    );

    let disabled = app
        .post(
            &admin.token,
            &format!("/v1/staff/{}/disable", agent.id),
            json!({}),
        )
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{:?}", disabled.body);
    assert_eq!(disabled.body["version"], 2);
    let refused = app
        .post(&agent.token, "/v1/clients", crate::support::client_body())
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let login = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": agent.username, "password": PASSWORD})),
            &[],
        )
        .await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED);
    let twice = app
        .post(
            &admin.token,
            &format!("/v1/staff/{}/disable", agent.id),
            json!({}),
        )
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert_eq!(twice.problem_type(), "/problems/staff-already-disabled");

    let enabled = app
        .post(
            &admin.token,
            &format!("/v1/staff/{}/enable", agent.id),
            json!({}),
        )
        .await;
    assert_eq!(enabled.status, StatusCode::OK);
    let token = app.login(&agent.username, PASSWORD).await;
    assert_eq!(
        app.post(&token, "/v1/clients", crate::support::client_body())
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn deleting_removes_the_user_for_good() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let auditor = app.staff(&admin.token, "auditor").await;
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/v1/staff/{}", auditor.id),
            Some(&admin.token),
            None,
            &[],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{:?}", deleted.body);
    let login = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": auditor.username, "password": PASSWORD})),
            &[],
        )
        .await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED);
    let with_old_token = app
        .call(
            Method::GET,
            "/v1/transfers/0192f000-0000-7000-8000-000000000001",
            Some(&auditor.token),
            None,
            &[],
        )
        .await;
    assert_eq!(with_old_token.status, StatusCode::UNAUTHORIZED);
    let again = app
        .post(
            &admin.token,
            &format!("/v1/staff/{}/enable", auditor.id),
            json!({}),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(again.problem_type(), "/problems/staff-deleted");
}

#[tokio::test]
async fn who_may_manage_whom() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let other_admin = app.admin().await;
    let agent = app.staff(&admin.token, "agent").await;
    let auditor = app.staff(&admin.token, "auditor").await;
    let root_id = app.app.root_id.clone();
    // (caller, target, allowed)
    let cases = [
        (&admin.token, &other_admin.id, false),
        (&admin.token, &root_id, false),
        (&agent.token, &auditor.id, false),
        (&auditor.token, &agent.id, false),
        (&app.root, &agent.id, false),
        (&app.root, &root_id, false),
        (&other_admin.token, &auditor.id, true),
        (&app.root, &other_admin.id, true),
    ];
    for (token, target, allowed) in cases {
        for action in ["disable", "enable"] {
            let reply = app
                .post(token, &format!("/v1/staff/{target}/{action}"), json!({}))
                .await;
            if allowed {
                assert!(
                    reply.status == StatusCode::OK || reply.status == StatusCode::CONFLICT,
                    "{action} {target}: {:?}",
                    reply.body
                );
            } else {
                assert_eq!(
                    reply.status,
                    StatusCode::FORBIDDEN,
                    "{action} {target}: {:?}",
                    reply.body
                );
            }
        }
        let reply = app
            .call(
                Method::DELETE,
                &format!("/v1/staff/{target}"),
                Some(token),
                None,
                &[],
            )
            .await;
        assert_eq!(
            reply.status,
            if allowed {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            },
            "delete {target}: {:?}",
            reply.body
        );
    }
    let unknown = app
        .post(
            &admin.token,
            "/v1/staff/0192f000-0000-7000-8000-000000000009/disable",
            json!({}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let malformed = app
        .post(&admin.token, "/v1/staff/not-an-id/disable", json!({}))
        .await;
    assert_eq!(malformed.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn staff_details_are_corrected_by_whoever_manages_the_role() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let other_admin = app.admin().await;
    let agent = app.staff(&admin.token, "agent").await;
    let path = format!("/v1/staff/{}", agent.id);
    let patch = |token: &str, body: serde_json::Value| {
        let path = path.clone();
        let token = token.to_string();
        let app = &app;
        async move {
            app.call(Method::PATCH, &path, Some(&token), Some(body), &[])
                .await
        }
    };
    // Only an admin manages an agent: not the agent, not the root admin.
    for token in [agent.token.as_str(), app.root.as_str()] {
        let denied = patch(token, json!({"full_name": "Mallory"})).await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN, "{:?}", denied.body);
    }
    let bad = patch(
        &admin.token,
        json!({"email": "not-an-email", "full_name": ""}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = bad.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "full_name"]);
    let empty = patch(&admin.token, json!({})).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = patch(&admin.token, json!({"role": "admin"})).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);

    let changed = patch(
        &admin.token,
        json!({"email": "jane.q@bank.example", "full_name": "Jane Q. Agent"}),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.body);
    let view = app
        .get_when(&admin.token, &path, |b| b["full_name"] == "Jane Q. Agent")
        .await;
    assert_eq!(view.body["email"], "jane.q@bank.example");
    assert_eq!(view.body["username"], agent.username.as_str());
    let same = patch(&other_admin.token, json!({"email": "jane.q@bank.example"})).await;
    assert_eq!(same.status, StatusCode::CONFLICT);
    assert_eq!(same.problem_type(), "/problems/no-change");
    let log = app
        .get_when(
            &admin.token,
            "/v1/system-log?category=staff&limit=200",
            |b| {
                b["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["message"] == format!("Staff details changed: {}", agent.username))
            },
        )
        .await;
    assert_eq!(log.status, StatusCode::OK);
}

#[tokio::test]
async fn a_password_reset_lets_the_new_password_in_and_keeps_the_old_one_out() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let agent = app.staff(&admin.token, "agent").await;
    let auditor = app.staff(&admin.token, "auditor").await;
    let path = format!("/v1/staff/{}/password", agent.id);
    let fresh = "a-brand-new-passphrase-42";
    for token in [
        agent.token.as_str(),
        auditor.token.as_str(),
        app.root.as_str(),
    ] {
        let denied = app.post(token, &path, json!({"password": fresh})).await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN, "{:?}", denied.body);
    }
    // A short or common password is refused and nothing changes.
    for weak in ["short", "passwordpassword"] {
        let refused = app
            .post(&admin.token, &path, json!({"password": weak}))
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{weak}");
        assert_eq!(refused.body["errors"][0]["field"], "password");
    }
    app.login(&agent.username, PASSWORD).await;

    let reset = app
        .post(&admin.token, &path, json!({"password": fresh}))
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{:?}", reset.body);
    app.login(&agent.username, fresh).await;
    let old = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": agent.username, "password": PASSWORD})),
            &[],
        )
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    // The reset is on record, the password nowhere in it.
    let log = app
        .get_when(
            &admin.token,
            "/v1/system-log?category=staff&limit=200",
            |b| {
                b["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["message"] == format!("Staff password reset: {}", agent.username))
            },
        )
        .await;
    assert!(!log.body.to_string().contains(fresh));
    let events = app.app.store.stream("staff", &agent.id).await.unwrap();
    assert_eq!(events.last().unwrap().event_type, "StaffPasswordReset");
    assert!(!serde_json::to_string(&events.last().unwrap().payload)
        .unwrap()
        .contains(fresh));
    // A deleted member has no password to reset.
    app.call(
        Method::DELETE,
        &format!("/v1/staff/{}", agent.id),
        Some(&admin.token),
        None,
        &[],
    )
    .await;
    let gone = app
        .post(&admin.token, &path, json!({"password": fresh}))
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn staff_lists_sort_by_username_name_or_role_with_the_total() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for (username, name, role) in [
        ("zed", "Anna Zed", "agent"),
        ("amy", "Yara Amy", "auditor"),
        ("kim", "Max Kim", "agent"),
    ] {
        let mut body = staff_body(username, role);
        body["full_name"] = json!(name);
        assert_eq!(
            app.post(&admin.token, "/v1/staff", body).await.status,
            StatusCode::CREATED
        );
    }
    app.settled().await;
    let order = |sort: &'static str| {
        let (app, token) = (&app, admin.token.clone());
        async move {
            crate::support::walk(app, &token, &format!("/v1/staff?role=agent&sort={sort}"), 1)
                .await
                .iter()
                .map(|m| m["username"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let counted = app.get(&admin.token, "/v1/staff?role=agent&limit=1").await;
    assert_eq!(counted.body["total"], 2);
    assert_eq!(order("username").await, ["kim", "zed"]);
    assert_eq!(order("name").await, ["zed", "kim"]);
    let all = app.get(&admin.token, "/v1/staff?sort=role&limit=200").await;
    let roles: Vec<&str> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    let mut sorted = roles.clone();
    sorted.sort();
    assert_eq!(roles, sorted);
    let bad = app.get(&admin.token, "/v1/staff?sort=salary").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}
