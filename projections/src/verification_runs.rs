//! Whole-store verification runs: an auditor asks for one, a worker takes it under a
//! lease and writes each step's findings together with where the next step starts.
//! Kept in the system log's database: like the log, runs are in no event stream and
//! outlive a rebuild of the read models.
//!
//! A run is taken (claimed) only while queued or when its lease has run out, and a step
//! is written only by the lease's holder, so two workers never both record a step and a
//! worker killed mid-step costs that step, not the run.

use serde::Serialize;
use sqlx::{AnyPool, FromRow};
use std::time::Duration;

use crate::error::ProjectionError;
use crate::page::{decode_cursor, paginate, Page};

/// How many failures a run keeps; it counts them all.
pub const KEPT_FAILURES: usize = 100;
/// How many steps in a row may fail before the run is given up as failed.
pub const ATTEMPTS: i64 = 3;

/// A run as the auditors' API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct VerificationRun {
    pub id: String,
    /// queued, running, done, or failed (it could not finish: see `error`).
    pub status: String,
    /// Whether every event verified: `null` until done.
    pub ok: Option<bool>,
    /// Why a failed run could not finish (or why its last step failed, if it is being
    /// tried again).
    pub error: Option<String>,
    pub requested_by: String,
    pub requested_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub streams_checked: i64,
    pub events_checked: i64,
    pub failure_count: i64,
    /// The first 100 failures, as `/v1/audit/verify` names them.
    #[schema(value_type = Vec<Object>)]
    pub failures: Vec<serde_json::Value>,
}

#[derive(FromRow)]
struct Row {
    id: String,
    status: String,
    requested_by: String,
    requested_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    streams_checked: i64,
    events_checked: i64,
    failure_count: i64,
    failures: String,
    error: Option<String>,
}

const COLUMNS: &str = "id, status, requested_by, requested_at, started_at, finished_at, \
     streams_checked, events_checked, failure_count, failures, error";

impl From<Row> for VerificationRun {
    fn from(row: Row) -> Self {
        VerificationRun {
            ok: (row.status == "done").then_some(row.failure_count == 0),
            failures: serde_json::from_str(&row.failures).unwrap_or_default(),
            id: row.id,
            status: row.status,
            requested_by: row.requested_by,
            requested_at: row.requested_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            streams_checked: row.streams_checked,
            events_checked: row.events_checked,
            failure_count: row.failure_count,
            error: row.error,
        }
    }
}

/// A run taken by a worker: where it stands, and where its next step starts.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub run: VerificationRun,
    /// `None`: the start.
    pub resume_at: Option<String>,
    pub steps: i64,
}

/// A step's outcome, written by the lease's holder: the run's totals so far and where
/// the next step starts (`None`: the run is done).
#[derive(Debug, Clone)]
pub struct Progress<'a> {
    pub steps: i64,
    pub streams_checked: i64,
    pub events_checked: i64,
    pub failure_count: i64,
    pub failures: &'a [serde_json::Value],
    pub resume_at: Option<&'a str>,
}

pub struct VerificationRuns {
    pool: AnyPool,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn lease_end(lease: Duration) -> i64 {
    now_ms() + lease.as_millis() as i64
}

impl VerificationRuns {
    pub(crate) fn new(pool: AnyPool) -> Self {
        VerificationRuns { pool }
    }

    /// Queues a run for `by`, unless one is queued or running: then that one. Says
    /// whether the run returned is new.
    pub async fn request(&self, by: &str) -> Result<(VerificationRun, bool), ProjectionError> {
        let id = uuid::Uuid::now_v7().to_string();
        // The active run may finish between our refused insert and our read: try again.
        for _ in 0..3 {
            let inserted = sqlx::query(
                "INSERT INTO verification_runs (id, requested_by, requested_at, status, active) \
                 VALUES ($1, $2, $3, 'queued', 1) ON CONFLICT DO NOTHING",
            )
            .bind(&id)
            .bind(by)
            .bind(crate::timestamp(chrono::Utc::now()))
            .execute(&self.pool)
            .await?
            .rows_affected();
            let sql = format!("SELECT {COLUMNS} FROM verification_runs WHERE active = 1");
            let active: Option<Row> = sqlx::query_as(&sql).fetch_optional(&self.pool).await?;
            if let Some(run) = active {
                return Ok((run.into(), inserted == 1));
            }
        }
        Err(ProjectionError::Busy(
            "verification runs are being asked for faster than they finish".into(),
        ))
    }

    pub async fn get(&self, id: &str) -> Result<Option<VerificationRun>, ProjectionError> {
        let sql = format!("SELECT {COLUMNS} FROM verification_runs WHERE id = $1");
        let row: Option<Row> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Into::into))
    }

    /// Newest first.
    pub async fn list(
        &self,
        limit: i64,
        cursor: Option<&str>,
    ) -> Result<Page<VerificationRun>, ProjectionError> {
        let rows: Vec<Row> = match cursor {
            Some(cursor) => {
                let key = decode_cursor(cursor, 2)?;
                let sql = format!(
                    "SELECT {COLUMNS} FROM verification_runs WHERE requested_at < $1 \
                     OR (requested_at = $2 AND id < $3) \
                     ORDER BY requested_at DESC, id DESC LIMIT $4"
                );
                sqlx::query_as(&sql)
                    .bind(&key[0])
                    .bind(&key[0])
                    .bind(&key[1])
                    .bind(limit + 1)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM verification_runs \
                     ORDER BY requested_at DESC, id DESC LIMIT $1"
                );
                sqlx::query_as(&sql)
                    .bind(limit + 1)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        let runs = rows.into_iter().map(VerificationRun::from).collect();
        Ok(paginate(runs, limit, |run: &VerificationRun| {
            vec![run.requested_at.clone(), run.id.clone()]
        }))
    }

    /// Takes the oldest run that is queued or whose holder's lease ran out, for `owner`
    /// until `lease` from now.
    pub async fn claim(
        &self,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Claimed>, ProjectionError> {
        const TAKEABLE: &str =
            "active = 1 AND (status = 'queued' OR lease_until IS NULL OR lease_until < $1)";
        let sql = format!("SELECT id FROM verification_runs WHERE {TAKEABLE}");
        let candidate: Option<String> = sqlx::query_scalar(&sql)
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await?;
        let Some(id) = candidate else {
            return Ok(None);
        };
        // The same condition again: of two workers that both saw it, one takes it.
        let sql = format!(
            "UPDATE verification_runs SET status = 'running', lease_owner = $2, \
             lease_until = $3, started_at = COALESCE(started_at, $4) WHERE {TAKEABLE} AND id = $5"
        );
        let taken = sqlx::query(&sql)
            .bind(now_ms())
            .bind(owner)
            .bind(lease_end(lease))
            .bind(crate::timestamp(chrono::Utc::now()))
            .bind(&id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if taken == 0 {
            return Ok(None);
        }
        let sql =
            format!("SELECT {COLUMNS}, resume_at, steps FROM verification_runs WHERE id = $1");
        let row = sqlx::query(&sql).bind(&id).fetch_one(&self.pool).await?;
        use sqlx::Row as _;
        Ok(Some(Claimed {
            resume_at: row.try_get("resume_at")?,
            steps: row.try_get("steps")?,
            run: Row::from_row(&row)?.into(),
        }))
    }

    /// Writes a step's progress and extends the lease, if `owner` still holds it; once
    /// `resume_at` is `None` the run is done. Returns whether it was written.
    pub async fn record(
        &self,
        id: &str,
        owner: &str,
        lease: Duration,
        progress: Progress<'_>,
    ) -> Result<bool, ProjectionError> {
        let failures = serde_json::to_string(progress.failures).unwrap_or_else(|_| "[]".into());
        let done = progress.resume_at.is_none();
        let written = sqlx::query(
            "UPDATE verification_runs SET steps = $1, streams_checked = $2, events_checked = $3, \
             failure_count = $4, failures = $5, resume_at = $6, lease_until = $7, \
             status = $8, active = $9, finished_at = $10, attempts = 0, error = NULL \
             WHERE id = $11 AND lease_owner = $12 AND active = 1",
        )
        .bind(progress.steps)
        .bind(progress.streams_checked)
        .bind(progress.events_checked)
        .bind(progress.failure_count)
        .bind(failures)
        .bind(progress.resume_at)
        .bind(if done { None } else { Some(lease_end(lease)) })
        .bind(if done { "done" } else { "running" })
        .bind(if done { None } else { Some(1_i32) })
        .bind(done.then(|| crate::timestamp(chrono::Utc::now())))
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(written == 1)
    }

    /// Extends the lease of a run whose step is under way. Returns whether `owner` still
    /// holds it.
    pub async fn renew(
        &self,
        id: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<bool, ProjectionError> {
        let renewed = sqlx::query(
            "UPDATE verification_runs SET lease_until = $1 \
             WHERE id = $2 AND lease_owner = $3 AND active = 1",
        )
        .bind(lease_end(lease))
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(renewed == 1)
    }

    /// Records that a step failed with `error` and gives the run back to be tried
    /// again; the [`ATTEMPTS`]th failure in a row ends the run as failed.
    pub async fn failed_step(
        &self,
        id: &str,
        owner: &str,
        error: &str,
    ) -> Result<(), ProjectionError> {
        sqlx::query(
            "UPDATE verification_runs SET attempts = attempts + 1, error = $1, lease_until = 0, \
             status = CASE WHEN attempts + 1 >= $2 THEN 'failed' ELSE status END, \
             active = CASE WHEN attempts + 1 >= $2 THEN NULL ELSE active END, \
             finished_at = CASE WHEN attempts + 1 >= $2 THEN $3 ELSE finished_at END \
             WHERE id = $4 AND lease_owner = $5 AND active = 1",
        )
        .bind(error)
        .bind(ATTEMPTS)
        .bind(crate::timestamp(chrono::Utc::now()))
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives a held run back (a worker stopping): the next worker takes it at once
    /// instead of when the lease would have run out.
    pub async fn release(&self, id: &str, owner: &str) -> Result<(), ProjectionError> {
        sqlx::query(
            "UPDATE verification_runs SET lease_until = 0 \
             WHERE id = $1 AND lease_owner = $2 AND active = 1",
        )
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
