//! `crm serve` runs the SFTP worker when it is configured: a file dropped into the real
//! sshd's inbox is picked up on the timer, and (having a bad line) quarantined with its
//! report; an onboarded client's export appears in the outbox.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROOT_PASSWORD: &str = "root-password-for-tests";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} did not happen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crm_serve_runs_the_worker_on_its_schedule_and_on_events() {
    let sshd = test_peers::sshd().await;
    let data = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let added = Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(["worker", "add", "sftp", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(added.status.success());
    let text = String::from_utf8(added.stdout).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_string()
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = |name: &str| sshd.root.join(name).display().to_string();
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_crm"))
            .args([
                "serve",
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data.path())
            .env("CRM_DIGEST_KEY", keys.path().join("digest-signing-key.pem"))
            .env("CRM_DIGEST_FILE", keys.path().join("digests.jsonl"))
            .env("CRM_ROOT_PASSWORD", ROOT_PASSWORD)
            .env("RUST_LOG", "warn")
            .env("CRM_SFTP_HOST", "127.0.0.1")
            .env("CRM_SFTP_PORT", sshd.port.to_string())
            .env("CRM_SFTP_USER", &sshd.user)
            .env("CRM_SFTP_KEY_FILE", &sshd.client_key)
            .env("CRM_SFTP_HOST_KEY", &sshd.host_key)
            .env("CRM_SFTP_INBOX", dir("inbox"))
            .env("CRM_SFTP_ARCHIVE", dir("archive"))
            .env("CRM_SFTP_ERROR", dir("error"))
            .env("CRM_SFTP_OUTBOX", dir("outbox"))
            .env("CRM_SFTP_INTERVAL_SECS", "1")
            .env("CRM_SFTP_CLIENT_ID", field("client_id"))
            .env("CRM_SFTP_CLIENT_SECRET", field("client_secret"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let ready = Instant::now() + Duration::from_secs(60);
    while !http
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status() == StatusCode::OK)
    {
        assert!(Instant::now() < ready, "crm serve did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // On the schedule: a file with a bad line goes to error/ with its report.
    std::fs::write(
        sshd.root.join("inbox/bad.csv"),
        "external_id,account_id,direction,amount_minor,currency,booked_at,description\ncore-1,nope,credit,1,EUR,2026-11-24T09:00:00Z,x\n",
    )
    .unwrap();
    until("the bad file's quarantine", || {
        sshd.root
            .join("error/bad.csv.report.txt")
            .is_file()
            .then_some(())
    })
    .await;

    // On events: a new client is exported.
    let token = |body: Value| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let reply: Value = http
                .post(format!("{base}/auth/login"))
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            reply["access_token"].as_str().unwrap().to_string()
        }
    };
    let root = token(json!({"username": "root", "password": ROOT_PASSWORD})).await;
    let post = |token: String, path: &str, body: Value| {
        let request = http
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            assert!(response.status().is_success(), "{}", response.status());
        }
    };
    let staff = |username: &str, role: &str| json!({"username": username, "email": format!("{username}@bank.example"), "full_name": "Test", "role": role, "password": "a-long-enough-password"});
    post(root.clone(), "/v1/staff", staff("alice", "admin")).await;
    let admin = token(json!({"username": "alice", "password": "a-long-enough-password"})).await;
    post(admin, "/v1/staff", staff("bob", "agent")).await;
    let agent = token(json!({"username": "bob", "password": "a-long-enough-password"})).await;
    post(
        agent,
        "/v1/clients",
        json!({
            "first_name": "Ada", "last_name": "Lovelace", "date_of_birth": "1990-12-10",
            "gender": "female", "email": "ada@example.com", "phone": "+353 1 234 5678",
            "address": {"line1": "1 Main Street", "city": "Dublin", "state": "", "country": "IE", "postal_code": "D01 F5P2"}
        }),
    )
    .await;
    let export = until("the client export", || {
        std::fs::read_dir(sshd.root.join("outbox"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("clients-")
            })
    })
    .await;
    assert!(std::fs::read_to_string(export)
        .unwrap()
        .contains("Lovelace"));
}
