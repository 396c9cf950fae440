//! The root admin's StaffUser stream. The root admin is created with the directory (by
//! `crm serve` on first start, by `crm aws init` in AWS), not through the API; its
//! stream is written here so that auditors and the read models see it like any staff.

use chrono::Utc;
use domain::metadata::CommandMetadata;
use domain::policy::Role;
use domain::staff::{NewStaff, StaffCommand, StaffUser};
use domain::StaffId;
use event_store::{EventStore, Expected};

/// Records the root admin `id` as a StaffUser stream unless it exists already (either
/// may be missing after a first start that was cut short, so callers check every time).
pub async fn record_root(store: &EventStore, id: StaffId, username: &str) -> Result<(), String> {
    let stream = id.to_string();
    let existing = store
        .load::<StaffUser>(&stream)
        .await
        .map_err(|e| format!("loading the root admin: {e}"))?;
    if existing.exists() {
        return Ok(());
    }
    let staff = NewStaff::builder()
        .username(username)
        .email(format!("{username}@ledgerline.local"))
        .full_name("Root administrator")
        .role(Role::RootAdmin.as_str())
        .build()
        .map_err(|e| format!("root username: {e}"))?;
    let metadata = CommandMetadata {
        actor_id: "system".into(),
        actor_role: Role::RootAdmin,
        correlation_id: format!("bootstrap-{stream}"),
        causation_id: "bootstrap".into(),
        idempotency_key: None,
        occurred_at: Utc::now(),
    };
    store
        .execute::<StaffUser>(
            &stream,
            Expected::Any,
            &metadata,
            StaffCommand::Create {
                staff_id: id,
                staff,
            },
        )
        .await
        .map(drop)
        .map_err(|e| format!("recording the root admin: {e}"))
}
