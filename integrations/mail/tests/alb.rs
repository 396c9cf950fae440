//! The mail Lambda's handler in-process, fed real ALB events (tests/fixtures) with
//! Cognito tokens from moto, the client in DynamoDB Local and the read models in
//! PostgreSQL; mail sent through SES on moto, readable at `/moto-api/data.json`.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_cognitoidentityprovider::config::Credentials;
use aws_sdk_cognitoidentityprovider::types::AuthFlowType;
use chrono::Utc;
use domain::client::{Client, ClientCommand};
use domain::contact::{Address, PersonalDetails};
use domain::metadata::CommandMetadata;
use domain::policy::Role;
use domain::{ClientId, StaffId};
use event_store::{time_position, DynamoTables, Expected, StoredEvent};
use identity::{CognitoConfig, CognitoDirectory, NewDirectoryUser, StaffDirectory};
use lambda_http::request::LambdaRequest;
use lambda_http::{Context, LambdaEvent, Service};
use projections::{Projector, ReadStore, SystemLog};
use serde_json::{json, Value};
use std::sync::Arc;

const PASSWORD: &str = "A-long-enough-passw0rd";

async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .load()
        .await
}

/// The fixture with this token and body, as the ALB would hand it to the function.
fn alb_event(token: Option<&str>, body: &Value) -> LambdaRequest {
    let mut event: Value = serde_json::from_str(include_str!("fixtures/alb-post.json")).unwrap();
    if let Some(token) = token {
        event["headers"]["authorization"] = json!(format!("Bearer {token}"));
    }
    event["body"] = json!(body.to_string());
    serde_json::from_value(event).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_events_draft_nothing_without_a_model_and_send_through_ses() {
    let dynamo_local = test_peers::dynamodb_local().await;
    let moto = test_peers::moto().await;
    let (store_sdk, aws_sdk) = (sdk(&dynamo_local.endpoint).await, sdk(&moto.endpoint).await);
    let tables = DynamoTables::with_prefix("mail-");
    tables
        .create(&event_store::aws_sdk_dynamodb::Client::new(&store_sdk))
        .await
        .unwrap();
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&aws_sdk);
    let (pool, app) = identity::ensure_user_pool(&cognito, "crm-staff", "crm-ui")
        .await
        .unwrap();
    let directory = CognitoDirectory::new(cognito.clone(), &pool);
    let mut agents = Vec::new();
    for (username, role) in [
        ("bob", Role::Agent),
        ("eve", Role::Agent),
        ("alice", Role::Admin),
    ] {
        let id = directory
            .create_user(NewDirectoryUser {
                id: StaffId::new(),
                username: username.into(),
                role,
                password: PASSWORD.into(),
            })
            .await
            .unwrap();
        agents.push(id);
    }
    let sign_in = |username: &'static str| {
        let cognito = cognito.clone();
        let app = app.clone();
        async move {
            cognito
                .initiate_auth()
                .auth_flow(AuthFlowType::UserPasswordAuth)
                .client_id(app)
                .auth_parameters("USERNAME", username)
                .auth_parameters("PASSWORD", PASSWORD)
                .send()
                .await
                .unwrap()
                .authentication_result()
                .unwrap()
                .access_token()
                .unwrap()
                .to_string()
        }
    };
    let ses = aws_sdk_sesv2::Client::new(&aws_sdk);
    ses.create_email_identity()
        .email_identity("no-reply@bank.example")
        .send()
        .await
        .unwrap();

    // Bob's client, in the store and in the read models.
    // Clients' personal data encrypted under a KMS key (moto), as in AWS.
    let kms = event_store::aws_sdk_kms::Client::new(&aws_sdk);
    let data_key = kms.create_key().send().await.unwrap();
    let data_key = data_key.key_metadata().unwrap().key_id().to_string();
    let store = Arc::new(
        event_store::kms_master::dynamo_store(
            event_store::aws_sdk_dynamodb::Client::new(&store_sdk),
            tables.clone(),
            &kms,
            Some(&data_key),
        )
        .unwrap(),
    );
    let client_id = ClientId::new();
    let details = PersonalDetails::builder()
        .first_name("Grace")
        .last_name("Hopper")
        .date_of_birth("1990-12-09")
        .gender("female")
        .email("grace@example.com")
        .phone("+353 1 234 5678")
        .address(
            Address::builder()
                .line1("1 Main Street")
                .city("Dublin")
                .country("IE")
                .postal_code("D01"),
        )
        .build(Utc::now().date_naive())
        .unwrap();
    let metadata = CommandMetadata {
        actor_id: agents[0].to_string(),
        actor_role: Role::Agent,
        correlation_id: "c".into(),
        causation_id: "c".into(),
        idempotency_key: None,
        occurred_at: Utc::now(),
    };
    store
        .execute::<Client>(
            &client_id.to_string(),
            Expected::Any,
            &metadata,
            ClientCommand::Onboard {
                client_id,
                agent_id: agents[0],
                details,
            },
        )
        .await
        .unwrap();
    let database = test_peers::postgres::fresh("crm_mail_alb").await;
    let read = Arc::new(ReadStore::open(&database).await.unwrap());
    let projector = Projector::new(
        store.clone(),
        read.clone(),
        Arc::new(SystemLog::open(&database).await.unwrap()),
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

    let config = mail::lambda::LambdaConfig {
        table_prefix: "mail-".into(),
        read_database_url: database.clone(),
        cognito: CognitoConfig {
            user_pool_id: pool.clone(),
            client_ids: vec![app.clone()],
            issuer: format!("https://cognito-idp.us-east-1.amazonaws.com/{pool}"),
            jwks_url: format!("{}/{pool}/.well-known/jwks.json", moto.endpoint),
        },
        mail: mail::MailSettings {
            from: "no-reply@bank.example".into(),
            ..Default::default()
        },
        data_key: Some(data_key.clone()),
    };
    let clients = mail::lambda::AwsClients {
        dynamo: event_store::aws_sdk_dynamodb::Client::new(&store_sdk),
        cognito: cognito.clone(),
        ses: ses.clone(),
        bedrock: aws_sdk_bedrockruntime::Client::new(&aws_sdk),
        kms,
    };
    let state = mail::lambda::state(&config, clients).await.unwrap();
    let mut handler = lambda_http::Adapter::from(mail::router(state));
    let mut invoke = |event: LambdaRequest| {
        let future = handler.call(LambdaEvent::new(event, Context::default()));
        async move { serde_json::to_value(future.await.unwrap()).unwrap() }
    };

    let bob = sign_in("bob").await;
    let send = json!({"action": "send", "recipient": "grace@example.com", "subject": "Welcome", "body": "Dear Grace,\nwelcome."});

    // Answers come back in the ALB format: status, its description, headers, body.
    let generated = invoke(alb_event(
        Some(&bob),
        &json!({"action": "generate", "prompt": "Hello"}),
    ))
    .await;
    assert_eq!(generated["statusCode"], 503, "{generated}");
    assert_eq!(generated["statusDescription"], "503 Service Unavailable");
    let problem: Value = serde_json::from_str(generated["body"].as_str().unwrap()).unwrap();
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("no language model"));

    let bad = invoke(alb_event(
        Some(&bob),
        &json!({"action": "send", "recipient": "nobody"}),
    ))
    .await;
    assert_eq!(bad["statusCode"], 400, "{bad}");
    assert_eq!(bad["headers"]["content-type"], "application/problem+json");

    let unauthenticated = invoke(alb_event(None, &send)).await;
    assert_eq!(unauthenticated["statusCode"], 401);
    // Another agent's client: the same 404 as an address that is no client's.
    let eve = sign_in("eve").await;
    assert_eq!(
        invoke(alb_event(Some(&eve), &send)).await["statusCode"],
        404
    );
    let alice = sign_in("alice").await;
    assert_eq!(
        invoke(alb_event(Some(&alice), &send)).await["statusCode"],
        403
    );

    let sent = invoke(alb_event(Some(&bob), &send)).await;
    assert_eq!(sent["statusCode"], 200, "{sent}");
    let body: Value = serde_json::from_str(sent["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["client_id"], client_id.to_string().as_str());

    // SES (moto) has exactly the one message; the client's stream records it.
    let data: Value = reqwest::get(format!("{}/moto-api/data.json", moto.endpoint))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = data["ses"].to_string();
    assert_eq!(text.matches("grace@example.com").count(), 1, "{text}");
    assert!(text.contains("Welcome"), "{text}");
    let stream = store
        .stream("client", &client_id.to_string())
        .await
        .unwrap();
    let recorded = stream.last().unwrap();
    assert_eq!(recorded.event_type, "CommunicationSent");
    // The recipient is stored sealed, and opens for the store's readers.
    let stored = recorded.payload.to_string();
    assert!(
        stored.contains("sealed_v1") && !stored.contains("grace@"),
        "{stored}"
    );
    let client = store
        .load::<domain::client::Client>(&client_id.to_string())
        .await
        .unwrap();
    assert_eq!(client.aggregate.details.unwrap().first_name, "Grace");

    read.close().await;
    test_peers::postgres::drop(&database).await;
}
