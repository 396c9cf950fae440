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
            "CREATE TABLE IF NOT EXISTS checkpoints (name TEXT PRIMARY KEY, position INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS statements (account_id TEXT NOT NULL, day TEXT NOT NULL, \
             written INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (account_id, day))",
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

    /// The last event position exported (0 before the first run).
    pub async fn checkpoint(&self, name: &str) -> Result<i64, sqlx::Error> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT position FROM checkpoints WHERE name = ?1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map_or(0, |(position,)| position))
    }

    pub async fn set_checkpoint(&self, name: &str, position: i64) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT OR REPLACE INTO checkpoints (name, position) VALUES (?1, ?2)")
            .bind(name)
            .bind(position)
            .execute(&self.pool)
            .await
            .map(drop)
    }

    /// Notes that `account` moved on `day` (its statement is due once the day is over).
    pub async fn statement_day(
        &self,
        account: &str,
        day: chrono::NaiveDate,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT OR IGNORE INTO statements (account_id, day) VALUES (?1, ?2)")
            .bind(account)
            .bind(day.to_string())
            .execute(&self.pool)
            .await
            .map(drop)
    }

    /// Statements not yet written for days before `today`.
    pub async fn statements_due(
        &self,
        today: chrono::NaiveDate,
    ) -> Result<Vec<(String, chrono::NaiveDate)>, sqlx::Error> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT account_id, day FROM statements WHERE written = 0 AND day < ?1 ORDER BY day, account_id",
        )
        .bind(today.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(account, day)| day.parse().ok().map(|day| (account, day)))
            .collect())
    }

    pub async fn statement_written(
        &self,
        account: &str,
        day: chrono::NaiveDate,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE statements SET written = 1 WHERE account_id = ?1 AND day = ?2")
            .bind(account)
            .bind(day.to_string())
            .execute(&self.pool)
            .await
            .map(drop)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
