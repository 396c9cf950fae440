//! Failed sign-ins in AWS. Cognito checks passwords and calls no trigger when one is
//! wrong, but with threat protection it keeps every attempt in the user's sign-in
//! history (`AdminListUserAuthEvents`). A scheduled Lambda (`sign-in-audit-lambda`)
//! reads the histories changed since its last run into the system log as
//! `sign-in-failed` entries, in the same form as `crm serve`'s. Each entry is keyed by
//! Cognito's event id, so a run repeated after a crash or overlapping the last one
//! records nothing twice; the read position moves only once all it read is recorded.

use aws_sdk_cognitoidentityprovider::types::{
    AuthEventType, ChallengeName, ChallengeResponse, EventResponseType, EventType, RiskDecisionType,
};
use aws_sdk_cognitoidentityprovider::Client;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde_json::json;
use std::time::Duration;

use crate::system_log::{LogEntry, SystemLog};

/// How far before the last position each run reads again: Cognito writes an attempt to
/// the history a moment after it happens, and a late one must not fall between runs.
pub const OVERLAP: Duration = Duration::from_secs(5 * 60);
/// How far back the first run reads.
pub const FIRST_LOOK_BACK: Duration = Duration::from_secs(60 * 60);
/// Histories read at once (Cognito's per-account request quota is shared with sign-ins).
const CONCURRENCY: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the user pool could not be read: {0}")]
    Pool(String),
    #[error(transparent)]
    Log(#[from] crate::ProjectionError),
}

fn pool_error<E: std::error::Error + 'static>(error: E) -> AuditError {
    AuditError::Pool(aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(error).to_string())
}

fn when(event: &AuthEventType) -> Option<DateTime<Utc>> {
    let date = event.creation_date()?;
    DateTime::from_timestamp(date.secs(), date.subsec_nanos())
}

/// The system-log entry for a failed sign-in in `username`'s history, or `None` for any
/// other event (a sign-in that passed is the post-authentication trigger's to record).
pub fn entry(username: &str, event: &AuthEventType) -> Option<LogEntry> {
    if event.event_type() != Some(&EventType::SignIn)
        || event.event_response() != Some(&EventResponseType::Fail)
    {
        return None;
    }
    let (id, at) = (event.event_id()?, when(event)?);
    let failed = |name: ChallengeName| {
        event.challenge_responses().iter().any(|c| {
            c.challenge_name() == Some(&name)
                && c.challenge_response() == Some(&ChallengeResponse::Failure)
        })
    };
    let risk = event.event_risk();
    let reason = if risk.and_then(|r| r.risk_decision()) == Some(&RiskDecisionType::Block) {
        "blocked as a risk"
    } else if failed(ChallengeName::Mfa) {
        "wrong MFA code"
    } else {
        "wrong password"
    };
    let shown: String = username.chars().take(64).collect();
    let context = event.event_context_data();
    Some(
        LogEntry::new(
            "warn",
            "sign-in-failed",
            format!("failed sign-in as {shown}"),
        )
        .details(json!({
            "method": "cognito",
            "username": shown,
            "reason": reason,
            "ip": context.and_then(|c| c.ip_address()),
            "country": context.and_then(|c| c.country()),
            "risk_level": risk.and_then(|r| r.risk_level()).map(|l| l.as_str()),
            "compromised_credentials": risk.and_then(|r| r.compromised_credentials_detected()),
        }))
        .keyed(format!("cognito-{id}"), crate::timestamp(at)),
    )
}

/// The failures in one user's history at or after `since` (Cognito lists a history
/// newest first, so reading stops at the first older event).
async fn failures_of(
    cognito: &Client,
    pool: &str,
    username: &str,
    since: DateTime<Utc>,
) -> Result<Vec<LogEntry>, AuditError> {
    let mut events = cognito
        .admin_list_user_auth_events()
        .user_pool_id(pool)
        .username(username)
        .max_results(60)
        .into_paginator()
        .items()
        .send();
    let mut found = Vec::new();
    while let Some(event) = events.next().await {
        let event = event.map_err(pool_error)?;
        if when(&event).is_some_and(|at| at < since) {
            break;
        }
        found.extend(entry(username, &event));
    }
    Ok(found)
}

/// What one run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AuditRun {
    pub users: usize,
    /// Failed sign-ins read (one already in the log is not written again).
    pub failures: usize,
}

/// Reads every user's sign-in history since the last run into `log`, then moves the read
/// position to this run's start. Any error leaves the position where it was, so the next
/// run reads the same stretch again (and records nothing twice).
pub async fn collect(
    cognito: &Client,
    log: &SystemLog,
    pool: &str,
) -> Result<AuditRun, AuditError> {
    let started = Utc::now();
    let since = match log.sign_ins_checked_through(pool).await? {
        Some(through) => DateTime::parse_from_rfc3339(&through)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(started - FIRST_LOOK_BACK)
            .min(started),
        None => started - FIRST_LOOK_BACK,
    } - OVERLAP;
    let usernames: Vec<String> = cognito
        .list_users()
        .user_pool_id(pool)
        .attributes_to_get("sub")
        .limit(60)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|user| {
            user.map_err(pool_error)
                .map(|u| u.username().map(String::from))
        })
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    let failures: Vec<Vec<LogEntry>> = futures::stream::iter(&usernames)
        .map(|username| failures_of(cognito, pool, username, since))
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    let mut run = AuditRun {
        users: usernames.len(),
        failures: 0,
    };
    for entry in failures.into_iter().flatten() {
        log.record(entry).await?;
        run.failures += 1;
    }
    log.set_sign_ins_checked_through(pool, &crate::timestamp(started))
        .await?;
    Ok(run)
}
