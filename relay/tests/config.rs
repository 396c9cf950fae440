//! The relay Lambda refuses to start without its configuration, saying what is missing.

#[test]
fn refuses_to_start_without_its_bus() {
    for value in [None, Some(""), Some("  ")] {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_relay-lambda"));
        match value {
            Some(value) => command.env("CRM_EVENT_BUS", value),
            None => command.env_remove("CRM_EVENT_BUS"),
        };
        let output = command.env("AWS_REGION", "us-east-1").output().unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("CRM_EVENT_BUS is required"), "{stderr}");
    }
}

#[test]
fn refuses_to_start_without_the_store_whose_log_it_keeps() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_relay-lambda"))
        .env("CRM_EVENT_BUS", "bus")
        .env("CRM_PROJECTOR_QUEUE_URL", "http://127.0.0.1:9/queue")
        .env_remove("CRM_DYNAMODB_TABLE_PREFIX")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("CRM_DYNAMODB_TABLE_PREFIX is required"),
        "{stderr}"
    );
}
