//! Setting a staff user pool up: the pool, a group per role, the app client.

use aws_sdk_cognitoidentityprovider::types::{
    ExplicitAuthFlowsType, PasswordPolicyType, UserPoolPolicyType,
};
use aws_sdk_cognitoidentityprovider::Client;
use domain::policy::Role;

use crate::directory::DirectoryError;

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
    let pools = cognito
        .list_user_pools()
        .max_results(60)
        .send()
        .await
        .map_err(unavailable)?;
    let existing = pools
        .user_pools()
        .iter()
        .find(|pool| pool.name() == Some(name))
        .and_then(|pool| pool.id().map(String::from));
    let pool_id = match existing {
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
    let apps = cognito
        .list_user_pool_clients()
        .user_pool_id(&pool_id)
        .max_results(60)
        .send()
        .await
        .map_err(unavailable)?;
    if let Some(id) = apps
        .user_pool_clients()
        .iter()
        .find(|client| client.client_name() == Some(app))
        .and_then(|client| client.client_id())
    {
        return Ok((pool_id, id.to_string()));
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
