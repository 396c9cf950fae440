//! Setting a staff user pool up: the pool, a group per role, the app client.

use aws_sdk_cognitoidentityprovider::types::{
    AuthFlowType, ExplicitAuthFlowsType, PasswordPolicyType, UserPoolPolicyType,
};
use aws_sdk_cognitoidentityprovider::Client;
use domain::policy::Role;

use crate::directory::DirectoryError;
use crate::tokens::TokenSet;

fn unavailable<E: std::error::Error + 'static>(error: E) -> DirectoryError {
    DirectoryError::Unavailable(
        aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(&error).to_string(),
    )
}

/// The product's password rule as the pool's policy (zxcvbn runs before the pool is
/// asked; the pool only has to accept what it accepted).
fn pool_policy() -> UserPoolPolicyType {
    let policy = crate::PASSWORD_POLICY;
    UserPoolPolicyType::builder()
        .password_policy(
            PasswordPolicyType::builder()
                .minimum_length(i32::from(policy.minimum_length))
                .require_lowercase(policy.require_lowercase)
                .require_uppercase(policy.require_uppercase)
                .require_numbers(policy.require_digits)
                .require_symbols(policy.require_symbols)
                .temporary_password_validity_days(i32::from(
                    policy.temporary_password_validity_days,
                ))
                .build(),
        )
        .build()
}

/// The staff pool `name` (found by name, else created), a group per role, and the app
/// client `app` (password and SRP sign-in, refresh tokens): their ids. Running it again
/// creates nothing twice; `crm aws init` and the tests set pools up with it.
pub async fn ensure_user_pool(
    cognito: &Client,
    name: &str,
    app: &str,
) -> Result<(String, String), DirectoryError> {
    let pool_id = match find_user_pool(cognito, name).await? {
        Some(id) => id,
        None => cognito
            .create_user_pool()
            .pool_name(name)
            .policies(pool_policy())
            .send()
            .await
            .map_err(unavailable)?
            .user_pool()
            .and_then(|pool| pool.id().map(String::from))
            .ok_or_else(|| {
                DirectoryError::Unavailable(format!("{name} was created without an id"))
            })?,
    };
    for role in Role::ALL {
        match cognito
            .create_group()
            .user_pool_id(&pool_id)
            .group_name(role.as_str())
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_group_exists_exception()) => {}
            Err(e) => return Err(unavailable(e)),
        }
    }
    if let Some(id) = find_app_client(cognito, &pool_id, app).await? {
        return Ok((pool_id, id));
    }
    let created = cognito
        .create_user_pool_client()
        .user_pool_id(&pool_id)
        .client_name(app)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserSrpAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .send()
        .await
        .map_err(unavailable)?;
    let id = created
        .user_pool_client()
        .and_then(|client| client.client_id())
        .ok_or_else(|| DirectoryError::Unavailable(format!("{app} was created without an id")))?;
    Ok((pool_id, id.to_string()))
}

/// The id of the pool named `name`, if there is one.
pub async fn find_user_pool(
    cognito: &Client,
    name: &str,
) -> Result<Option<String>, DirectoryError> {
    let mut pools = cognito
        .list_user_pools()
        .max_results(60)
        .into_paginator()
        .items()
        .send();
    while let Some(pool) = pools.next().await {
        let pool = pool.map_err(unavailable)?;
        if pool.name() == Some(name) {
            return Ok(pool.id().map(String::from));
        }
    }
    Ok(None)
}

/// The id of the pool's app client named `name`, if there is one.
async fn find_app_client(
    cognito: &Client,
    pool_id: &str,
    name: &str,
) -> Result<Option<String>, DirectoryError> {
    let mut clients = cognito
        .list_user_pool_clients()
        .user_pool_id(pool_id)
        .max_results(60)
        .into_paginator()
        .items()
        .send();
    while let Some(client) = clients.next().await {
        let client = client.map_err(unavailable)?;
        if client.client_name() == Some(name) {
            return Ok(client.client_id().map(String::from));
        }
    }
    Ok(None)
}

/// Signs `username` in to the pool `pool` through its app client `app` with a password
/// (USER_PASSWORD_AUTH, which `ensure_user_pool`'s client allows): the access token.
/// The local AWS mode's way to act as anyone (`crm aws sign-in`). A wrong password is
/// [`DirectoryError::InvalidCredentials`]; a further challenge (MFA, a new password) is
/// named, not answered.
pub async fn sign_in_with_password(
    cognito: &Client,
    pool: &str,
    app: &str,
    username: &str,
    password: &str,
) -> Result<String, DirectoryError> {
    let missing = |what: String| DirectoryError::Unavailable(format!("no {what}"));
    let pool_id = find_user_pool(cognito, pool)
        .await?
        .ok_or_else(|| missing(format!("user pool named {pool}")))?;
    let client_id = find_app_client(cognito, &pool_id, app)
        .await?
        .ok_or_else(|| missing(format!("app client named {app} in {pool}")))?;
    Ok(password_sign_in(cognito, &client_id, username, password)
        .await?
        .access_token)
}

/// Signs `username` in through the app client `client_id` with a password
/// (USER_PASSWORD_AUTH): the pool's tokens. A wrong password or an unknown user is
/// [`DirectoryError::InvalidCredentials`]; a further challenge is named, not answered.
pub async fn password_sign_in(
    cognito: &Client,
    client_id: &str,
    username: &str,
    password: &str,
) -> Result<TokenSet, DirectoryError> {
    initiate(
        cognito
            .initiate_auth()
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .client_id(client_id)
            .auth_parameters("USERNAME", username)
            .auth_parameters("PASSWORD", password),
        None,
    )
    .await
}

/// New tokens for a refresh token (REFRESH_TOKEN_AUTH; the refresh token itself is kept,
/// as Cognito does not rotate it unless told to).
pub async fn refresh_sign_in(
    cognito: &Client,
    client_id: &str,
    refresh_token: &str,
) -> Result<TokenSet, DirectoryError> {
    initiate(
        cognito
            .initiate_auth()
            .auth_flow(AuthFlowType::RefreshTokenAuth)
            .client_id(client_id)
            .auth_parameters("REFRESH_TOKEN", refresh_token),
        Some(refresh_token),
    )
    .await
}

async fn initiate(
    request: aws_sdk_cognitoidentityprovider::operation::initiate_auth::builders::InitiateAuthFluentBuilder,
    refresh_token: Option<&str>,
) -> Result<TokenSet, DirectoryError> {
    let answer = request
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(e) if e.is_not_authorized_exception() || e.is_user_not_found_exception() => {
                DirectoryError::InvalidCredentials
            }
            _ => unavailable(e),
        })?;
    if let Some(challenge) = answer.challenge_name() {
        return Err(DirectoryError::Unavailable(format!(
            "the pool asks for {challenge}, which this sign-in does not answer"
        )));
    }
    let result = answer
        .authentication_result()
        .filter(|result| result.access_token().is_some())
        .ok_or_else(|| DirectoryError::Unavailable("the pool answered without a token".into()))?;
    Ok(TokenSet {
        access_token: result.access_token().unwrap_or_default().to_string(),
        id_token: result.id_token().map(String::from),
        refresh_token: result.refresh_token().or(refresh_token).map(String::from),
        token_type: result.token_type().unwrap_or("Bearer").to_string(),
        expires_in: u64::try_from(result.expires_in()).unwrap_or(0),
    })
}
