//! What the worker has done, so nothing is done twice: files handled (by name and
//! checksum), transactions recorded (by the core system's id), the export checkpoint
//! and the statements written. One SQL for SQLite (a file next to the product's on the
//! embedded default) and PostgreSQL (Aurora, for the Lambda), through sqlx's `Any`.

use chrono::NaiveDate;
use sqlx::any::{install_default_drivers, AnyPoolOptions};
use sqlx::AnyPool;
use std::path::Path;

const SCHEMA: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS sftp_files (name TEXT NOT NULL, sha256 TEXT NOT NULL, \
     outcome TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (name, sha256))",
    "CREATE TABLE IF NOT EXISTS sftp_transactions (external_id TEXT PRIMARY KEY, \
     account_id TEXT NOT NULL, file TEXT NOT NULL, at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sftp_checkpoints (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sftp_statements (account_id TEXT NOT NULL, day TEXT NOT NULL, \
     written BIGINT NOT NULL, PRIMARY KEY (account_id, day))",
];

pub struct Ledger {
    pool: AnyPool,
}

impl Ledger {
    /// A SQLite file.
    pub async fn open(path: &Path) -> Result<Self, sqlx::Error> {
        Self::connect(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    /// Any database URL (`sqlite://…`, `postgres://…`).
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(2)
            .connect(url)
            .await?;
        for statement in SCHEMA {
            sqlx::query(statement).execute(&pool).await?;
        }
        Ok(Ledger { pool })
    }

    fn now() -> String {
        chrono::Utc::now().to_rfc3339()
    }

    /// How the file with this name and checksum was handled before, if it was.
    pub async fn file(&self, name: &str, sha256: &str) -> Result<Option<String>, sqlx::Error> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT outcome FROM sftp_files WHERE name = $1 AND sha256 = $2")
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
            "INSERT INTO sftp_files (name, sha256, outcome, at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name, sha256) DO UPDATE SET outcome = excluded.outcome, at = excluded.at",
        )
        .bind(name)
        .bind(sha256)
        .bind(outcome)
        .bind(Self::now())
        .execute(&self.pool)
        .await
        .map(drop)
    }

    /// The file that recorded this transaction, if one did.
    pub async fn transaction(&self, external_id: &str) -> Result<Option<String>, sqlx::Error> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT file FROM sftp_transactions WHERE external_id = $1")
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
            "INSERT INTO sftp_transactions (external_id, account_id, file, at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (external_id) DO NOTHING",
        )
        .bind(external_id)
        .bind(account_id)
        .bind(file)
        .bind(Self::now())
        .execute(&self.pool)
        .await
        .map(drop)
    }

    /// The last event position exported (0 before the first run).
    pub async fn checkpoint(&self, name: &str) -> Result<i64, sqlx::Error> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT position FROM sftp_checkpoints WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map_or(0, |(position,)| position))
    }

    pub async fn set_checkpoint(&self, name: &str, position: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO sftp_checkpoints (name, position) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        )
        .bind(name)
        .bind(position)
        .execute(&self.pool)
        .await
        .map(drop)
    }

    /// Notes that `account` moved money on `day` (its statement is due once the day is over).
    pub async fn statement_day(&self, account: &str, day: NaiveDate) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO sftp_statements (account_id, day, written) VALUES ($1, $2, 0) \
             ON CONFLICT (account_id, day) DO NOTHING",
        )
        .bind(account)
        .bind(day.to_string())
        .execute(&self.pool)
        .await
        .map(drop)
    }

    /// Statements not yet written for days before `today`.
    pub async fn statements_due(
        &self,
        today: NaiveDate,
    ) -> Result<Vec<(String, NaiveDate)>, sqlx::Error> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT account_id, day FROM sftp_statements WHERE written = 0 AND day < $1 \
             ORDER BY day, account_id",
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
        day: NaiveDate,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE sftp_statements SET written = 1 WHERE account_id = $1 AND day = $2")
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
