//! Metadata every event carries: who did it, in which request chain, when, and the hash
//! link to the previous event of its stream. Stored as cqrs-es's string map.

use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::HashMap;

use crate::policy::Role;

pub const ACTOR_ID: &str = "actor_id";
pub const ACTOR_ROLE: &str = "actor_role";
pub const CORRELATION_ID: &str = "correlation_id";
pub const CAUSATION_ID: &str = "causation_id";
pub const IDEMPOTENCY_KEY: &str = "idempotency_key";
pub const OCCURRED_AT: &str = "occurred_at";
pub const PREVIOUS_HASH: &str = "previous_hash";
pub const HASH: &str = "hash";

/// What the caller of a command contributes to the metadata of the events it causes.
/// The event store adds `previous_hash` and `hash` when it appends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandMetadata {
    pub actor_id: String,
    pub actor_role: Role,
    pub correlation_id: String,
    /// The request or event that caused this command.
    pub causation_id: String,
    pub idempotency_key: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

impl CommandMetadata {
    /// The metadata map for one event, before hashing.
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::with_capacity(8);
        map.insert(ACTOR_ID.into(), self.actor_id.clone());
        map.insert(ACTOR_ROLE.into(), self.actor_role.as_str().into());
        map.insert(CORRELATION_ID.into(), self.correlation_id.clone());
        map.insert(CAUSATION_ID.into(), self.causation_id.clone());
        if let Some(key) = &self.idempotency_key {
            map.insert(IDEMPOTENCY_KEY.into(), key.clone());
        }
        map.insert(
            OCCURRED_AT.into(),
            self.occurred_at
                .to_rfc3339_opts(SecondsFormat::Micros, true),
        );
        map
    }
}
