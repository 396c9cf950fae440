//! The API against its own OpenAPI document, by Schemathesis (PyPI): for each role, every
//! operation with generated valid and invalid input (examples, coverage and fuzzing
//! phases) and, where the document links operations, sequences of them (stateful
//! phase). Every answer must be documented — status, content type, headers and body
//! schema — and none may be a server error. The number of cases is bounded (and the
//! seed fixed) so the run is repeatable and takes seconds.

use std::process::Command;

use crate::mail::{settings, Model};
use crate::support::TestApp;

/// Cases per operation and phase.
const EXAMPLES: &str = "15";
const SEED: &str = "20261127";

fn schemathesis(base: &str, token: &str, report: &std::path::Path) -> (bool, String) {
    let output = Command::new(test_peers::schemathesis())
        .args([
            "run",
            &format!("{base}/openapi.json"),
            "--header",
            &format!("Authorization: Bearer {token}"),
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            EXAMPLES,
            "--seed",
            SEED,
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,unsupported_method,missing_required_header,ignored_auth",
            "--no-color",
            "--generation-database",
            "none",
            "--report",
            "ndjson",
            "--report-ndjson-path",
        ])
        .arg(report)
        .env("NO_COLOR", "1")
        .output()
        .expect("schemathesis runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_keeps_the_openapi_contract() {
    let model = Model::default();
    let model_url = model.start().await;
    let smtp = test_peers::smtp_sink().await;
    let app = TestApp::spawn_with_mail(settings(Some(&model_url), Some(&smtp))).await;
    let agent = app.agent().await;
    // Something for the agent's reads and commands to find.
    let _account = app.account_of(&agent, 100_000).await;
    let admin = app.admin().await;
    let auditor = app.staff(&admin.token, "auditor").await;
    let reports = tempfile::tempdir().unwrap();
    let mut failed = Vec::new();
    for (role, token) in [
        ("agent", &agent.token),
        ("admin", &admin.token),
        ("auditor", &auditor.token),
    ] {
        let (passed, output) = schemathesis(&app.base, token, &reports.path().join(role));
        let summary: Vec<&str> = output
            .lines()
            .skip_while(|line| !line.contains("SUMMARY"))
            .collect();
        println!("schemathesis as {role}:\n{}", summary.join("\n"));
        if !passed {
            failed.push(format!("as {role}:\n{output}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
