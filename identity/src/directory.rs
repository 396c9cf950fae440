//! The staff directory: who may sign in. A trait, so that staff management goes to
//! Cognito in AWS and to this embedded SQLite directory locally.

use api_kit::auth::AccessCheck;
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use domain::policy::Role;
use domain::StaffId;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::Path;
use std::time::Duration;

use crate::password;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone)]
pub struct NewDirectoryUser {
    pub id: StaffId,
    pub username: String,
    pub role: Role,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub id: StaffId,
    pub username: String,
    pub role: Role,
    pub enabled: bool,
}

/// A machine client's credentials; the secret is shown once and stored only hashed.
#[derive(Debug, Clone)]
pub struct WorkerClient {
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("the username is taken")]
    DuplicateUsername,
    #[error("no such user")]
    NotFound,
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("the password {0}")]
    WeakPassword(&'static str),
    #[error("directory unavailable: {0}")]
    Unavailable(String),
}

impl From<sqlx::Error> for DirectoryError {
    fn from(error: sqlx::Error) -> Self {
        DirectoryError::Unavailable(error.to_string())
    }
}

/// What staff management needs of a directory.
#[async_trait]
pub trait StaffDirectory: Send + Sync {
    /// Creates the user and returns the id its tokens will carry as `sub`: the proposed
    /// one in the embedded directory, Cognito's own in AWS.
    async fn create_user(&self, user: NewDirectoryUser) -> Result<StaffId, DirectoryError>;
    async fn set_enabled(&self, id: StaffId, enabled: bool) -> Result<(), DirectoryError>;
    async fn set_role(&self, id: StaffId, role: Role) -> Result<(), DirectoryError>;
    async fn delete_user(&self, id: StaffId) -> Result<(), DirectoryError>;
    /// Lifts the waits that failed sign-ins put on a member of staff.
    async fn unlock_sign_in(&self, id: StaffId) -> Result<(), DirectoryError>;
    /// Sets a new password (an administrator's reset) and ends the member's sessions:
    /// refresh tokens stop working, so whoever held the old password is signed out.
    async fn reset_password(&self, id: StaffId, password: &str) -> Result<(), DirectoryError>;
}

/// The directory in SQLite, in the data directory's `identity.db`.
pub struct EmbeddedDirectory {
    pub(crate) pool: SqlitePool,
    /// Answers of `is_active`, asked on every request. This process is the directory's
    /// only writer, and every write clears the memory, so it is never stale.
    active: std::sync::Mutex<std::collections::HashMap<(String, Role), bool>>,
    /// Bumped by every write, so an answer read before a write is not remembered after it.
    generation: std::sync::atomic::AtomicU64,
    throttle: crate::throttle::SignInThrottle,
}

pub(crate) fn sha256_b64(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(value.as_bytes()))
}

/// 256 random bits, base64url: a secret no one guesses (codes, refresh tokens).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339()
}

type UserRow = (String, String, String, i64);

fn user_from_row((id, username, role, enabled): UserRow) -> Result<DirectoryUser, DirectoryError> {
    Ok(DirectoryUser {
        id: id
            .parse()
            .map_err(|_| DirectoryError::Unavailable(format!("corrupt user id {id}")))?,
        username,
        role: Role::parse(&role)
            .ok_or_else(|| DirectoryError::Unavailable(format!("corrupt role {role}")))?,
        enabled: enabled != 0,
    })
}

impl EmbeddedDirectory {
    pub async fn open(path: &Path) -> Result<Self, DirectoryError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        MIGRATIONS
            .run(&pool)
            .await
            .map_err(|e| DirectoryError::Unavailable(e.to_string()))?;
        let directory = EmbeddedDirectory {
            pool,
            active: Default::default(),
            generation: Default::default(),
            throttle: Default::default(),
        };
        for client in [crate::UI_CLIENT_ID, crate::CLI_CLIENT_ID] {
            sqlx::query("INSERT INTO clients (client_id, name, created_at) VALUES ($1, $1, $2) ON CONFLICT DO NOTHING")
                .bind(client)
                .bind(now())
                .execute(&directory.pool)
                .await?;
        }
        Ok(directory)
    }

    /// The root admin, created first if there is none. The password is the one given,
    /// or a generated one returned (to be shown once) when none was given.
    pub async fn ensure_root(
        &self,
        username: &str,
        password: Option<String>,
    ) -> Result<(DirectoryUser, Option<String>), DirectoryError> {
        let existing: Option<UserRow> =
            sqlx::query_as("SELECT id, username, role, enabled FROM users WHERE role = $1 LIMIT 1")
                .bind(Role::RootAdmin.as_str())
                .fetch_optional(&self.pool)
                .await?;
        if let Some(row) = existing {
            return Ok((user_from_row(row)?, None));
        }
        let generated = password.is_none().then(random_token);
        let password = password.or_else(|| generated.clone()).unwrap_or_default();
        let user = NewDirectoryUser {
            id: StaffId::new(),
            username: username.to_string(),
            role: Role::RootAdmin,
            password,
        };
        self.create_user(user.clone()).await?;
        Ok((
            DirectoryUser {
                id: user.id,
                username: user.username.to_ascii_lowercase(),
                role: user.role,
                enabled: true,
            },
            generated,
        ))
    }

    /// Called after every write has reached the database.
    fn forget_access(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.active
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }

    pub async fn ping(&self) -> Result<(), DirectoryError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Checks a username and password tried from `source` (the peer's address); the
    /// same error for an unknown user and a wrong password, after the same amount of
    /// work, and while the source must wait (see `throttle`).
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
        source: &str,
    ) -> Result<DirectoryUser, DirectoryError> {
        let name = username.trim().to_ascii_lowercase();
        if !self.throttle.allows(&name, source) {
            tracing::warn!(username = %name, "sign-in refused: too many failures");
            return Err(DirectoryError::InvalidCredentials);
        }
        let row: Option<(String, String, String, i64, String)> = sqlx::query_as(
            "SELECT id, username, role, enabled, password_hash FROM users WHERE username = $1",
        )
        .bind(&name)
        .fetch_optional(&self.pool)
        .await?;
        let (user, hash) = match row {
            Some((id, username, role, enabled, hash)) => (
                Some(user_from_row((id, username, role, enabled))?),
                Some(hash),
            ),
            None => (None, None),
        };
        let matches = password::verify(password.to_string(), hash).await;
        match user {
            Some(user) if matches && user.enabled => {
                self.throttle.succeeded(&name, source);
                Ok(user)
            }
            _ => {
                self.throttle.failed(&name, source);
                Err(DirectoryError::InvalidCredentials)
            }
        }
    }

    pub async fn find(&self, id: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        let row: Option<UserRow> =
            sqlx::query_as("SELECT id, username, role, enabled FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(user_from_row).transpose()
    }

    /// Registers an integration worker (client credentials) and returns its secret once.
    pub async fn register_worker(&self, name: &str) -> Result<WorkerClient, DirectoryError> {
        let client_id = format!("worker-{}", uuid::Uuid::now_v7().simple());
        let client_secret = random_token();
        sqlx::query("INSERT INTO clients (client_id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&client_id)
            .bind(name)
            .bind(password::hash(client_secret.clone()).await.map_err(DirectoryError::Unavailable)?)
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(WorkerClient {
            client_id,
            client_secret,
        })
    }

    /// Checks a worker's client credentials.
    pub async fn authenticate_worker(
        &self,
        client_id: &str,
        secret: &str,
    ) -> Result<(), DirectoryError> {
        let row: Option<(Option<String>, i64)> =
            sqlx::query_as("SELECT secret_hash, enabled FROM clients WHERE client_id = $1")
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await?;
        let (hash, enabled) = match row {
            Some((Some(hash), enabled)) => (Some(hash), enabled != 0),
            _ => (None, false),
        };
        if password::verify(secret.to_string(), hash).await && enabled {
            Ok(())
        } else {
            Err(DirectoryError::InvalidCredentials)
        }
    }

    /// Whether `client_id` is a known public client that may use `redirect_uri`.
    pub(crate) async fn public_client_allows(
        &self,
        client_id: &str,
        redirect_uri: &str,
    ) -> Result<bool, DirectoryError> {
        let row: Option<(Option<String>, String)> = sqlx::query_as(
            "SELECT secret_hash, redirect_uris FROM clients WHERE client_id = $1 AND enabled = 1",
        )
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some((None, uris)) => serde_json::from_str::<Vec<String>>(&uris)
                .unwrap_or_default()
                .iter()
                .any(|allowed| allowed == redirect_uri),
            _ => false,
        })
    }

    /// Sets the redirect URIs a public client may use.
    pub async fn set_redirect_uris(
        &self,
        client_id: &str,
        uris: &[String],
    ) -> Result<(), DirectoryError> {
        sqlx::query("UPDATE clients SET redirect_uris = $1 WHERE client_id = $2")
            .bind(serde_json::to_string(uris).unwrap_or_else(|_| "[]".into()))
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The writes, before the access memory is cleared (see `StaffDirectory` below).
impl EmbeddedDirectory {
    async fn create_user_unforgotten(&self, user: NewDirectoryUser) -> Result<(), DirectoryError> {
        password::check_strength(&user.password, &[&user.username])
            .map_err(DirectoryError::WeakPassword)?;
        let hash = password::hash(user.password)
            .await
            .map_err(DirectoryError::Unavailable)?;
        let result = sqlx::query(
            "INSERT INTO users (id, username, role, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(user.id.to_string())
        .bind(user.username.to_ascii_lowercase())
        .bind(user.role.as_str())
        .bind(hash)
        .bind(now())
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(DirectoryError::DuplicateUsername)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn set_enabled_unforgotten(
        &self,
        id: StaffId,
        enabled: bool,
    ) -> Result<(), DirectoryError> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query("UPDATE users SET enabled = $1 WHERE id = $2")
            .bind(i64::from(enabled))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        if !enabled {
            sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if updated.rows_affected() == 0 {
            return Err(DirectoryError::NotFound);
        }
        Ok(())
    }

    async fn set_role_unforgotten(&self, id: StaffId, role: Role) -> Result<(), DirectoryError> {
        let updated = sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
            .bind(role.as_str())
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(DirectoryError::NotFound);
        }
        Ok(())
    }

    async fn delete_user_unforgotten(&self, id: StaffId) -> Result<(), DirectoryError> {
        // Refresh tokens and codes go with the user (ON DELETE CASCADE).
        let deleted = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(DirectoryError::NotFound);
        }
        Ok(())
    }
}

#[async_trait]
impl StaffDirectory for EmbeddedDirectory {
    async fn create_user(&self, user: NewDirectoryUser) -> Result<StaffId, DirectoryError> {
        let id = user.id;
        let result = self.create_user_unforgotten(user).await;
        self.forget_access();
        result.map(|()| id)
    }

    async fn set_enabled(&self, id: StaffId, enabled: bool) -> Result<(), DirectoryError> {
        let result = self.set_enabled_unforgotten(id, enabled).await;
        self.forget_access();
        result
    }

    async fn set_role(&self, id: StaffId, role: Role) -> Result<(), DirectoryError> {
        let result = self.set_role_unforgotten(id, role).await;
        self.forget_access();
        result
    }

    async fn unlock_sign_in(&self, id: StaffId) -> Result<(), DirectoryError> {
        let user = self
            .find(&id.to_string())
            .await?
            .ok_or(DirectoryError::NotFound)?;
        self.throttle.unlock(&user.username);
        Ok(())
    }

    async fn delete_user(&self, id: StaffId) -> Result<(), DirectoryError> {
        let result = self.delete_user_unforgotten(id).await;
        self.forget_access();
        result
    }

    async fn reset_password(&self, id: StaffId, password: &str) -> Result<(), DirectoryError> {
        let user = self
            .find(&id.to_string())
            .await?
            .ok_or(DirectoryError::NotFound)?;
        password::check_strength(password, &[&user.username])
            .map_err(DirectoryError::WeakPassword)?;
        let hash = password::hash(password.to_string())
            .await
            .map_err(DirectoryError::Unavailable)?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        // A reset is how a locked-out member gets back in.
        self.throttle.unlock(&user.username);
        Ok(())
    }
}

#[async_trait]
impl AccessCheck for EmbeddedDirectory {
    async fn is_active(&self, subject: &str, role: Role) -> Result<bool, String> {
        let key = (subject.to_string(), role);
        if let Some(active) = self
            .active
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&key)
        {
            return Ok(*active);
        }
        let generation = self.generation.load(std::sync::atomic::Ordering::SeqCst);
        let row: Option<(i64,)> = if role == Role::Worker {
            sqlx::query_as(
                "SELECT enabled FROM clients WHERE client_id = $1 AND secret_hash IS NOT NULL",
            )
            .bind(subject)
            .fetch_optional(&self.pool)
            .await
        } else {
            sqlx::query_as("SELECT enabled FROM users WHERE id = $1 AND role = $2")
                .bind(subject)
                .bind(role.as_str())
                .fetch_optional(&self.pool)
                .await
        }
        .map_err(|e| e.to_string())?;
        let active = matches!(row, Some((1,)));
        let mut remembered = self
            .active
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.generation.load(std::sync::atomic::Ordering::SeqCst) == generation {
            remembered.insert(key, active);
        }
        Ok(active)
    }
}
