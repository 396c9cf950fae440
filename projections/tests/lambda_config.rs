//! The projector Lambda refuses to start without its configuration, naming every
//! missing variable.

#[test]
fn refuses_to_start_naming_what_is_missing() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_projector-lambda"))
        .env_remove("CRM_READ_DATABASE_URL")
        .env("CRM_DYNAMODB_TABLE_PREFIX", "")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("missing configuration: CRM_READ_DATABASE_URL, CRM_DYNAMODB_TABLE_PREFIX"),
        "{stderr}"
    );
}
