//! An event as projectors see it: the stored event plus its metadata, read once.

use domain::metadata::{ACTOR_ID, ACTOR_ROLE, CAUSATION_ID, CORRELATION_ID, OCCURRED_AT};
use event_store::StoredEvent;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    pub stored: &'a StoredEvent,
    pub occurred_at: String,
    pub actor_id: String,
    pub actor_role: String,
    pub correlation_id: String,
    pub causation_id: String,
}

impl<'a> Envelope<'a> {
    pub fn new(stored: &'a StoredEvent) -> Self {
        let meta = |key: &str| {
            stored
                .event
                .metadata
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Envelope {
            stored,
            occurred_at: meta(OCCURRED_AT),
            actor_id: meta(ACTOR_ID),
            actor_role: meta(ACTOR_ROLE),
            correlation_id: meta(CORRELATION_ID),
            causation_id: meta(CAUSATION_ID),
        }
    }

    pub fn aggregate_type(&self) -> &str {
        &self.stored.event.aggregate_type
    }

    pub fn aggregate_id(&self) -> &str {
        &self.stored.event.aggregate_id
    }

    pub fn sequence(&self) -> i64 {
        self.stored.event.sequence as i64
    }

    /// The payload as the aggregate's event type.
    pub fn payload<E: serde::de::DeserializeOwned>(&self) -> Result<E, crate::ProjectionError> {
        Ok(domain::upcast::decode(&self.stored.event)?)
    }
}
