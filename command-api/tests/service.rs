//! The command API as the AWS service: it refuses to start without its configuration,
//! and with it serves commands on DynamoDB (DynamoDB Local) for callers holding Cognito
//! tokens (moto), staff management going to the user pool.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_cognitoidentityprovider::config::Credentials;
use aws_sdk_cognitoidentityprovider::types::AuthFlowType;
use domain::policy::Role;
use domain::StaffId;
use identity::{CognitoDirectory, NewDirectoryUser, StaffDirectory};
use serde_json::{json, Value};
use std::process::{Command, Stdio};

const PASSWORD: &str = "A-long-enough-passw0rd";

#[test]
fn refuses_to_start_without_configuration() {
    let output = Command::new(env!("CARGO_BIN_EXE_command-api"))
        .env_clear()
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    for name in [
        "CRM_DYNAMODB_TABLE_PREFIX",
        "CRM_READ_DATABASE_URL",
        "CRM_COGNITO_USER_POOL_ID",
        "CRM_COGNITO_CLIENT_IDS",
    ] {
        assert!(message.contains(name), "{message}");
    }
    assert!(!message.contains("AWS_REGION"));
}

struct Service(std::process::Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn sign_in(
    client: &aws_sdk_cognitoidentityprovider::Client,
    app: &str,
    username: &str,
) -> String {
    let answer = client
        .initiate_auth()
        .auth_flow(AuthFlowType::UserPasswordAuth)
        .client_id(app)
        .auth_parameters("USERNAME", username)
        .auth_parameters("PASSWORD", PASSWORD)
        .send()
        .await
        .unwrap();
    answer
        .authentication_result()
        .unwrap()
        .access_token()
        .unwrap()
        .to_string()
}

async fn post(http: &reqwest::Client, url: String, token: &str, body: Value) -> (u16, Value) {
    let response = http
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_commands_for_cognito_users_on_dynamodb() {
    let dynamo_local = test_peers::dynamodb_local().await;
    let moto = test_peers::moto().await;
    let sdk = |endpoint: &str| {
        let endpoint = endpoint.to_string();
        async move {
            aws_config::defaults(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .endpoint_url(endpoint)
                .credentials_provider(Credentials::new("test", "test", None, None, "test"))
                .load()
                .await
        }
    };
    let (dynamo_sdk, moto_sdk) = (sdk(&dynamo_local.endpoint).await, sdk(&moto.endpoint).await);
    event_store::DynamoTables::with_prefix("svc-")
        .create(&event_store::aws_sdk_dynamodb::Client::new(&dynamo_sdk))
        .await
        .unwrap();
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&moto_sdk);
    let (pool, app) = identity::ensure_user_pool(&cognito, "crm", "crm-ui")
        .await
        .unwrap();
    // The root admin is created when the pool is (by the operator), not through the API.
    let directory = CognitoDirectory::new(cognito.clone(), &pool);
    directory
        .create_user(NewDirectoryUser {
            id: StaffId::new(),
            username: "root".into(),
            role: Role::RootAdmin,
            password: PASSWORD.into(),
        })
        .await
        .unwrap();

    let read_database_url = test_peers::postgres::fresh("command_service").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _service = Service(
        Command::new(env!("CARGO_BIN_EXE_command-api"))
            .env("CRM_ADDR", format!("127.0.0.1:{port}"))
            .env("CRM_DYNAMODB_TABLE_PREFIX", "svc-")
            .env("CRM_READ_DATABASE_URL", &read_database_url)
            .env("CRM_COGNITO_USER_POOL_ID", &pool)
            .env("CRM_COGNITO_CLIENT_IDS", &app)
            .env(
                "CRM_COGNITO_JWKS_URL",
                format!("{}/{pool}/.well-known/jwks.json", moto.endpoint),
            )
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_ENDPOINT_URL_DYNAMODB", &dynamo_local.endpoint)
            .env("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", &moto.endpoint)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if http
            .get(format!("{base}/health/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // The container's health check: ready here, failing where nothing listens.
    let health = |addr: String| {
        Command::new(env!("CARGO_BIN_EXE_command-api"))
            .arg("health")
            .env_clear()
            .env("CRM_ADDR", addr)
            .output()
            .unwrap()
    };
    assert!(health(format!("127.0.0.1:{port}")).status.success());
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = nobody.local_addr().unwrap();
    drop(nobody);
    let failed = health(closed.to_string());
    assert!(!failed.status.success());
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("/health/ready"),
        "{failed:?}"
    );

    let root = sign_in(&cognito, &app, "root").await;
    let staff = |username: &str, role: &str| json!({"username": username, "email": format!("{username}@bank.example"), "full_name": "Test", "role": role, "password": PASSWORD});
    let (status, admin) = post(
        &http,
        format!("{base}/v1/staff"),
        &root,
        staff("alice", "admin"),
    )
    .await;
    assert_eq!(status, 201, "{admin}");
    let admin_token = sign_in(&cognito, &app, "alice").await;
    let (status, agent) = post(
        &http,
        format!("{base}/v1/staff"),
        &admin_token,
        staff("bob", "agent"),
    )
    .await;
    assert_eq!(status, 201, "{agent}");
    let agent_id = agent["id"].as_str().unwrap().to_string();
    let agent_token = sign_in(&cognito, &app, "bob").await;
    // An agent may not create staff: refused, and the refusal is in the system log (the
    // read-model database), as in `crm serve`.
    let (status, _) = post(
        &http,
        format!("{base}/v1/staff"),
        &agent_token,
        staff("carol", "agent"),
    )
    .await;
    assert_eq!(status, 403);
    let log = projections::SystemLog::open(&read_database_url)
        .await
        .unwrap();
    let denied = log
        .list(projections::LogFilter {
            category: Some("denied".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(denied.items.len(), 1, "{:?}", denied.items);
    assert_eq!(denied.items[0].message, "POST /v1/staff refused");
    assert_eq!(denied.items[0].actor_id.as_deref(), Some(agent_id.as_str()));
    assert_eq!(denied.items[0].actor_role.as_deref(), Some("agent"));
    // Metrics count answers by route.
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"ledgerline_http_route_responses_total{method="POST",route="/v1/staff",status="403"} 1"#),
        "{metrics}"
    );
    let client = json!({"first_name": "Ada", "last_name": "Lovelace", "date_of_birth": "1990-12-10", "gender": "female",
        "email": "ada@example.com", "phone": "+353 1 234 5678",
        "address": {"line1": "1 Main Street", "city": "Dublin", "state": "", "country": "IE", "postal_code": "D01"}});
    let (status, client) = post(&http, format!("{base}/v1/clients"), &agent_token, client).await;
    assert_eq!(status, 201, "{client}");
    let (status, account) = post(
        &http,
        format!("{base}/v1/clients/{}/accounts", client["id"].as_str().unwrap()),
        &agent_token,
        json!({"account_type": "checking", "currency": "EUR", "initial_deposit": {"amount_minor": 100, "currency": "EUR"}}),
    )
    .await;
    assert_eq!(status, 201, "{account}");
    let (status, moved) = post(
        &http,
        format!(
            "{base}/v1/accounts/{}/withdrawals",
            account["id"].as_str().unwrap()
        ),
        &agent_token,
        json!({"amount": {"amount_minor": 30, "currency": "EUR"}}),
    )
    .await;
    assert_eq!(
        (status, moved["balance"]["amount_minor"].as_i64()),
        (201, Some(70)),
        "{moved}"
    );
    // The agent, disabled by the admin, is refused from then on.
    let (status, _) = post(
        &http,
        format!("{base}/v1/staff/{agent_id}/disable"),
        &admin_token,
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(&http, format!("{base}/v1/clients"), &agent_token, json!({})).await;
    assert_eq!(status, 401);
}
