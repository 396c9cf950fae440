//! `crm audit export` and `crm audit verify` run as an outside auditor runs them: the
//! binary, an export of a stopped server's data directory, the digest file and the
//! public key, and nothing else. An untouched export verifies (exit 0); one altered
//! behind the server's back, or checked against another key, does not (exit 1), and
//! the verifier says what is wrong.

mod process;

use process::bank::open_bank;
use process::*;
use reqwest::Method;
use serde_json::json;
use std::path::Path;
use std::process::Command;

fn crm(args: &[&str], paths: &[&Path]) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_crm"));
    command.args(args);
    let output = command
        .args(paths)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

fn export(data: &Path, out: &Path) {
    let (ok, text) = crm(
        &["audit", "export", "--data-dir"],
        &[data, Path::new("--out"), out],
    );
    assert!(ok, "{text}");
}

fn verify(export: &Path, digests: &Path, key: &Path) -> (bool, String) {
    crm(
        &["audit", "verify", "--export"],
        &[
            export,
            Path::new("--digests"),
            digests,
            Path::new("--public-key"),
            key,
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_verifies_an_export_offline_and_is_told_what_was_altered() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = start(dir.path(), port).await;
    let bank = open_bank(&server.base).await;
    for account in &bank.accounts {
        let (status, _) = call(
            &bank.http,
            Method::POST,
            format!("{}/v1/accounts/{account}/deposits", bank.base),
            Some(&bank.agent),
            Some(json!({"amount": {"amount_minor": 250, "currency": "EUR"}})),
        )
        .await;
        assert_eq!(status, reqwest::StatusCode::CREATED);
    }
    let auditor = create_staff(
        &bank.http,
        &bank.base,
        &bank.admin,
        "cli.auditor",
        "auditor",
    )
    .await;
    let (status, digest) = call(
        &bank.http,
        Method::POST,
        format!("{}/v1/audit/digests", bank.base),
        Some(&auditor),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{digest}");
    drop(server);

    let data = dir.path().join("data");
    let digests = dir.path().join("data-ledger").join("digests.jsonl");
    let key = dir
        .path()
        .join("data-ledger")
        .join("digest-signing-key.pub.pem");
    let clean = dir.path().join("export");
    let (ok, text) = crm(&["audit", "export", "--data-dir"], &[&data]);
    assert!(!ok && text.contains("--out"), "--out is required: {text}");
    export(&data, &clean);
    let (ok, text) = verify(&clean, &digests, &key);
    assert!(ok, "{text}");
    assert!(
        text.starts_with(&format!(
            "OK  {} events, 1 digest checked",
            digest["tree_size"]
        )),
        "{text}"
    );
    // An export goes only into a new directory.
    let (refused, text) = crm(
        &["audit", "export", "--data-dir"],
        &[&data, Path::new("--out"), &clean],
    );
    assert!(!refused && text.contains("is not empty"), "{text}");

    // Another key: the digest is not trusted.
    let other = tempfile::tempdir().unwrap();
    let other_key = other.path().join("k.pem");
    proofs::keys::load_or_create(&other_key, &data).unwrap();
    let (ok, text) = verify(&clean, &digests, &proofs::keys::public_key_path(&other_key));
    assert!(!ok, "{text}");
    assert!(text.contains("FAIL  digest 0 does not verify"), "{text}");

    // A deposit made larger behind the server's back.
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", data.join("ledger.db").display()))
        .await
        .unwrap();
    let altered = sqlx::query(
        "UPDATE events SET payload = replace(payload, '\"amount_minor\":250,', '\"amount_minor\":25000,') \
         WHERE aggregate_id = $1 AND sequence = 2",
    )
    .bind(&bank.accounts[1])
    .execute(&db)
    .await
    .unwrap();
    assert_eq!(altered.rows_affected(), 1);
    db.close().await;
    let tampered = dir.path().join("export-after");
    export(&data, &tampered);
    let (ok, text) = verify(&tampered, &digests, &key);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("FAIL  event account/{} #2", bank.accounts[1])),
        "{text}"
    );
    assert!(
        text.contains("FAIL  digest 0 signed another history"),
        "{text}"
    );
    assert!(text.lines().last().unwrap().starts_with("FAILED"), "{text}");
}
