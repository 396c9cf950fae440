//! The query API as the AWS service: it refuses to start without its configuration, and
//! with it serves the read models in PostgreSQL (as on Aurora) and the auditors' view
//! of the DynamoDB store (DynamoDB Local) to holders of Cognito tokens (moto), with the
//! ledger's digests signed by a KMS key and published to S3 (moto).

use aws_config::{BehaviorVersion, Region};
use aws_sdk_cognitoidentityprovider::config::Credentials;
use aws_sdk_cognitoidentityprovider::types::AuthFlowType;
use domain::client::{Client, ClientCommand};
use domain::contact::{Address, PersonalDetails};
use domain::metadata::CommandMetadata;
use domain::policy::Role;
use domain::{ClientId, StaffId};
use event_store::{time_position, Backend, DynamoTables, EventStore, Expected, StoredEvent};
use identity::{CognitoDirectory, NewDirectoryUser, StaffDirectory};
use projections::{Projector, ReadStore, SystemLog};
use std::process::{Command, Stdio};
use std::sync::Arc;

const PASSWORD: &str = "A-long-enough-passw0rd";

#[test]
fn refuses_to_start_without_configuration() {
    let output = Command::new(env!("CARGO_BIN_EXE_query-api"))
        .env_clear()
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    for name in [
        "CRM_READ_DATABASE_URL",
        "CRM_DYNAMODB_TABLE_PREFIX",
        "CRM_DIGEST_KMS_KEY",
        "CRM_DIGEST_BUCKET",
        "CRM_COGNITO_USER_POOL_ID",
        "CRM_COGNITO_CLIENT_IDS",
        "AWS_REGION",
    ] {
        assert!(message.contains(name), "{message}");
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_reads_and_audits_for_cognito_users() {
    let dynamo_local = test_peers::dynamodb_local().await;
    let moto = test_peers::moto().await;
    let sdk = |endpoint: String| async move {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .load()
            .await
    };
    let (dynamo_sdk, moto_sdk) = (
        sdk(dynamo_local.endpoint.clone()).await,
        sdk(moto.endpoint.clone()).await,
    );
    let tables = DynamoTables::with_prefix("q-");
    tables
        .create(&event_store::aws_sdk_dynamodb::Client::new(&dynamo_sdk))
        .await
        .unwrap();
    let store = Arc::new(EventStore::new(Backend::dynamo(
        event_store::aws_sdk_dynamodb::Client::new(&dynamo_sdk),
        tables,
    )));

    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&moto_sdk);
    let (pool, app) = identity::ensure_user_pool(&cognito, "crm", "crm-ui")
        .await
        .unwrap();
    let directory = CognitoDirectory::new(cognito.clone(), &pool);
    let user = |username: &str, role| NewDirectoryUser {
        id: StaffId::new(),
        username: username.into(),
        role,
        password: PASSWORD.into(),
    };
    let agent = directory
        .create_user(user("bob", Role::Agent))
        .await
        .unwrap();
    directory
        .create_user(user("dora", Role::Agent))
        .await
        .unwrap();
    directory
        .create_user(user("carol", Role::Auditor))
        .await
        .unwrap();

    // A client of bob's, in the store and projected into PostgreSQL.
    let client_id = ClientId::new();
    let details = PersonalDetails::builder()
        .first_name("Ada")
        .last_name("Lovelace")
        .date_of_birth("1990-01-01")
        .gender("female")
        .email("ada@example.com")
        .phone("+3531234567")
        .address(
            Address::builder()
                .line1("1 Main St")
                .city("Dublin")
                .country("IE")
                .postal_code("D01"),
        )
        .build(chrono::Utc::now().date_naive())
        .unwrap();
    let metadata = CommandMetadata {
        actor_id: agent.to_string(),
        actor_role: Role::Agent,
        correlation_id: "c".into(),
        causation_id: "c".into(),
        idempotency_key: None,
        occurred_at: chrono::Utc::now(),
    };
    store
        .execute::<Client>(
            &client_id.to_string(),
            Expected::Any,
            &metadata,
            ClientCommand::Onboard {
                client_id,
                agent_id: agent,
                details,
            },
        )
        .await
        .unwrap();
    let server = std::env::var("CRM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let name = format!("crm_query_{}", uuid::Uuid::now_v7().simple());
    let admin = sqlx::PgPool::connect(&format!("{server}/postgres"))
        .await
        .expect("PostgreSQL must be running (see .ci/run)");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let url = format!("{server}/{name}");
    let read = Arc::new(ReadStore::open(&url).await.unwrap());
    let projector = Projector::new(
        store.clone(),
        read.clone(),
        Arc::new(SystemLog::open(&url).await.unwrap()),
    );
    for event in store
        .stream("client", &client_id.to_string())
        .await
        .unwrap()
    {
        projector
            .deliver_one(&StoredEvent {
                position: time_position(&event),
                event,
            })
            .await
            .unwrap();
    }

    // The ledger: the client's event placed in the Merkle log as the relay does, a KMS
    // key to sign digests and a bucket with Object Lock to publish them.
    let Backend::Dynamo(dynamo) = store.backend() else {
        unreachable!("DynamoDB")
    };
    let stream = store
        .stream("client", &client_id.to_string())
        .await
        .unwrap();
    dynamo.log_events(stream).await.unwrap();
    let digests = query_api::service::DigestClients::new(&moto_sdk, true);
    let key = digests
        .kms
        .create_key()
        .key_spec(aws_sdk_kms::types::KeySpec::EccNistP256)
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap();
    let key = key.key_metadata().unwrap().key_id().to_string();
    digests
        .s3
        .create_bucket()
        .bucket("q-digests")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _service = Service(
        Command::new(env!("CARGO_BIN_EXE_query-api"))
            .env("CRM_ADDR", format!("127.0.0.1:{port}"))
            .env("CRM_READ_DATABASE_URL", &url)
            .env("CRM_DYNAMODB_TABLE_PREFIX", "q-")
            .env("CRM_DIGEST_KMS_KEY", &key)
            .env("CRM_DIGEST_BUCKET", "q-digests")
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
            .env("AWS_ENDPOINT_URL_KMS", &moto.endpoint)
            .env("AWS_ENDPOINT_URL_S3", &moto.endpoint)
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
    let get = |path: String, token: String| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let response = http
                .get(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (
                status,
                response
                    .json::<serde_json::Value>()
                    .await
                    .unwrap_or_default(),
            )
        }
    };
    let (bob, dora, carol) = (
        sign_in(&cognito, &app, "bob").await,
        sign_in(&cognito, &app, "dora").await,
        sign_in(&cognito, &app, "carol").await,
    );
    let (status, view) = get(format!("/v1/clients/{client_id}"), bob.clone()).await;
    assert_eq!(
        (status, view["last_name"].as_str()),
        (200, Some("Lovelace")),
        "{view}"
    );
    assert_eq!(get(format!("/v1/clients/{client_id}"), dora).await.0, 403);
    let (status, verified) = get("/v1/audit/verify".into(), carol.clone()).await;
    assert_eq!(
        (
            status,
            verified["ok"].as_bool(),
            verified["events_checked"].as_u64()
        ),
        (200, Some(true), Some(1)),
        "{verified}"
    );
    let (status, events) = get(
        format!("/v1/audit/streams/client/{client_id}/events"),
        carol.clone(),
    )
    .await;
    assert_eq!(
        (status, events["items"][0]["event_type"].as_str()),
        (200, Some("ClientOnboarded"))
    );
    assert_eq!(get("/v1/audit/verify".into(), bob).await.0, 403);

    // A verification run over DynamoDB, taken by the service's own worker.
    let started = http
        .post(format!("{base}/v1/audit/verifications"))
        .bearer_auth(&carol)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status().as_u16(), 202);
    let run: serde_json::Value = started.json().await.unwrap();
    let path = format!("/v1/audit/verifications/{}", run["id"].as_str().unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let done = loop {
        let (status, run) = get(path.clone(), carol.clone()).await;
        assert_eq!(status, 200, "{run}");
        if run["status"] == "done" {
            break run;
        }
        assert!(std::time::Instant::now() < deadline, "{run}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        (done["ok"].as_bool(), done["events_checked"].as_u64()),
        (Some(true), Some(1)),
        "{done}"
    );

    // A digest signed by the KMS key, published, and an event proved against it.
    let signed = http
        .post(format!("{base}/v1/audit/digests"))
        .bearer_auth(&carol)
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status().as_u16(), 201);
    let digest: serde_json::Value = signed.json().await.unwrap();
    assert_eq!(
        (digest["sequence"].as_u64(), digest["tree_size"].as_u64()),
        (Some(0), Some(1))
    );
    let (status, keys) = get("/v1/audit/digest-keys".into(), carol.clone()).await;
    assert_eq!(status, 200, "{keys}");
    assert_eq!(keys[0]["algorithm"], "ecdsa-p256-sha256");
    assert_eq!(keys[0]["key_id"], digest["key_id"]);
    let public = proofs::PublicKey::from_pem(keys[0]["public_key_pem"].as_str().unwrap()).unwrap();
    let verified: proofs::Digest = serde_json::from_value(digest.clone()).unwrap();
    verified.verify(&[public].into_iter().collect()).unwrap();
    let (status, listed) = get("/v1/audit/digests".into(), carol.clone()).await;
    assert_eq!((status, listed["items"][0].clone()), (200, digest.clone()));
    let (status, proof) = get(
        format!("/v1/audit/proofs/inclusion?aggregate_type=client&id={client_id}&sequence=1&tree_size=1"),
        carol.clone(),
    )
    .await;
    assert_eq!(status, 200, "{proof}");
    let (status, check) = get("/v1/audit/ledger/verify".into(), carol.clone()).await;
    assert_eq!(
        (status, check["ok"].as_bool()),
        (200, Some(true)),
        "{check}"
    );

    read.close().await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
}
