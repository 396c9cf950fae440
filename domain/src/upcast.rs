//! Reading events written under an older schema. The store is never rewritten: what
//! was appended stays byte for byte (the hash chain covers it), and every reader turns
//! old payloads into today's events here, with cqrs-es's upcasters.
//!
//! - `AccountOpened` 1 → 2: the account number ([`AccountNumber::derived`] from the id).

use cqrs_es::persist::{EventUpcaster, SemanticVersionEventUpcaster, SerializedEvent};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::LazyLock;

use crate::account_number::AccountNumber;
use crate::ids::AccountId;

pub const ACCOUNT_OPENED_VERSION: &str = "2";

/// Each upcast: the event type, the version it brings older payloads to, and how.
type Upcast = (&'static str, &'static str, fn(Value) -> Value);
const UPCASTS: &[Upcast] = &[("AccountOpened", ACCOUNT_OPENED_VERSION, account_opened_v2)];

static UPCASTERS: LazyLock<Vec<SemanticVersionEventUpcaster>> = LazyLock::new(|| {
    UPCASTS
        .iter()
        .map(|&(event_type, version, upcast)| {
            SemanticVersionEventUpcaster::new(event_type, version, Box::new(upcast))
        })
        .collect()
});

fn account_opened_v2(mut payload: Value) -> Value {
    if let Some(fields) = payload
        .get_mut("AccountOpened")
        .and_then(Value::as_object_mut)
    {
        let id = fields
            .get("account_id")
            .and_then(Value::as_str)
            .and_then(|id| id.parse::<AccountId>().ok());
        if let (Some(id), false) = (id, fields.contains_key("account_number")) {
            fields.insert(
                "account_number".into(),
                Value::String(AccountNumber::derived(id).compact()),
            );
        }
    }
    payload
}

/// The event versions readers bring old events up to, e.g. `AccountOpened@2`: part of
/// a snapshot's schema ([`crate::snapshot::schema`]).
pub fn current_versions() -> String {
    UPCASTS
        .iter()
        .map(|(event_type, version, _)| format!("{event_type}@{version}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `event` brought up to the current schema.
pub fn upcast(mut event: SerializedEvent) -> SerializedEvent {
    for upcaster in UPCASTERS.iter() {
        if upcaster.can_upcast(&event.event_type, &event.event_version) {
            event = upcaster.upcast(event);
        }
    }
    event
}

/// The payload of a stored event as today's event type `E`.
pub fn decode<E: DeserializeOwned>(event: &SerializedEvent) -> Result<E, serde_json::Error> {
    let needs_upcast = UPCASTERS
        .iter()
        .any(|u| u.can_upcast(&event.event_type, &event.event_version));
    if needs_upcast {
        serde_json::from_value(upcast(event.clone()).payload)
    } else {
        E::deserialize(&event.payload)
    }
}

/// The payload of an event read as stored text ([`crate::chain::RawEvent`]) as today's
/// event type `E`: straight from the text, unless an upcaster applies (then through
/// [`decode`]).
pub fn decode_raw<E: DeserializeOwned>(
    event: &crate::chain::RawEvent,
) -> Result<E, serde_json::Error> {
    let needs_upcast = UPCASTERS
        .iter()
        .any(|u| u.can_upcast(&event.event_type, &event.event_version));
    if !needs_upcast {
        return serde_json::from_str(&event.payload_json);
    }
    decode(&SerializedEvent::new(
        event.aggregate_id.clone(),
        event.sequence,
        event.aggregate_type.clone(),
        event.event_type.clone(),
        event.event_version.clone(),
        serde_json::from_str(&event.payload_json)?,
        event.metadata.clone(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::AccountEvent;
    use cqrs_es::DomainEvent;
    use serde_json::json;

    fn stored(version: &str, payload: Value) -> SerializedEvent {
        SerializedEvent {
            aggregate_id: "a".into(),
            sequence: 1,
            aggregate_type: "account".into(),
            event_type: "AccountOpened".into(),
            event_version: version.into(),
            payload,
            metadata: json!({}),
        }
    }

    fn opened_v1() -> Value {
        json!({"AccountOpened": {
            "account_id": "01966c5e-7f4a-7b3c-9d2e-1a2b3c4d5e6f",
            "client_id": "01966c5e-7f4a-7b3c-9d2e-000000000002",
            "account_type": "savings",
            "currency": "EUR",
            "initial_deposit": {"amount_minor": 0, "currency": "EUR"},
            "opening_transaction_id": "01966c5e-7f4a-7b3c-9d2e-000000000003"
        }})
    }

    #[test]
    fn a_version_1_opening_gets_the_number_derived_from_its_id() {
        let event: AccountEvent = decode(&stored("1", opened_v1())).unwrap();
        let AccountEvent::AccountOpened {
            account_id,
            account_number,
            ..
        } = event
        else {
            panic!("{event:?}")
        };
        assert_eq!(account_number, AccountNumber::derived(account_id));
        // Without the upcast, the old payload is not an event of today's schema.
        assert!(serde_json::from_value::<AccountEvent>(opened_v1()).is_err());
    }

    #[test]
    fn a_version_2_opening_keeps_its_allocated_number() {
        let number = AccountNumber::allocated(5).unwrap();
        let mut payload = opened_v1();
        payload["AccountOpened"]["account_number"] = json!(number.compact());
        let event: AccountEvent = decode(&stored("2", payload.clone())).unwrap();
        assert_eq!(event.event_version(), ACCOUNT_OPENED_VERSION);
        let AccountEvent::AccountOpened { account_number, .. } = event else {
            panic!()
        };
        assert_eq!(account_number, number);
        // Even a version-1 label never replaces a number that is there.
        let event: AccountEvent = decode(&stored("1", payload)).unwrap();
        assert!(
            matches!(event, AccountEvent::AccountOpened { account_number, .. } if account_number == number)
        );
    }

    #[test]
    fn other_events_pass_unchanged() {
        let mut event = stored("1", json!({"AccountClosed": null}));
        event.event_type = "AccountClosed".into();
        assert_eq!(upcast(event.clone()), event);
    }
}
