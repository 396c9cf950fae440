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

/// The metadata an envelope carries, read from a stored event ahead of applying it
/// (see [`Decoded`]).
#[derive(Debug, Clone)]
pub(crate) struct Head {
    occurred_at: String,
    actor_id: String,
    actor_role: String,
    correlation_id: String,
    causation_id: String,
}

impl Head {
    fn of(stored: &StoredEvent) -> Self {
        let meta = |key: &str| {
            stored
                .event
                .metadata
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Head {
            occurred_at: meta(OCCURRED_AT),
            actor_id: meta(ACTOR_ID),
            actor_role: meta(ACTOR_ROLE),
            correlation_id: meta(CORRELATION_ID),
            causation_id: meta(CAUSATION_ID),
        }
    }
}

/// What applying an event needs read out of it first: its metadata and, for an account
/// event, its typed payload. Made for a whole batch on another thread while the batch
/// before is being written (see `runner::follow`).
#[derive(Debug)]
pub(crate) struct Decoded {
    head: Head,
    /// `None` for other aggregates, and when the payload does not decode (applying it
    /// then decodes it again and reports why).
    pub(crate) account: Option<domain::account::AccountEvent>,
}

impl Decoded {
    pub(crate) fn of(stored: &StoredEvent) -> Self {
        let account = (stored.event.aggregate_type == "account")
            .then(|| domain::upcast::decode(&stored.event).ok())
            .flatten();
        Decoded {
            head: Head::of(stored),
            account,
        }
    }
}

impl<'a> Envelope<'a> {
    pub fn new(stored: &'a StoredEvent) -> Self {
        Envelope::with(stored, Head::of(stored))
    }

    /// The envelope of `stored` with its metadata read already.
    pub(crate) fn with(stored: &'a StoredEvent, head: Head) -> Self {
        Envelope {
            stored,
            occurred_at: head.occurred_at,
            actor_id: head.actor_id,
            actor_role: head.actor_role,
            correlation_id: head.correlation_id,
            causation_id: head.causation_id,
        }
    }

    /// The envelope of `stored` and its typed account payload, from what was decoded
    /// ahead.
    pub(crate) fn decoded(
        stored: &'a StoredEvent,
        decoded: Decoded,
    ) -> (Self, Option<domain::account::AccountEvent>) {
        (Envelope::with(stored, decoded.head), decoded.account)
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
