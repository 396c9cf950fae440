//! The verifiable ledger: digests of the Merkle log signed and published, proofs that
//! verify against them outside the server, and the check (the API's, and the offline
//! verifier's over an export) naming each kind of tampering a database administrator
//! could do with SQL.

use base64::Engine;
use cqrs_es::persist::SerializedEvent;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::sqlite::SqlitePool;

use crate::support::TestApp;

/// A store with four accounts of four events each, and a digest signed over it.
struct Signed {
    app: TestApp,
    auditor: String,
    auditor_name: String,
    accounts: Vec<String>,
    digest: Value,
}

async fn signed_store() -> Signed {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let agent = app.staff(&admin.token, "agent").await;
    let auditor = app.staff(&admin.token, "auditor").await;
    let accounts = app.accounts_with_deposits(&agent, 4, 3).await;
    let issued = app
        .post(&auditor.token, "/v1/audit/digests", json!({}))
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{:?}", issued.body);
    let clean = app.get(&auditor.token, "/v1/audit/ledger/verify").await;
    assert_eq!(clean.status, StatusCode::OK);
    assert_eq!(clean.body["ok"], true, "{:?}", clean.body);
    let signed = Signed {
        app,
        auditor: auditor.token,
        auditor_name: auditor.username,
        accounts,
        digest: issued.body,
    };
    let offline = signed.offline_check().await;
    assert!(offline.ok, "{:?}", offline.problems);
    signed
}

impl Signed {
    async fn db(&self) -> SqlitePool {
        SqlitePool::connect(&format!(
            "sqlite://{}",
            self.app.dir.path().join("ledger.db").display()
        ))
        .await
        .unwrap()
    }

    async fn sql(&self, sql: &str) {
        sqlx::query(sql).execute(&self.db().await).await.unwrap();
    }

    /// The place in commit order (rowid) of an account's event.
    async fn rowid(&self, account: usize, sequence: i64) -> i64 {
        let (rowid,): (i64,) =
            sqlx::query_as("SELECT rowid FROM events WHERE aggregate_id = $1 AND sequence = $2")
                .bind(&self.accounts[account])
                .bind(sequence)
                .fetch_one(&self.db().await)
                .await
                .unwrap();
        rowid
    }

    /// The API's check.
    async fn online_check(&self) -> Value {
        let report = self.app.get(&self.auditor, "/v1/audit/ledger/verify").await;
        assert_eq!(report.status, StatusCode::OK, "{:?}", report.body);
        report.body
    }

    /// The offline verifier over a fresh export, with the public key from the API and
    /// the digest file as published.
    async fn offline_check(&self) -> proofs::Report {
        let work = tempfile::tempdir().unwrap();
        let export = work.path().join("export");
        let store = event_store::SqliteStore::open(&self.app.dir.path().join("ledger.db"))
            .await
            .unwrap();
        proofs::export::export(&store, &export).await.unwrap();
        store.pool().close().await;
        let keys = self.app.get(&self.auditor, "/v1/audit/digest-keys").await;
        let pem = keys.body[0]["public_key_pem"].as_str().unwrap();
        let key = work.path().join("key.pub.pem");
        std::fs::write(&key, pem).unwrap();
        let public = proofs::keys::load_public(&key).unwrap();
        let digest_file = self.app.keys.path().join("digests.jsonl");
        let text = std::fs::read_to_string(&digest_file).unwrap();
        let digests = proofs::digest_file::parse(&digest_file, &text).unwrap();
        proofs::export::verify(&export, &digests, &[public].into_iter().collect()).unwrap()
    }

    /// Both checks fail, and each names `wanted` (problems as JSON, matched on the
    /// fields given).
    async fn both_name(&self, wanted: &[Value]) {
        let online = self.online_check().await;
        assert_eq!(online["ok"], false);
        let offline = serde_json::to_value(self.offline_check().await).unwrap();
        assert_eq!(offline["ok"], false);
        for (name, report) in [("API", &online), ("offline", &offline)] {
            let problems = report["problems"].as_array().unwrap();
            for want in wanted {
                assert!(
                    problems.iter().any(|p| contains(p, want)),
                    "the {name} check does not name {want}: {problems:#?}"
                );
            }
        }
    }
}

/// Whether `value` has every field of `want` with the same value.
fn contains(value: &Value, want: &Value) -> bool {
    want.as_object()
        .unwrap()
        .iter()
        .all(|(key, expected)| &value[key] == expected)
}

#[tokio::test]
async fn a_payload_changed_with_its_chain_hashes_recomputed_is_named() {
    let signed = signed_store().await;
    let db = signed.db().await;
    let account = &signed.accounts[0];
    // The forger rewrites deposit #2 and reseals #2..#4 so the chain holds again.
    let rows: Vec<(String, i64, String, String, String, String)> = sqlx::query_as(
        "SELECT aggregate_id, sequence, event_type, event_version, payload, metadata FROM events \
         WHERE aggregate_id = $1 ORDER BY sequence",
    )
    .bind(account)
    .fetch_all(&db)
    .await
    .unwrap();
    let mut previous = serde_json::from_str::<Value>(&rows[0].5).unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_string();
    for (id, sequence, event_type, version, payload, metadata) in &rows[1..] {
        let mut payload = payload.clone();
        if *sequence == 2 {
            let changed = payload.replace("\"amount_minor\":10,", "\"amount_minor\":9000,");
            assert_ne!(changed, payload);
            payload = changed;
        }
        let payload: Value = serde_json::from_str(&payload).unwrap();
        let mut event = SerializedEvent::new(
            id.clone(),
            *sequence as usize,
            "account".into(),
            event_type.clone(),
            version.clone(),
            payload,
            serde_json::from_str(metadata).unwrap(),
        );
        domain::chain::seal(&mut event, &previous);
        previous = event.metadata["hash"].as_str().unwrap().to_string();
        sqlx::query("UPDATE events SET payload = $1, metadata = $2 WHERE aggregate_id = $3 AND sequence = $4")
            .bind(event.payload.to_string())
            .bind(event.metadata.to_string())
            .bind(id)
            .bind(sequence)
            .execute(&db)
            .await
            .unwrap();
    }
    // The chains alone no longer see it.
    let chains = signed.app.get(&signed.auditor, "/v1/audit/verify").await;
    assert_eq!(chains.body["ok"], true, "{:?}", chains.body);
    let mut wanted = Vec::new();
    for sequence in 2..=4 {
        wanted.push(
            json!({"problem": "event_changed", "aggregate_id": account, "sequence": sequence,
            "leaf": signed.rowid(0, sequence).await - 1}),
        );
    }
    wanted.push(json!({"problem": "digest_root_mismatch", "sequence": 0}));
    signed.both_name(&wanted).await;
}

#[tokio::test]
async fn a_whole_stream_deleted_is_named_by_its_places() {
    let signed = signed_store().await;
    let mut places = Vec::new();
    for sequence in 1..=4 {
        places.push(signed.rowid(1, sequence).await - 1);
    }
    signed
        .sql(&format!(
            "DELETE FROM events WHERE aggregate_id = '{}'",
            signed.accounts[1]
        ))
        .await;
    // Named as the runs of places the stream's events held.
    let mut wanted: Vec<Value> = Vec::new();
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for place in places {
        match runs.last_mut() {
            Some(run) if run.1 + 1 == place => run.1 = place,
            _ => runs.push((place, place)),
        }
    }
    for (from, to) in runs {
        wanted.push(json!({"problem": "events_missing", "from": from, "to": to}));
    }
    wanted.push(json!({"problem": "digest_root_mismatch", "sequence": 0}));
    signed.both_name(&wanted).await;
}

#[tokio::test]
async fn history_cut_short_log_and_all_is_named_against_the_digest() {
    let signed = signed_store().await;
    let size = signed.digest["tree_size"].as_i64().unwrap();
    // The last three events gone, and the log cut to match, as a careful forger would.
    signed
        .sql(&format!("DELETE FROM events WHERE rowid > {}", size - 3))
        .await;
    signed
        .sql(&format!("UPDATE merkle_log SET size = {}", size - 3))
        .await;
    signed
        .sql(&format!(
            "DELETE FROM merkle_nodes WHERE idx >= {}",
            2 * (size - 3)
        ))
        .await;
    signed
        .both_name(&[json!({"problem": "history_truncated", "sequence": 0, "tree_size": size, "events": size - 3})])
        .await;
    // And the notary refuses to sign over it.
    let refused = signed
        .app
        .post(&signed.auditor, "/v1/audit/digests", json!({}))
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{:?}", refused.body);
    assert_eq!(refused.problem_type(), "/problems/history-altered");
}

#[tokio::test]
async fn two_events_swapped_in_commit_order_are_both_named() {
    let signed = signed_store().await;
    let (a, b) = (signed.rowid(2, 2).await, signed.rowid(3, 3).await);
    signed
        .sql(&format!("UPDATE events SET rowid = -1 WHERE rowid = {a}"))
        .await;
    signed
        .sql(&format!("UPDATE events SET rowid = {a} WHERE rowid = {b}"))
        .await;
    signed
        .sql(&format!("UPDATE events SET rowid = {b} WHERE rowid = -1"))
        .await;
    signed
        .both_name(&[
            json!({"problem": "event_changed", "leaf": a - 1, "aggregate_id": signed.accounts[3], "sequence": 3}),
            json!({"problem": "event_changed", "leaf": b - 1, "aggregate_id": signed.accounts[2], "sequence": 2}),
            json!({"problem": "digest_root_mismatch", "sequence": 0}),
        ])
        .await;
}

#[tokio::test]
async fn a_digest_edited_or_taken_out_of_the_file_is_named() {
    let signed = signed_store().await;
    // Two more digests, so one can go missing from the middle.
    for _ in 0..2 {
        signed
            .app
            .post(
                &signed.app.admin().await.token,
                "/v1/audit/digests",
                json!({}),
            )
            .await;
    }
    let path = signed.app.keys.path().join("digests.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    // The first claims a bigger tree; the second is gone.
    let mut first: Value = serde_json::from_str(lines[0]).unwrap();
    first["tree_size"] = json!(first["tree_size"].as_u64().unwrap() + 1);
    std::fs::write(&path, format!("{first}\n{}\n", lines[2])).unwrap();
    signed
        .both_name(&[
            json!({"problem": "digest_invalid", "sequence": 0}),
            json!({"problem": "digest_missing", "after": 0, "before": 2}),
        ])
        .await;
}

#[tokio::test]
async fn digests_are_signed_published_and_proofs_verify_against_them() {
    let signed = signed_store().await;
    let app = &signed.app;
    let auditor = &signed.auditor;
    let digest = &signed.digest;
    assert_eq!(digest["format"], "ledgerline-digest-v1");
    assert_eq!(digest["sequence"], 0);
    assert_eq!(
        app.get(auditor, "/v1/audit/digests/latest").await.body,
        *digest
    );
    let listed = app.get(auditor, "/v1/audit/digests").await;
    assert_eq!(listed.body["items"], json!([digest]));

    // The signature, checked here with the public key and the documented lines.
    let keys = app.get(auditor, "/v1/audit/digest-keys").await;
    assert_eq!(keys.body[0]["current"], true);
    assert_eq!(keys.body[0]["key_id"], digest["key_id"]);
    let pem = keys.body[0]["public_key_pem"].as_str().unwrap();
    use ed25519_dalek::pkcs8::DecodePublicKey;
    let key = ed25519_dalek::VerifyingKey::from_public_key_pem(pem).unwrap();
    let signed_lines = format!(
        "ledgerline-digest-v1\nsequence 0\ntree_size {}\nroot_hash {}\nissued_at {}\nkey_id {}\nprevious {}\n",
        digest["tree_size"], s(&digest["root_hash"]), s(&digest["issued_at"]), s(&digest["key_id"]), "0".repeat(64)
    );
    let signature = base64::engine::general_purpose::STANDARD
        .decode(s(&digest["signature"]))
        .unwrap();
    key.verify_strict(
        signed_lines.as_bytes(),
        &ed25519_dalek::Signature::from_slice(&signature).unwrap(),
    )
    .unwrap();

    // Published in the system log too.
    let admin = app.admin().await;
    let logged = app
        .get(&admin.token, "/v1/system-log?category=ledger")
        .await;
    assert!(
        logged.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["message"] == "ledger digest signed"
                && serde_json::from_str::<Value>(s(&e["details"])).unwrap() == *digest),
        "{:?}",
        logged.body
    );

    // An event's inclusion in the digest's tree, checked against the digest's root.
    let account = &signed.accounts[2];
    let events = app
        .get(
            auditor,
            &format!("/v1/audit/streams/account/{account}/events"),
        )
        .await;
    let stored_hash = s(&events.body["items"][1]["metadata"]["hash"]).to_string();
    let proof = app
        .get(
            auditor,
            &format!("/v1/audit/proofs/inclusion?aggregate_type=account&id={account}&sequence=2"),
        )
        .await;
    assert_eq!(proof.status, StatusCode::OK, "{:?}", proof.body);
    assert_eq!(proof.body["tree_size"], digest["tree_size"]);
    assert_eq!(proof.body["root_hash"], digest["root_hash"]);
    let value = hex::decode(s(&proof.body["leaf_value"])).unwrap();
    assert_eq!(hex::encode(&value[32..]), stored_hash);
    let root = hash_of(&digest["root_hash"]);
    let path: Vec<[u8; 32]> = proof.body["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(hash_of)
        .collect();
    let size = digest["tree_size"].as_u64().unwrap();
    let leaf = proof.body["leaf_index"].as_u64().unwrap();
    domain::merkle::verify_inclusion(&root, size, leaf, &value, &path).unwrap();

    // History grows; a second digest; the later tree extends the earlier one.
    let admin_digest = {
        let agent = app.agent().await;
        app.account_of(&agent, 5).await;
        app.post(&admin.token, "/v1/audit/digests", json!({})).await
    };
    assert_eq!(admin_digest.status, StatusCode::CREATED);
    assert_eq!(admin_digest.body["sequence"], 1);
    let later = admin_digest.body["tree_size"].as_u64().unwrap();
    assert!(later > size);
    let consistency = app
        .get(
            auditor,
            &format!("/v1/audit/proofs/consistency?from={size}&to={later}"),
        )
        .await;
    assert_eq!(consistency.status, StatusCode::OK, "{:?}", consistency.body);
    let path: Vec<[u8; 32]> = consistency.body["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(hash_of)
        .collect();
    domain::merkle::verify_consistency(
        &root,
        size,
        &hash_of(&admin_digest.body["root_hash"]),
        later,
        &path,
    )
    .unwrap();

    // What cannot be proved is refused, each with its reason.
    let bad = [
        ("/v1/audit/proofs/inclusion?aggregate_type=account&id=x&sequence=0".to_string(), StatusCode::BAD_REQUEST),
        (format!("/v1/audit/proofs/inclusion?aggregate_type=account&id={account}&sequence=99"), StatusCode::NOT_FOUND),
        (format!("/v1/audit/proofs/inclusion?aggregate_type=account&id={account}&sequence=2&tree_size=999999"), StatusCode::NOT_FOUND),
        (format!("/v1/audit/proofs/inclusion?aggregate_type=account&id={account}&sequence=2&tree_size=1"), StatusCode::CONFLICT),
        (format!("/v1/audit/proofs/inclusion?aggregate_type=planet&id={account}&sequence=2"), StatusCode::NOT_FOUND),
        (format!("/v1/audit/proofs/consistency?from={later}&to={size}"), StatusCode::BAD_REQUEST),
        ("/v1/audit/proofs/consistency?from=0".to_string(), StatusCode::BAD_REQUEST),
        ("/v1/audit/proofs/consistency?from=abc".to_string(), StatusCode::BAD_REQUEST),
        ("/v1/audit/proofs/consistency?from=1&to=999999".to_string(), StatusCode::NOT_FOUND),
        ("/v1/audit/digests?cursor=garbage".to_string(), StatusCode::BAD_REQUEST),
    ];
    for (path, status) in bad {
        let answer = app.get(auditor, &path).await;
        assert_eq!(answer.status, status, "{path}: {:?}", answer.body);
        assert!(answer.is_problem(), "{path}");
    }
}

#[tokio::test]
async fn only_auditors_read_digests_and_proofs_and_auditors_and_admins_sign() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let agent = app.staff(&admin.token, "agent").await;
    let auditor = app.staff(&admin.token, "auditor").await;
    let worker = app.worker().await;
    // No digest yet.
    let none = app.get(&auditor.token, "/v1/audit/digests/latest").await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    for token in [&agent.token, &worker] {
        let denied = app.post(token, "/v1/audit/digests", json!({})).await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN, "{:?}", denied.body);
    }
    for token in [&app.root, &admin.token, &auditor.token] {
        let signed = app.post(token, "/v1/audit/digests", json!({})).await;
        assert_eq!(signed.status, StatusCode::CREATED, "{:?}", signed.body);
    }
    let reads = [
        "/v1/audit/digests/latest",
        "/v1/audit/digests",
        "/v1/audit/digest-keys",
        "/v1/audit/proofs/consistency?from=1",
        "/v1/audit/ledger/verify",
    ];
    for path in reads {
        for token in [&app.root, &admin.token, &agent.token, &worker] {
            let denied = app.get(token, path).await;
            assert_eq!(denied.status, StatusCode::FORBIDDEN, "{path}");
        }
        let allowed = app.get(&auditor.token, path).await;
        assert_eq!(allowed.status, StatusCode::OK, "{path}: {:?}", allowed.body);
    }
    for token in [&app.root, &admin.token, &agent.token, &worker] {
        let denied = app
            .get(
                token,
                "/v1/audit/proofs/inclusion?aggregate_type=account&id=x&sequence=1",
            )
            .await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
    }
    let unauthenticated = app
        .call(
            reqwest::Method::GET,
            "/v1/audit/digests/latest",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn digests_survive_a_restart_and_the_chain_of_digests_goes_on() {
    let signed = signed_store().await;
    let Signed {
        app, auditor_name, ..
    } = signed;
    let app = app.restart().await;
    let auditor = app.login(&auditor_name, crate::support::PASSWORD).await;
    let next = app.post(&auditor, "/v1/audit/digests", json!({})).await;
    assert_eq!(next.status, StatusCode::CREATED, "{:?}", next.body);
    assert_eq!(next.body["sequence"], 1);
    let check = app.get(&auditor, "/v1/audit/ledger/verify").await;
    assert_eq!(check.body["ok"], true, "{:?}", check.body);
    assert_eq!(check.body["digests"], 2);
}

#[tokio::test]
async fn a_key_rotated_out_keeps_its_digests_verifiable() {
    let signed = signed_store().await;
    let old_id = signed.digest["key_id"].clone();
    let Signed {
        app, auditor_name, ..
    } = signed;
    // The old key's public half kept as retired; a new key signs from now on.
    let retired = app.keys.path().join("retired-1.pub.pem");
    std::fs::copy(app.keys.path().join("digest-signing-key.pub.pem"), &retired).unwrap();
    let new_key = app.keys.path().join("digest-signing-key-2.pem");
    let (key, old) = (new_key.clone(), retired.clone());
    let app = app
        .restart_with(move |config| {
            config.ledger.digest_key = key;
            config.ledger.retired_keys = vec![old];
        })
        .await;
    let auditor = app.login(&auditor_name, crate::support::PASSWORD).await;
    let next = app.post(&auditor, "/v1/audit/digests", json!({})).await;
    assert_eq!(next.status, StatusCode::CREATED, "{:?}", next.body);
    assert_eq!(next.body["sequence"], 1);
    assert_ne!(next.body["key_id"], old_id);
    let keys = app.get(&auditor, "/v1/audit/digest-keys").await;
    let listed: Vec<(Value, Value)> = keys
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["key_id"].clone(), k["current"].clone()))
        .collect();
    assert_eq!(
        listed,
        vec![
            (next.body["key_id"].clone(), json!(true)),
            (old_id.clone(), json!(false))
        ]
    );
    let check = app.get(&auditor, "/v1/audit/ledger/verify").await;
    assert_eq!(check.body["ok"], true, "{:?}", check.body);
    assert_eq!(check.body["digests"], 2);

    // Forget the retired key, and the first digest can no longer be vouched for.
    let key = new_key.clone();
    let app = app
        .restart_with(move |config| config.ledger.digest_key = key)
        .await;
    let auditor = app.login(&auditor_name, crate::support::PASSWORD).await;
    let check = app.get(&auditor, "/v1/audit/ledger/verify").await;
    assert_eq!(check.body["ok"], false);
    assert_eq!(check.body["problems"][0]["problem"], "digest_invalid");
    assert_eq!(check.body["problems"][0]["sequence"], 0);
}

#[tokio::test]
async fn a_digest_file_that_cannot_be_read_is_answered_503_not_taken_for_empty() {
    let app = TestApp::spawn_configured(tempfile::tempdir().unwrap(), |config| {
        // A directory where the file should be: every read of it fails.
        let path = config.data_dir.join("digests-unreadable");
        std::fs::create_dir_all(&path).unwrap();
        config.ledger.digest_file = path;
    })
    .await;
    let admin = app.admin().await;
    let auditor = app.staff(&admin.token, "auditor").await;
    for path in [
        "/v1/audit/digests/latest",
        "/v1/audit/digests",
        "/v1/audit/digest-keys",
        "/v1/audit/ledger/verify",
    ] {
        let answer = app.get(&auditor.token, path).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(answer.is_problem(), "{path}");
    }
    let refused = app
        .post(&auditor.token, "/v1/audit/digests", json!({}))
        .await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
}

fn s(value: &Value) -> &str {
    value.as_str().unwrap()
}

fn hash_of(value: &Value) -> [u8; 32] {
    hex::decode(s(value)).unwrap().try_into().unwrap()
}
