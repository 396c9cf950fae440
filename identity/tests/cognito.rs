//! The staff directory on a Cognito user pool (moto), and verification of the pool's
//! tokens: issuer in the real AWS form, JWKS fetched from the emulator, client id and
//! `token_use` checked.

use api_kit::auth::{AccessCheck, HttpKeySource, TokenVerifier};
use aws_config::{BehaviorVersion, Region};
use aws_sdk_cognitoidentityprovider::config::Credentials;
use aws_sdk_cognitoidentityprovider::types::{
    AuthFlowType, PasswordPolicyType, UserPoolPolicyType,
};
use aws_sdk_cognitoidentityprovider::Client;
use domain::policy::Role;
use domain::StaffId;
use identity::{CognitoDirectory, DirectoryError, NewDirectoryUser, StaffDirectory};
use std::sync::Arc;

const PASSWORD: &str = "A-long-enough-passw0rd";

async fn sign_in(client: &Client, app: &str, username: &str) -> Result<String, String> {
    let answer = client
        .initiate_auth()
        .auth_flow(AuthFlowType::UserPasswordAuth)
        .client_id(app)
        .auth_parameters("USERNAME", username)
        .auth_parameters("PASSWORD", PASSWORD)
        .send()
        .await
        .map_err(|e| format!("{:?}", e.into_service_error()))?;
    Ok(answer
        .authentication_result()
        .and_then(|r| r.access_token())
        .unwrap_or_default()
        .to_string())
}

#[tokio::test]
async fn staff_live_in_the_pool_and_its_tokens_verify() {
    let moto = test_peers::moto().await;
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    let client = Client::new(&config);
    let (pool_id, app_id) = identity::ensure_user_pool(&client, "crm-staff", "crm-ui")
        .await
        .unwrap();

    let directory = CognitoDirectory::new(client.clone(), &pool_id);
    let new = |username: &str, role| NewDirectoryUser {
        id: StaffId::new(),
        username: username.into(),
        role,
        password: PASSWORD.into(),
    };
    let id = directory
        .create_user(new("jane", Role::Agent))
        .await
        .unwrap();
    assert!(matches!(
        directory.create_user(new("jane", Role::Auditor)).await,
        Err(DirectoryError::DuplicateUsername)
    ));
    assert!(matches!(
        directory
            .create_user(NewDirectoryUser {
                password: "short".into(),
                ..new("joe", Role::Agent)
            })
            .await,
        Err(DirectoryError::WeakPassword(_))
    ));
    // The pool has the product's policy (length, no character classes): what the product
    // accepts, the pool accepts.
    let pool = client
        .describe_user_pool()
        .user_pool_id(&pool_id)
        .send()
        .await
        .unwrap();
    let policy = pool
        .user_pool()
        .and_then(|p| p.policies())
        .and_then(|p| p.password_policy())
        .unwrap();
    assert_eq!(policy.minimum_length(), Some(12));
    assert_eq!(
        (
            policy.require_uppercase(),
            policy.require_lowercase(),
            policy.require_numbers(),
            policy.require_symbols()
        ),
        (false, false, false, false)
    );
    assert!(directory
        .create_user(NewDirectoryUser {
            password: "only-lower-case-letters".into(),
            ..new("ann", Role::Agent)
        })
        .await
        .is_ok());
    // A pool a bank made stricter is honoured as well, and no half user stays.
    let strict = client
        .create_user_pool()
        .pool_name("strict-staff")
        .policies(
            UserPoolPolicyType::builder()
                .password_policy(
                    PasswordPolicyType::builder()
                        .minimum_length(12)
                        .require_symbols(true)
                        .require_numbers(true)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .user_pool()
        .and_then(|p| p.id())
        .unwrap()
        .to_string();
    client
        .create_group()
        .user_pool_id(&strict)
        .group_name(Role::Agent.as_str())
        .send()
        .await
        .unwrap();
    let strict_directory = CognitoDirectory::new(client.clone(), &strict);
    assert!(matches!(
        strict_directory
            .create_user(NewDirectoryUser {
                password: "only-lower-case-letters".into(),
                ..new("joe", Role::Agent)
            })
            .await,
        Err(DirectoryError::WeakPassword(_))
    ));
    assert!(
        strict_directory
            .create_user(new("joe", Role::Agent))
            .await
            .is_ok(),
        "the refused joe was removed again"
    );

    // The pool's token: sub is the id the directory returned, the group is the role.
    let token = sign_in(&client, &app_id, "jane").await.unwrap();
    let verifier = TokenVerifier::new(
        format!("https://cognito-idp.us-east-1.amazonaws.com/{pool_id}"),
        Arc::new(HttpKeySource::new(format!(
            "{}/{pool_id}/.well-known/jwks.json",
            moto.endpoint
        ))),
    )
    .with_client_ids(vec![app_id.clone()]);
    let claims = verifier.verify(&token).await.unwrap();
    assert_eq!(claims.sub, id.to_string());
    assert_eq!(claims.groups, ["agent"]);
    assert_eq!(claims.token_use, "access");
    let other_app = TokenVerifier::new(
        format!("https://cognito-idp.us-east-1.amazonaws.com/{pool_id}"),
        Arc::new(HttpKeySource::new(format!(
            "{}/{pool_id}/.well-known/jwks.json",
            moto.endpoint
        ))),
    )
    .with_client_ids(vec!["another-client".into()]);
    assert!(
        other_app.verify(&token).await.is_err(),
        "tokens of another app client are refused"
    );
    let wrong_issuer = TokenVerifier::new(
        "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other",
        Arc::new(HttpKeySource::new(format!(
            "{}/{pool_id}/.well-known/jwks.json",
            moto.endpoint
        ))),
    );
    assert!(
        wrong_issuer.verify(&token).await.is_err(),
        "tokens of another pool are refused"
    );

    let sub = id.to_string();
    assert!(directory.is_active(&sub, Role::Agent).await.unwrap());
    assert!(!directory.is_active(&sub, Role::Admin).await.unwrap());
    directory.set_enabled(id, false).await.unwrap();
    assert!(
        !directory.is_active(&sub, Role::Agent).await.unwrap(),
        "a disabled user's tokens are refused"
    );
    assert!(
        sign_in(&client, &app_id, "jane").await.is_err(),
        "and they cannot sign in"
    );
    directory.set_enabled(id, true).await.unwrap();
    assert!(directory.is_active(&sub, Role::Agent).await.unwrap());
    directory.set_role(id, Role::Auditor).await.unwrap();
    assert!(!directory.is_active(&sub, Role::Agent).await.unwrap());
    assert!(directory.is_active(&sub, Role::Auditor).await.unwrap());
    directory.delete_user(id).await.unwrap();
    assert!(!directory.is_active(&sub, Role::Auditor).await.unwrap());
    assert!(matches!(
        directory.set_enabled(id, true).await,
        Err(DirectoryError::NotFound)
    ));
}
