//! Sign-ins and failed sign-ins go to the system log.

use async_trait::async_trait;
use identity::{DirectoryUser, SignInLog};
use projections::{LogEntry, SystemLog};
use serde_json::json;
use std::sync::Arc;

pub(crate) struct SystemLogSignIns(pub(crate) Arc<SystemLog>);

#[async_trait]
impl SignInLog for SystemLogSignIns {
    async fn signed_in(&self, user: &DirectoryUser, method: &str) {
        let entry = LogEntry::new("info", "sign-in", format!("{} signed in", user.username))
            .actor(user.id.to_string(), Some(user.role.as_str()))
            .details(json!({"method": method}));
        self.0.record_or_warn(entry).await;
    }

    async fn sign_in_failed(&self, username: &str, method: &str) {
        let shown: String = username.chars().take(64).collect();
        let entry = LogEntry::new(
            "warn",
            "sign-in-failed",
            format!("failed sign-in as {shown}"),
        )
        .details(json!({"method": method, "username": shown}));
        self.0.record_or_warn(entry).await;
    }
}
