//! Sign-ins in AWS: Cognito, not our services, checks passwords, so its post-authentication
//! trigger (`sign-in-lambda`) tells the system log, in the same form as `crm serve`'s
//! `sign-in` entries (the staff id, the role, the method). A trigger that fails or is
//! slow fails the sign-in itself, so nothing here may: every error is logged and the
//! event handed back, and the system log is given a bounded time.

use aws_lambda_events::event::cognito::CognitoEventUserPoolsPostAuthentication;
use serde_json::json;
use std::time::Duration;

use crate::system_log::{LogEntry, SystemLog};

/// How long the trigger waits for the role lookup, and then for the system log; Cognito
/// gives a trigger 5 s in all.
pub const PATIENCE: Duration = Duration::from_secs(1);

/// The system-log entry for a successful sign-in, or `None` when the event names no user.
pub fn entry(
    event: &CognitoEventUserPoolsPostAuthentication,
    role: Option<&str>,
) -> Option<LogEntry> {
    let header = &event.cognito_event_user_pools_header;
    let username = header.user_name.as_deref()?;
    let shown: String = username.chars().take(64).collect();
    let subject = event
        .request
        .user_attributes
        .get("sub")
        .cloned()
        .unwrap_or_else(|| shown.clone());
    Some(
        LogEntry::new("info", "sign-in", format!("{shown} signed in"))
            .actor(subject, role)
            .details(json!({
                "method": "cognito",
                "client_id": header.caller_context.client_id,
                "new_device": event.request.new_device_used,
            })),
    )
}

/// The user's role: the first of their pool groups (one per role, as the directory keeps
/// them), or `None` when it cannot be told.
async fn role(
    cognito: &aws_sdk_cognitoidentityprovider::Client,
    event: &CognitoEventUserPoolsPostAuthentication,
) -> Option<String> {
    let header = &event.cognito_event_user_pools_header;
    let groups = cognito
        .admin_list_groups_for_user()
        .user_pool_id(header.user_pool_id.as_deref()?)
        .username(header.user_name.as_deref()?)
        .send()
        .await
        .map_err(|error| {
            tracing::warn!(
                error = %aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(&error),
                "the signed-in user's groups could not be read"
            )
        })
        .ok()?;
    groups.groups().first()?.group_name().map(String::from)
}

/// Records the sign-in (the role if the pool tells it within [`PATIENCE`], the entry if
/// the system log takes it within as long; never failing) and hands the event back, as
/// Cognito expects of a trigger.
pub async fn handle(
    log: Option<&SystemLog>,
    cognito: &aws_sdk_cognitoidentityprovider::Client,
    event: CognitoEventUserPoolsPostAuthentication,
) -> CognitoEventUserPoolsPostAuthentication {
    let role = tokio::time::timeout(PATIENCE, role(cognito, &event))
        .await
        .unwrap_or_else(|_| {
            tracing::warn!("the pool did not tell the user's groups in time");
            None
        });
    match (log, entry(&event, role.as_deref())) {
        (Some(log), Some(entry)) => {
            if tokio::time::timeout(PATIENCE, log.record_or_warn(entry))
                .await
                .is_err()
            {
                tracing::warn!("the system log did not answer in time: a sign-in went unrecorded");
            }
        }
        (None, _) => tracing::warn!("no system log: a sign-in went unrecorded"),
        (_, None) => tracing::warn!("a post-authentication event without a user name"),
    }
    event
}
