//! The system log: what admins read to see who signed in, who was refused, what changed
//! among staff and what failed. Kept in its own database, apart from the rebuildable
//! read models, since most of it appears in no event stream.

use serde::Serialize;
use sqlx::{AnyPool, FromRow};

use crate::db::{open, Durability, Schema};
use crate::error::ProjectionError;
use crate::page::{bind_all, count, decode_cursor, paginate, Page, Param, Select};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, utoipa::ToSchema)]
pub struct LogEntry {
    pub id: String,
    pub occurred_at: String,
    /// info, warn or error.
    pub level: String,
    /// sign-in, sign-in-failed, denied, staff, payee-lookup, projection, integration,
    /// integrity.
    pub category: String,
    pub actor_id: Option<String>,
    pub actor_role: Option<String>,
    /// The actor's username, from the staff read model when the log is read (the log's
    /// own database holds ids only).
    #[sqlx(default)]
    pub actor_username: Option<String>,
    pub message: String,
    /// JSON text with whatever else is worth knowing.
    pub details: Option<String>,
    pub correlation_id: Option<String>,
}

impl LogEntry {
    pub fn new(level: &str, category: &str, message: impl Into<String>) -> Self {
        LogEntry {
            id: uuid::Uuid::now_v7().to_string(),
            occurred_at: crate::timestamp(chrono::Utc::now()),
            level: level.into(),
            category: category.into(),
            actor_id: None,
            actor_role: None,
            actor_username: None,
            message: message.into(),
            details: None,
            correlation_id: None,
        }
    }

    pub fn actor(mut self, id: impl Into<String>, role: Option<&str>) -> Self {
        self.actor_id = Some(id.into());
        self.actor_role = role.map(String::from);
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details.to_string());
        self
    }

    pub fn correlation(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// A fixed id, so that recording the same fact twice records it once.
    pub fn keyed(mut self, id: impl Into<String>, occurred_at: impl Into<String>) -> Self {
        self.id = id.into();
        self.occurred_at = occurred_at.into();
        self
    }
}

pub struct SystemLog {
    pool: AnyPool,
}

#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub level: Option<String>,
    pub category: Option<String>,
    pub actor: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub cursor: Option<String>,
    pub limit: i64,
}

const INSERT: &str = "INSERT INTO system_log (id, occurred_at, level, category, actor_id, actor_role, message, details, \
     correlation_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING";

/// Requests refused with 403, as `denied` entries naming who was refused.
#[async_trait::async_trait]
impl api_kit::observe::RefusalLog for SystemLog {
    async fn refused(&self, refusal: api_kit::observe::Refusal) {
        let (actor, role) = refusal.actor.unwrap_or_default();
        let entry = LogEntry::new(
            "warn",
            "denied",
            format!("{} {} refused", refusal.method, refusal.path),
        )
        .actor(actor, role.as_deref())
        .correlation(refusal.correlation_id);
        self.record_or_warn(entry).await;
    }
}

impl SystemLog {
    pub async fn open(url: &str) -> Result<Self, ProjectionError> {
        Ok(SystemLog {
            pool: open(url, Schema::SystemLog, Durability::Full).await?,
        })
    }

    pub async fn record(&self, entry: LogEntry) -> Result<(), ProjectionError> {
        sqlx::query(INSERT)
            .bind(entry.id)
            .bind(entry.occurred_at)
            .bind(entry.level)
            .bind(entry.category)
            .bind(entry.actor_id)
            .bind(entry.actor_role)
            .bind(entry.message)
            .bind(entry.details)
            .bind(entry.correlation_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records, logging instead of failing: a lost log line must not fail a request.
    pub async fn record_or_warn(&self, entry: LogEntry) {
        if let Err(error) = self.record(entry).await {
            tracing::warn!(%error, "could not write to the system log");
        }
    }

    /// Newest first.
    pub async fn list(&self, filter: LogFilter) -> Result<Page<LogEntry>, ProjectionError> {
        let mut select = Select::new(
            "SELECT id, occurred_at, level, category, actor_id, actor_role, message, details, correlation_id FROM system_log",
        );
        for (column, value) in [
            ("level", filter.level),
            ("category", filter.category),
            ("actor_id", filter.actor),
        ] {
            if let Some(value) = value {
                select.and(&format!("{column} = ?"), [Param::Text(value)]);
            }
        }
        if let Some(from) = filter.from {
            select.and("occurred_at >= ?", [Param::Text(from)]);
        }
        if let Some(to) = filter.to {
            select.and("occurred_at < ?", [Param::Text(to)]);
        }
        let total = count(&self.pool, select.count("FROM system_log")).await?;
        if let Some(cursor) = &filter.cursor {
            let key = decode_cursor(cursor, 2)?;
            select.and(
                "(occurred_at < ? OR (occurred_at = ? AND id < ?))",
                [
                    Param::Text(key[0].clone()),
                    Param::Text(key[0].clone()),
                    Param::Text(key[1].clone()),
                ],
            );
        }
        let (sql, params) = select.build("occurred_at DESC, id DESC", filter.limit);
        let rows: Vec<LogEntry> = bind_all(sqlx::query_as(&sql), params)
            .fetch_all(&self.pool)
            .await?;
        Ok(paginate(rows, filter.limit, |e: &LogEntry| {
            vec![e.occurred_at.clone(), e.id.clone()]
        })
        .counted(total))
    }

    /// Up to when the pool `pool`'s sign-in history is in the log
    /// ([`crate::sign_in_failures`]), if it was ever read.
    pub async fn sign_ins_checked_through(
        &self,
        pool: &str,
    ) -> Result<Option<String>, ProjectionError> {
        Ok(
            sqlx::query_scalar("SELECT checked_through FROM sign_in_audit WHERE user_pool_id = $1")
                .bind(pool)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn set_sign_ins_checked_through(
        &self,
        pool: &str,
        through: &str,
    ) -> Result<(), ProjectionError> {
        sqlx::query(
            "INSERT INTO sign_in_audit (user_pool_id, checked_through) VALUES ($1, $2) \
             ON CONFLICT (user_pool_id) DO UPDATE SET checked_through = excluded.checked_through",
        )
        .bind(pool)
        .bind(through)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The time of each of `ids`' latest sign-in (those who never signed in are left out).
    pub async fn last_sign_ins(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, String>, ProjectionError> {
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let sql = format!(
            "SELECT actor_id, MAX(occurred_at) FROM system_log WHERE category = 'sign-in' \
             AND actor_id IN ({}) GROUP BY actor_id",
            crate::page::placeholders(ids.len())
        );
        let mut query = sqlx::query_as::<_, (String, String)>(&sql);
        for id in ids {
            query = query.bind(id);
        }
        Ok(query.fetch_all(&self.pool).await?.into_iter().collect())
    }

    /// The auditors' verification runs, kept in this database.
    pub fn verification_runs(&self) -> crate::VerificationRuns {
        crate::VerificationRuns::new(self.pool.clone())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
