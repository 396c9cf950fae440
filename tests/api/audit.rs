//! Auditors: streams with metadata, state as of a version or time, chain verification
//! that names each kind of tampering done directly to the store, and the logs.

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::sqlite::SqlitePool;

use crate::support::{eur, TestApp, PASSWORD};

#[tokio::test]
async fn streams_and_state_as_of_a_version_or_time() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let agent = app.staff(&admin.token, "agent").await;
    let auditor = app.staff(&admin.token, "auditor").await;
    let account = app.account_of(&agent, 100).await;
    app.post(
        &agent.token,
        &format!("/v1/accounts/{account}/deposits"),
        eur(50),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let between = chrono::Utc::now().to_rfc3339();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    app.post(
        &agent.token,
        &format!("/v1/accounts/{account}/withdrawals"),
        eur(30),
    )
    .await;

    let events = app
        .get(
            &auditor.token,
            &format!("/v1/audit/streams/account/{account}/events"),
        )
        .await;
    let items = events.body["items"].as_array().unwrap();
    let types: Vec<&str> = items
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["AccountOpened", "MoneyDeposited", "MoneyWithdrawn"]);
    let metadata = &items[1]["metadata"];
    assert_eq!(metadata["actor_id"], agent.id.as_str());
    assert_eq!(metadata["actor_role"], "agent");
    assert_eq!(metadata["previous_hash"], items[0]["metadata"]["hash"]);
    for field in ["correlation_id", "causation_id", "occurred_at", "hash"] {
        assert!(metadata[field].is_string(), "{field}");
    }

    // Read page by page from the cursor on (the store reads only that page).
    let first = app
        .get(
            &auditor.token,
            &format!("/v1/audit/streams/account/{account}/events?limit=2"),
        )
        .await;
    assert_eq!(first.body["items"], json!(items[..2]));
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let rest = app
        .get(
            &auditor.token,
            &format!("/v1/audit/streams/account/{account}/events?limit=2&cursor={cursor}"),
        )
        .await;
    assert_eq!(rest.body["items"], json!(items[2..]));
    assert!(rest.body["next_cursor"].is_null(), "{:?}", rest.body);
    for missing in [
        format!("/v1/audit/streams/account/{}/events", uuid::Uuid::now_v7()),
        format!("/v1/audit/streams/account/{}/state", uuid::Uuid::now_v7()),
        format!("/v1/audit/streams/account/{account}/state?version=0"),
    ] {
        let answer = app.get(&auditor.token, &missing).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{missing}");
    }

    let at_two = app
        .get(
            &auditor.token,
            &format!("/v1/audit/streams/account/{account}/state?version=2"),
        )
        .await;
    assert_eq!(at_two.body["state"]["balance"]["amount_minor"], 150);
    assert_eq!(at_two.body["version"], 2);
    let query = format!(
        "/v1/audit/streams/account/{account}/state?as_of={}",
        urlencode(&between)
    );
    let then = app.get(&auditor.token, &query).await;
    assert_eq!(then.status, StatusCode::OK, "{:?}", then.body);
    assert_eq!(then.body["state"]["balance"]["amount_minor"], 150);
    let now = app
        .get(
            &auditor.token,
            &format!("/v1/audit/streams/account/{account}/state"),
        )
        .await;
    assert_eq!(now.body["state"]["balance"]["amount_minor"], 120);
    assert_eq!(
        app.get(
            &auditor.token,
            &format!("/v1/audit/streams/account/{account}/state?version=9")
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(
            &auditor.token,
            &format!("/v1/audit/streams/planet/{account}/events")
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    app.settled().await;
    let log = app
        .get(&auditor.token, &format!("/v1/audit/log?actor={}", agent.id))
        .await;
    let logged: Vec<&str> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert!(
        logged.starts_with(&["MoneyWithdrawn", "MoneyDeposited", "AccountOpened"]),
        "{logged:?}"
    );
    // Each entry names its actor by username too, and the actor may be asked for by it.
    assert!(log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor_username"] == agent.username.as_str()));
    let by_name = app
        .get(
            &auditor.token,
            &format!("/v1/audit/log?actor={}", agent.username),
        )
        .await;
    assert_eq!(by_name.body["items"], log.body["items"]);
    let no_one = app
        .get(&auditor.token, "/v1/audit/log?actor=no-such-person")
        .await;
    assert_eq!(no_one.body["items"], json!([]));
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

/// Four accounts with four events each, for four kinds of tampering.
async fn tampered_store() -> (TestApp, String, Vec<String>) {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let agent = app.staff(&admin.token, "agent").await;
    let auditor = app.staff(&admin.token, "auditor").await;
    let accounts = app.accounts_with_deposits(&agent, 4, 3).await;
    let clean = app.get(&auditor.token, "/v1/audit/verify").await;
    assert_eq!(clean.body["ok"], true, "{:?}", clean.body);
    assert!(clean.body["events_checked"].as_u64().unwrap() >= 16);
    (app, auditor.token, accounts)
}

/// A pool on one of the app's SQLite files (`ledger.db`, `system-log.db`), to read or
/// alter it as a database administrator would.
async fn data_file(app: &TestApp, name: &str) -> SqlitePool {
    SqlitePool::connect(&format!("sqlite://{}", app.dir.path().join(name).display()))
        .await
        .unwrap()
}

/// Asks for a whole-store verification run as `auditor` and follows it to its end.
async fn verification_run(app: &TestApp, auditor: &str) -> Value {
    let started = app
        .post(auditor, "/v1/audit/verifications", json!({}))
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{:?}", started.body);
    let location = started.headers["location"].to_str().unwrap().to_string();
    assert_eq!(
        location,
        format!("/v1/audit/verifications/{}", started.id())
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let run = app.get(auditor, &location).await;
        assert_eq!(run.status, StatusCode::OK, "{:?}", run.body);
        if run.body["status"] == "done" {
            return run.body;
        }
        assert!(std::time::Instant::now() < deadline, "{:?}", run.body);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn verification_runs_are_for_auditors_and_check_every_stream() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let agent = app.staff(&admin.token, "agent").await;
    let auditor = app.staff(&admin.token, "auditor").await;
    let worker = app.worker().await;
    for _ in 0..3 {
        let account = app.account_of(&agent, 100).await;
        app.post(
            &agent.token,
            &format!("/v1/accounts/{account}/deposits"),
            eur(10),
        )
        .await;
    }
    for token in [&agent.token, &admin.token, &app.root, &worker] {
        let refused = app.post(token, "/v1/audit/verifications", json!({})).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    }
    assert!(
        app.get(&auditor.token, "/v1/audit/verifications")
            .await
            .body["items"]
            .as_array()
            .unwrap()
            .is_empty(),
        "a refused request queues nothing"
    );

    // The run, taken in steps of five events here, checks what one pass checks.
    let pass = app.get(&auditor.token, "/v1/audit/verify").await.body;
    let run = verification_run(&app, &auditor.token).await;
    assert_eq!(run["ok"], true, "{run:?}");
    assert_eq!(run["requested_by"], auditor.id.as_str());
    assert_eq!(run["events_checked"], pass["events_checked"]);
    assert_eq!(run["streams_checked"], pass["streams_checked"]);
    assert!(run["events_checked"].as_u64().unwrap() > 5, "several steps");
    for token in [&agent.token, &admin.token, &app.root, &worker] {
        let path = format!("/v1/audit/verifications/{}", run["id"].as_str().unwrap());
        assert_eq!(app.get(token, &path).await.status, StatusCode::FORBIDDEN);
    }
    // Admins see its outcome in the system log.
    let logged = app
        .get(&admin.token, "/v1/system-log?category=integrity")
        .await;
    let entry = &logged.body["items"][0];
    assert_eq!(entry["actor_id"], auditor.id.as_str());
    assert!(
        entry["message"].as_str().unwrap().contains("intact"),
        "{entry:?}"
    );

    // Done, it leaves room for the next; the list is newest first.
    let second = verification_run(&app, &auditor.token).await;
    assert_ne!(second["id"], run["id"]);
    let list = app
        .get(&auditor.token, "/v1/audit/verifications?limit=1")
        .await;
    assert_eq!(list.body["items"][0]["id"], second["id"]);
    let cursor = list.body["next_cursor"].as_str().unwrap();
    let older = app
        .get(
            &auditor.token,
            &format!("/v1/audit/verifications?limit=1&cursor={cursor}"),
        )
        .await;
    assert_eq!(older.body["items"][0]["id"], run["id"]);
    let garbage = app
        .get(&auditor.token, "/v1/audit/verifications?cursor=not-ours")
        .await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    let unknown = app
        .get(&auditor.token, "/v1/audit/verifications/no-such-run")
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.is_problem());

    // One at a time: while a run is held (here by another server, whose lease runs
    // for an hour), asking again gets that run, not a new one.
    let log = data_file(&app, "system-log.db").await;
    let in_an_hour = chrono::Utc::now().timestamp_millis() + 3_600_000;
    sqlx::query(
        "INSERT INTO verification_runs (id, requested_by, requested_at, status, active, \
         lease_owner, lease_until) VALUES ('elsewhere', $1, $2, 'running', 1, 'other-server', $3)",
    )
    .bind(&auditor.id)
    .bind(chrono::Utc::now().to_rfc3339())
    .bind(in_an_hour)
    .execute(&log)
    .await
    .unwrap();
    let again = app
        .post(&auditor.token, "/v1/audit/verifications", json!({}))
        .await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(again.id(), "elsewhere");
    assert_eq!(
        again.headers["location"],
        "/v1/audit/verifications/elsewhere"
    );
}

/// A step that outlasts the lease keeps its run: the worker renews the lease while the
/// step runs (here one stream of 80,000 events, checked in one step: seconds in a debug
/// build), so another worker looking for runs all the while never takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_longer_than_the_lease_keeps_its_run() {
    // Renewed every 200 ms: 400 ms of slack for a renewal held up on a busy machine.
    let lease = std::time::Duration::from_millis(600);
    let app = TestApp::spawn_configured(tempfile::tempdir().unwrap(), |config| {
        config.verification_pace = query_api::verifier::Pace {
            lease,
            step_events: usize::MAX,
            idle: std::time::Duration::from_millis(100),
        }
    })
    .await;
    let admin = app.admin().await;
    let agent = app.staff(&admin.token, "agent").await;
    let auditor = app.staff(&admin.token, "auditor").await;
    let account = app.account_of(&agent, 100).await;
    // Copies of the account's opening after its last event: each breaks the chain, and
    // each is hashed all the same.
    let ledger = data_file(&app, "ledger.db").await;
    sqlx::query(
        "WITH RECURSIVE account(id) AS (SELECT $1), \
         n(i) AS (SELECT MAX(sequence) + 1 FROM events, account WHERE aggregate_id = account.id \
                  UNION ALL SELECT i + 1 FROM n LIMIT 80000) \
         INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         SELECT e.aggregate_type, e.aggregate_id, n.i, e.event_type, e.event_version, e.payload, e.metadata \
         FROM n, events e, account WHERE e.aggregate_id = account.id AND e.sequence = 1",
    )
    .bind(&account)
    .execute(&ledger)
    .await
    .unwrap();
    let elsewhere = projections::SystemLog::open(&projections::sqlite_url(
        &app.dir.path().join("system-log.db"),
    ))
    .await
    .unwrap()
    .verification_runs();

    let started = app
        .post(&auditor.token, "/v1/audit/verifications", json!({}))
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{:?}", started.body);
    let location = format!("/v1/audit/verifications/{}", started.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut tries = 0;
    let run = loop {
        let run = app.get(&auditor.token, &location).await.body;
        if run["status"] == "done" {
            break run;
        }
        if run["status"] == "running" {
            let taken = elsewhere.claim("another-worker", lease).await.unwrap();
            assert!(taken.is_none(), "taken while its worker was at it: {run:?}");
            tries += 1;
        }
        assert!(std::time::Instant::now() < deadline, "{run:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let at =
        |field: &str| chrono::DateTime::parse_from_rfc3339(run[field].as_str().unwrap()).unwrap();
    let took = (at("finished_at") - at("started_at")).to_std().unwrap();
    println!(
        "one step of {} events took {took:?}; {tries} tries to take it",
        run["events_checked"]
    );
    // Else the lease never had to be renewed, and this test proves nothing.
    assert!(took > 2 * lease, "the step took only {took:?}");
    assert!(tries > 2, "{tries}");
    assert!(run["events_checked"].as_u64().unwrap() > 80_000, "{run:?}");
    assert_eq!(run["ok"], false, "the copies break the chain: {run:?}");
}

/// A run whose steps keep failing (here a saved position no build could read, as an
/// older build might have left) is tried three times, then ends as failed, is logged,
/// and no longer blocks a new run.
#[tokio::test]
async fn a_verification_run_that_cannot_go_on_ends_as_failed() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let auditor = app.staff(&admin.token, "auditor").await;
    let log = data_file(&app, "system-log.db").await;
    sqlx::query(
        "INSERT INTO verification_runs (id, requested_by, requested_at, status, active, \
         lease_owner, lease_until, resume_at) \
         VALUES ('stuck', $1, '2026-01-01T00:00:00.000000Z', 'running', 1, 'gone', 0, '{\"kind\":2}')",
    )
    .bind(&auditor.id)
    .execute(&log)
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let failed = loop {
        let run = app
            .get(&auditor.token, "/v1/audit/verifications/stuck")
            .await;
        if run.body["status"] == "failed" {
            break run.body;
        }
        assert!(std::time::Instant::now() < deadline, "{:?}", run.body);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(failed["ok"], Value::Null);
    assert!(
        failed["error"].as_str().unwrap().contains("saved position"),
        "{failed:?}"
    );
    // The run is marked failed first, then the system log says so: wait for the entry.
    let message = loop {
        let logged = app
            .get(
                &admin.token,
                "/v1/system-log?category=integrity&level=error",
            )
            .await;
        if let Some(message) = logged.body["items"][0]["message"].as_str() {
            break message.to_string();
        }
        assert!(std::time::Instant::now() < deadline, "{:?}", logged.body);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(message.contains("could not finish"), "{message}");
    let run = verification_run(&app, &auditor.token).await;
    assert_eq!(run["ok"], true, "{run:?}");
}

#[tokio::test]
async fn verification_names_each_kind_of_tampering() {
    let (app, auditor, accounts) = tampered_store().await;
    let db = data_file(&app, "ledger.db").await;
    let run = |sql: &'static str, id: String| {
        let db = db.clone();
        async move { sqlx::query(sql).bind(id).execute(&db).await.unwrap() }
    };
    // Modified: a deposit made larger.
    run("UPDATE events SET payload = replace(payload, '\"amount_minor\":10,', '\"amount_minor\":9000,') WHERE aggregate_id = $1 AND sequence = 2", accounts[0].clone()).await;
    // Deleted: the second event removed.
    run(
        "DELETE FROM events WHERE aggregate_id = $1 AND sequence = 2",
        accounts[1].clone(),
    )
    .await;
    // Inserted: a forged copy of event 3 put before it, the rest renumbered.
    run(
        "UPDATE events SET sequence = sequence + 1000 WHERE aggregate_id = $1 AND sequence >= 3",
        accounts[2].clone(),
    )
    .await;
    run(
        "UPDATE events SET sequence = sequence - 999 WHERE aggregate_id = $1 AND sequence >= 1000",
        accounts[2].clone(),
    )
    .await;
    run(
        "INSERT INTO events SELECT aggregate_type, aggregate_id, 3, event_type, event_version, \
         replace(payload, '\"amount_minor\":10,', '\"amount_minor\":5000,'), metadata FROM events WHERE aggregate_id = $1 AND sequence = 4",
        accounts[2].clone(),
    )
    .await;
    // Reordered: events 2 and 3 swapped.
    run(
        "UPDATE events SET sequence = 99 WHERE aggregate_id = $1 AND sequence = 2",
        accounts[3].clone(),
    )
    .await;
    run(
        "UPDATE events SET sequence = 2 WHERE aggregate_id = $1 AND sequence = 3",
        accounts[3].clone(),
    )
    .await;
    run(
        "UPDATE events SET sequence = 3 WHERE aggregate_id = $1 AND sequence = 99",
        accounts[3].clone(),
    )
    .await;

    let report = app.get(&auditor, "/v1/audit/verify").await;
    assert_eq!(report.body["ok"], false);
    // A verification run, in steps, names the same failures in the same order.
    let run = verification_run(&app, &auditor).await;
    assert_eq!(run["ok"], false);
    assert_eq!(run["failures"], report.body["failures"]);
    assert_eq!(
        run["failure_count"].as_u64().unwrap() as usize,
        report.body["failures"].as_array().unwrap().len()
    );
    assert_eq!(run["events_checked"], report.body["events_checked"]);
    let failures = report.body["failures"].as_array().unwrap();
    let problems = |account: &str| -> Vec<(u64, String)> {
        failures
            .iter()
            .filter(|f| f["aggregate_id"] == account)
            .map(|f| {
                (
                    f["sequence"].as_u64().unwrap(),
                    f["problem"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(problems(&accounts[0]), [(2, "hash_mismatch".to_string())]);
    assert!(
        problems(&accounts[1]).contains(&(3, "sequence_gap".to_string())),
        "{:?}",
        problems(&accounts[1])
    );
    assert!(problems(&accounts[1]).contains(&(3, "broken_link".to_string())));
    assert!(
        problems(&accounts[2]).contains(&(3, "hash_mismatch".to_string())),
        "{:?}",
        problems(&accounts[2])
    );
    assert!(problems(&accounts[2])
        .iter()
        .any(|(s, p)| *s == 4 && p == "broken_link"));
    assert!(
        problems(&accounts[3])
            .iter()
            .any(|(s, p)| *s == 2 && p == "broken_link"),
        "{:?}",
        problems(&accounts[3])
    );
    assert!(problems(&accounts[3])
        .iter()
        .any(|(s, p)| *s == 2 && p == "hash_mismatch"));

    let one = app
        .get(
            &auditor,
            &format!("/v1/audit/verify?aggregate_type=account&id={}", accounts[0]),
        )
        .await;
    assert_eq!(one.body["streams_checked"], 1);
    assert_eq!(one.body["failures"].as_array().unwrap().len(), 1);
    let half = app
        .get(&auditor, "/v1/audit/verify?aggregate_type=account")
        .await;
    assert_eq!(half.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_system_log_records_sign_ins_denials_and_staff_changes() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let agent = app.staff(&admin.token, "agent").await;
    let failed = app
        .call(
            reqwest::Method::POST,
            "/auth/login",
            None,
            Some(json!({"username": agent.username, "password": "wrong-password!"})),
            &[],
        )
        .await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get(&agent.token, "/v1/system-log").await.status,
        StatusCode::FORBIDDEN
    );
    let _ = app.login(&agent.username, PASSWORD).await;
    app.settled().await;

    let categories = |category: &'static str| {
        let app = &app;
        let token = admin.token.clone();
        async move {
            app.get(&token, &format!("/v1/system-log?category={category}"))
                .await
                .body["items"]
                .as_array()
                .unwrap()
                .clone()
        }
    };
    // The staff list tells when each last signed in.
    let staff_list = app.get(&admin.token, "/v1/staff?limit=200").await.body;
    let listed = staff_list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == agent.id.as_str())
        .cloned()
        .unwrap();
    assert!(
        listed["last_sign_in_at"]
            .as_str()
            .is_some_and(|t| t.starts_with("20")),
        "{listed}"
    );
    let sign_ins = categories("sign-in").await;
    assert!(sign_ins
        .iter()
        .any(|e| e["actor_id"] == agent.id.as_str()
            && e["actor_username"] == agent.username.as_str()));
    // The actor by username: the agent's entries only.
    let by_name = app
        .get(
            &admin.token,
            &format!("/v1/system-log?actor={}", agent.username),
        )
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .clone();
    assert!(!by_name.is_empty());
    assert!(by_name.iter().all(|e| e["actor_id"] == agent.id.as_str()));
    let no_one = app
        .get(&admin.token, "/v1/system-log?actor=no-such-person")
        .await;
    assert_eq!(no_one.body["items"], json!([]));
    let failures = categories("sign-in-failed").await;
    assert!(failures
        .iter()
        .any(|e| e["message"].as_str().unwrap().contains(&agent.username)));
    let denied = categories("denied").await;
    assert!(denied.iter().any(|e| e["actor_id"] == agent.id.as_str()
        && e["message"].as_str().unwrap().contains("/v1/system-log")));
    let staff = crate::support::eventually(|| async {
        let entries = categories("staff").await;
        entries
            .iter()
            .any(|e| {
                e["message"].as_str().unwrap()
                    == format!("Staff created: {} (agent)", agent.username)
            })
            .then_some(entries)
    })
    .await;
    assert!(staff.iter().all(|e| e["level"] == "info"));
    let warnings = app
        .get(&admin.token, "/v1/system-log?level=warn&limit=1")
        .await;
    assert_eq!(warnings.body["items"].as_array().unwrap().len(), 1);
    assert!(warnings.body["next_cursor"].is_string());
}

#[tokio::test]
async fn a_rebuild_gives_identical_read_models_while_serving() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let agent = app.staff(&admin.token, "agent").await;
    let auditor = app.staff(&admin.token, "auditor").await;
    let from = app.account_of(&agent, 500).await;
    let to = app.account_of(&agent, 0).await;
    app.post(&agent.token, "/v1/transfers", json!({"from_account_id": from, "to_account_id": to, "amount": {"amount_minor": 120, "currency": "EUR"}})).await;
    app.post(
        &agent.token,
        &format!("/v1/accounts/{to}/freeze"),
        json!({}),
    )
    .await;
    app.settled().await;

    let paths = [
        "/v1/clients?limit=200".to_string(),
        format!("/v1/accounts/{from}"),
        format!("/v1/accounts/{to}"),
        format!("/v1/accounts/{from}/transactions"),
        format!("/v1/accounts/{to}/transactions"),
        "/v1/audit/log?limit=200".to_string(),
    ];
    let snapshot = || async {
        let mut bodies = Vec::new();
        for path in &paths {
            bodies.push(app.get(&auditor.token, path).await.body);
        }
        bodies.push(app.get(&admin.token, "/v1/staff?limit=200").await.body);
        bodies
    };
    let before = snapshot().await;
    let rebuilt = app.post(&admin.token, "/v1/admin/rebuild", json!({})).await;
    assert_eq!(rebuilt.status, StatusCode::OK, "{:?}", rebuilt.body);
    assert_eq!(snapshot().await, before);

    // The rebuilt copy keeps following the store.
    app.post(
        &agent.token,
        &format!("/v1/accounts/{from}/deposits"),
        eur(1),
    )
    .await;
    let view = app
        .get_when(&agent.token, &format!("/v1/accounts/{from}"), |b| {
            b["balance"]["amount_minor"] == 381
        })
        .await;
    assert_eq!(view.status, StatusCode::OK);
}
