//! What the worker has done, so nothing is done twice: files handled (by name and
//! checksum) and transactions recorded (by the core system's id). A SQLite file next to
//! the product's own on the embedded default.

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use std::path::Path;
use std::str::FromStr;

pub struct Ledger {
    pool: SqlitePool,
}

impl Ledger {
    pub async fn open(path: &Path) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await?;
        for statement in [
            "CREATE TABLE IF NOT EXISTS files (name TEXT NOT NULL, sha256 TEXT NOT NULL, \
             outcome TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (name, sha256))",
            "CREATE TABLE IF NOT EXISTS transactions (external_id TEXT PRIMARY KEY, \
             account_id TEXT NOT NULL, file TEXT NOT NULL, at TEXT NOT NULL)",
        ] {
            sqlx::query(statement).execute(&pool).await?;
        }
        Ok(Ledger { pool })
    }

    /// How the file with this name and checksum was handled before, if it was.
    pub async fn file(&self, name: &str, sha256: &str) -> Result<Option<String>, sqlx::Error> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT outcome FROM files WHERE name = ?1 AND sha256 = ?2")
                .bind(name)
                .bind(sha256)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(outcome,)| outcome))
    }

    pub async fn record_file(
        &self,
        name: &str,
        sha256: &str,
        outcome: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT OR REPLACE INTO files (name, sha256, outcome, at) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(name)
        .bind(sha256)
        .bind(outcome)
        .bind(chrono::Utc::now().to_rfc3339())
        .execute(&self.pool)
        .await
        .map(drop)
    }

    /// The file that recorded this transaction, if one did.
    pub async fn transaction(&self, external_id: &str) -> Result<Option<String>, sqlx::Error> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT file FROM transactions WHERE external_id = ?1")
                .bind(external_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(file,)| file))
    }

    pub async fn record_transaction(
        &self,
        external_id: &str,
        account_id: &str,
        file: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT OR IGNORE INTO transactions (external_id, account_id, file, at) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(external_id)
        .bind(account_id)
        .bind(file)
        .bind(chrono::Utc::now().to_rfc3339())
        .execute(&self.pool)
        .await
        .map(drop)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
