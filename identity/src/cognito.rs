//! The staff directory on a Cognito user pool: staff are pool users, their role is the
//! pool group of the same name, their id is Cognito's `sub` (what access tokens carry).
//! Whether a user may still act is asked of the pool, remembered for a short while per
//! process and forgotten at once on this process's own changes.

use api_kit::auth::AccessCheck;
use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata;
use aws_sdk_cognitoidentityprovider::types::{AttributeType, MessageActionType, UserStatusType};
use aws_sdk_cognitoidentityprovider::Client;
use domain::policy::Role;
use domain::StaffId;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::directory::{DirectoryError, NewDirectoryUser, StaffDirectory};

/// How long an "active" answer is trusted: the delay before another instance notices a
/// disable made elsewhere.
const ACCESS_TTL: Duration = Duration::from_secs(30);

pub struct CognitoDirectory {
    client: Client,
    pool_id: String,
    access: Mutex<HashMap<(String, Role), (bool, Instant)>>,
}

fn unavailable(error: impl std::fmt::Display) -> DirectoryError {
    DirectoryError::Unavailable(error.to_string())
}

impl CognitoDirectory {
    pub fn new(client: Client, pool_id: impl Into<String>) -> Self {
        CognitoDirectory {
            client,
            pool_id: pool_id.into(),
            access: Mutex::default(),
        }
    }

    fn forget_access(&self) {
        self.access
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// The pool user whose `sub` is `id`: (username, enabled, confirmed).
    async fn user(&self, id: &str) -> Result<Option<(String, bool, bool)>, DirectoryError> {
        let found = self
            .client
            .list_users()
            .user_pool_id(&self.pool_id)
            .filter(format!("sub = \"{}\"", id.replace('"', "")))
            .limit(1)
            .send()
            .await
            .map_err(|e| unavailable(e.into_service_error()))?;
        Ok(found.users().first().map(|user| {
            (
                user.username().unwrap_or_default().to_string(),
                user.enabled(),
                user.user_status() == Some(&UserStatusType::Confirmed),
            )
        }))
    }

    async fn username(&self, id: StaffId) -> Result<String, DirectoryError> {
        self.user(&id.to_string())
            .await?
            .map(|(username, ..)| username)
            .ok_or(DirectoryError::NotFound)
    }

    async fn groups(&self, username: &str) -> Result<Vec<String>, DirectoryError> {
        let groups = self
            .client
            .admin_list_groups_for_user()
            .user_pool_id(&self.pool_id)
            .username(username)
            .send()
            .await
            .map_err(|e| unavailable(e.into_service_error()))?;
        Ok(groups
            .groups()
            .iter()
            .filter_map(|g| g.group_name().map(String::from))
            .collect())
    }
}

#[async_trait]
impl StaffDirectory for CognitoDirectory {
    async fn create_user(&self, user: NewDirectoryUser) -> Result<StaffId, DirectoryError> {
        crate::password::check_strength(&user.password, &[&user.username])
            .map_err(DirectoryError::WeakPassword)?;
        let created = self
            .client
            .admin_create_user()
            .user_pool_id(&self.pool_id)
            .username(&user.username)
            .message_action(MessageActionType::Suppress)
            .send()
            .await;
        let created = match created {
            Ok(created) => created,
            Err(error) if error.code() == Some("UsernameExistsException") => {
                return Err(DirectoryError::DuplicateUsername)
            }
            Err(error) => return Err(unavailable(error.into_service_error())),
        };
        let sub = created
            .user()
            .map(|u| u.attributes())
            .unwrap_or_default()
            .iter()
            .find(|a: &&AttributeType| a.name() == "sub")
            .and_then(|a| a.value())
            .ok_or_else(|| unavailable("Cognito created the user without a sub"))?;
        let id: StaffId = sub
            .parse()
            .map_err(|_| unavailable(format!("Cognito's sub {sub} is not a UUID")))?;
        let rest = async {
            self.client
                .admin_set_user_password()
                .user_pool_id(&self.pool_id)
                .username(&user.username)
                .password(&user.password)
                .permanent(true)
                .send()
                .await
                .map_err(|e| match e.code() {
                    Some("InvalidPasswordException") => DirectoryError::WeakPassword(
                        "does not meet the user pool's password policy",
                    ),
                    _ => unavailable(e.into_service_error()),
                })?;
            self.client
                .admin_add_user_to_group()
                .user_pool_id(&self.pool_id)
                .username(&user.username)
                .group_name(user.role.as_str())
                .send()
                .await
                .map_err(|e| unavailable(e.into_service_error()))?;
            Ok::<_, DirectoryError>(())
        };
        if let Err(error) = rest.await {
            // Half a user is worse than none.
            let _ = self
                .client
                .admin_delete_user()
                .user_pool_id(&self.pool_id)
                .username(&user.username)
                .send()
                .await;
            return Err(error);
        }
        self.forget_access();
        Ok(id)
    }

    async fn reset_password(&self, id: StaffId, password: &str) -> Result<(), DirectoryError> {
        let username = self.username(id).await?;
        crate::password::check_strength(password, &[&username])
            .map_err(DirectoryError::WeakPassword)?;
        self.client
            .admin_set_user_password()
            .user_pool_id(&self.pool_id)
            .username(&username)
            .password(password)
            .permanent(true)
            .send()
            .await
            .map_err(|e| match e.code() {
                Some("InvalidPasswordException") => {
                    DirectoryError::WeakPassword("does not meet the user pool's password policy")
                }
                _ => unavailable(e.into_service_error()),
            })?;
        // Whoever held the old password loses their refresh tokens.
        self.client
            .admin_user_global_sign_out()
            .user_pool_id(&self.pool_id)
            .username(&username)
            .send()
            .await
            .map_err(|e| unavailable(e.into_service_error()))?;
        Ok(())
    }

    async fn set_enabled(&self, id: StaffId, enabled: bool) -> Result<(), DirectoryError> {
        let username = self.username(id).await?;
        let result = if enabled {
            let answer = self
                .client
                .admin_enable_user()
                .user_pool_id(&self.pool_id)
                .username(&username)
                .send()
                .await;
            answer
                .map(drop)
                .map_err(|e| unavailable(e.into_service_error()))
        } else {
            let answer = self
                .client
                .admin_disable_user()
                .user_pool_id(&self.pool_id)
                .username(&username)
                .send()
                .await;
            answer
                .map(drop)
                .map_err(|e| unavailable(e.into_service_error()))
        };
        self.forget_access();
        result?;
        if !enabled {
            // Refresh tokens end with the sign-out; access tokens are refused by `is_active`.
            let _ = self
                .client
                .admin_user_global_sign_out()
                .user_pool_id(&self.pool_id)
                .username(&username)
                .send()
                .await;
        }
        Ok(())
    }

    async fn set_role(&self, id: StaffId, role: Role) -> Result<(), DirectoryError> {
        let username = self.username(id).await?;
        for group in self.groups(&username).await? {
            if Role::parse(&group).is_some() && group != role.as_str() {
                self.client
                    .admin_remove_user_from_group()
                    .user_pool_id(&self.pool_id)
                    .username(&username)
                    .group_name(&group)
                    .send()
                    .await
                    .map_err(|e| unavailable(e.into_service_error()))?;
            }
        }
        let added = self
            .client
            .admin_add_user_to_group()
            .user_pool_id(&self.pool_id)
            .username(&username)
            .group_name(role.as_str())
            .send()
            .await;
        self.forget_access();
        added
            .map(drop)
            .map_err(|e| unavailable(e.into_service_error()))
    }

    /// Cognito throttles failed sign-ins by itself and lifts its waits by itself; it
    /// offers nothing to lift them sooner, so this says so rather than pretend.
    async fn unlock_sign_in(&self, _id: StaffId) -> Result<(), DirectoryError> {
        Err(DirectoryError::Unavailable(
            "Cognito lifts its own sign-in throttling after a while; it cannot be unlocked sooner"
                .into(),
        ))
    }

    async fn delete_user(&self, id: StaffId) -> Result<(), DirectoryError> {
        let username = self.username(id).await?;
        let deleted = self
            .client
            .admin_delete_user()
            .user_pool_id(&self.pool_id)
            .username(&username)
            .send()
            .await;
        self.forget_access();
        deleted
            .map(drop)
            .map_err(|e| unavailable(e.into_service_error()))
    }
}

#[async_trait]
impl AccessCheck for CognitoDirectory {
    async fn is_active(&self, subject: &str, role: Role) -> Result<bool, String> {
        if role == Role::Worker {
            // Machine clients are app clients, not users: a valid token is enough.
            return Ok(true);
        }
        let key = (subject.to_string(), role);
        if let Some((active, at)) = self
            .access
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            if at.elapsed() < ACCESS_TTL {
                return Ok(*active);
            }
        }
        let active = match self.user(subject).await.map_err(|e| e.to_string())? {
            Some((username, true, true)) => self
                .groups(&username)
                .await
                .map_err(|e| e.to_string())?
                .iter()
                .any(|g| g == role.as_str()),
            _ => false,
        };
        self.access
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (active, Instant::now()));
        Ok(active)
    }
}

/// How a service finds its user pool, from the environment: `CRM_COGNITO_USER_POOL_ID`,
/// `CRM_COGNITO_CLIENT_IDS` (comma-separated), `AWS_REGION`, and optionally
/// `CRM_COGNITO_ISSUER` and `CRM_COGNITO_JWKS_URL` (derived from the pool by default; the
/// JWKS URL may differ from the issuer, as with an emulator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CognitoConfig {
    pub user_pool_id: String,
    pub client_ids: Vec<String>,
    pub issuer: String,
    pub jwks_url: String,
}

/// Reads the named variables, collecting every missing one into `missing`.
pub fn required_vars(
    var: &impl Fn(&str) -> Option<String>,
    names: &[&'static str],
    missing: &mut Vec<&'static str>,
) -> Vec<String> {
    names
        .iter()
        .map(|name| {
            let value = var(name).filter(|v| !v.trim().is_empty());
            if value.is_none() {
                missing.push(name);
            }
            value.unwrap_or_default()
        })
        .collect()
}

impl CognitoConfig {
    /// `None` when a variable is missing (its name is added to `missing`).
    pub fn from_env(
        var: &impl Fn(&str) -> Option<String>,
        missing: &mut Vec<&'static str>,
    ) -> Option<Self> {
        let before = missing.len();
        let values = required_vars(
            var,
            &[
                "CRM_COGNITO_USER_POOL_ID",
                "CRM_COGNITO_CLIENT_IDS",
                "AWS_REGION",
            ],
            missing,
        );
        if missing.len() > before {
            return None;
        }
        let [user_pool_id, client_ids, region] =
            [values[0].clone(), values[1].clone(), values[2].clone()];
        let issuer = var("CRM_COGNITO_ISSUER").unwrap_or_else(|| {
            format!("https://cognito-idp.{region}.amazonaws.com/{user_pool_id}")
        });
        let jwks_url = var("CRM_COGNITO_JWKS_URL")
            .unwrap_or_else(|| format!("{issuer}/.well-known/jwks.json"));
        Some(CognitoConfig {
            user_pool_id,
            client_ids: client_ids
                .split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect(),
            issuer,
            jwks_url,
        })
    }

    /// The directory on the pool, and an authenticator that verifies the pool's tokens
    /// and asks the directory whether their holders may still act.
    pub fn connect(
        &self,
        client: Client,
    ) -> (
        std::sync::Arc<CognitoDirectory>,
        std::sync::Arc<api_kit::Authenticator>,
    ) {
        use api_kit::auth::{HttpKeySource, TokenVerifier};
        use std::sync::Arc;
        let directory = Arc::new(CognitoDirectory::new(client, &self.user_pool_id));
        let verifier =
            TokenVerifier::new(&self.issuer, Arc::new(HttpKeySource::new(&self.jwks_url)))
                .with_client_ids(self.client_ids.clone());
        let auth = Arc::new(api_kit::Authenticator::new(verifier, directory.clone()));
        (directory, auth)
    }
}
