//! A client's personal data in events, and where it sits in them. The store encrypts
//! these fields under the client's own data key; erasing the client destroys that key,
//! and from then on every reader sees the fields as [`Personal::Shredded`] while the
//! events themselves, and every hash over them, stay as they were.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A personal field of an event: known, or shredded (its key destroyed on erasure).
/// Stored as the value itself; `null` once shredded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Personal<T> {
    Known(T),
    Shredded,
}

impl<T> Personal<T> {
    pub fn known(self) -> Option<T> {
        match self {
            Personal::Known(value) => Some(value),
            Personal::Shredded => None,
        }
    }

    pub fn as_known(&self) -> Option<&T> {
        match self {
            Personal::Known(value) => Some(value),
            Personal::Shredded => None,
        }
    }
}

impl<T> From<T> for Personal<T> {
    fn from(value: T) -> Self {
        Personal::Known(value)
    }
}

impl<T: Serialize> Serialize for Personal<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_known().serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Personal<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(deserializer)?.map_or(Personal::Shredded, Personal::Known))
    }
}

/// The aggregate whose events carry personal data.
pub const AGGREGATE: &str = "client";

/// Where personal data sits in a client event's stored payload
/// (`{"<event type>": <body>}`): the body's field, or the whole body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Field(&'static str),
    Body,
}

const PLACES: &[(&str, Place)] = &[
    ("ClientOnboarded", Place::Field("details")),
    ("ContactDetailsUpdated", Place::Body),
    ("CommunicationSent", Place::Field("recipient")),
];

/// Where the personal data of an event of this type sits, if it carries any.
pub fn place(aggregate_type: &str, event_type: &str) -> Option<Place> {
    if aggregate_type != AGGREGATE {
        return None;
    }
    PLACES
        .iter()
        .find(|(name, _)| *name == event_type)
        .map(|&(_, place)| place)
}

impl Place {
    /// The name of the place, bound into the ciphertext so it cannot be moved elsewhere.
    pub fn name(&self) -> &'static str {
        match self {
            Place::Field(field) => field,
            Place::Body => "",
        }
    }

    /// The personal value in `payload`, if present and not null.
    pub fn value_mut<'a>(
        &self,
        payload: &'a mut serde_json::Value,
        event_type: &str,
    ) -> Option<&'a mut serde_json::Value> {
        let body = payload.get_mut(event_type)?;
        let value = match self {
            Place::Field(field) => body.get_mut(*field)?,
            Place::Body => body,
        };
        (!value.is_null()).then_some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientEvent;
    use crate::contact::Email;
    use cqrs_es::DomainEvent;
    use serde_json::json;

    #[test]
    fn a_shredded_field_is_null_and_reads_back_as_shredded() {
        let sent = ClientEvent::CommunicationSent {
            recipient: Personal::Shredded,
            subject: "Hello".into(),
            body_sha256: "ab".repeat(32),
        };
        let stored = serde_json::to_value(&sent).unwrap();
        assert_eq!(stored["CommunicationSent"]["recipient"], json!(null));
        assert_eq!(serde_json::from_value::<ClientEvent>(stored).unwrap(), sent);
    }

    #[test]
    fn every_place_names_a_value_of_its_event() {
        let known = ClientEvent::CommunicationSent {
            recipient: Email::parse("grace@example.com").unwrap().into(),
            subject: "Hello".into(),
            body_sha256: "ab".repeat(32),
        };
        let mut stored = serde_json::to_value(&known).unwrap();
        let at = place("client", &known.event_type()).unwrap();
        assert_eq!(
            at.value_mut(&mut stored, "CommunicationSent").cloned(),
            Some(json!("grace@example.com"))
        );
        assert_eq!(place("account", "CommunicationSent"), None);
        assert_eq!(place("client", "ClientVerified"), None);
    }
}
