//! The Client aggregate: a person the bank serves, assigned to one agent.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::contact::{Address, Email, PersonalDetails, Phone};
use crate::error::{Refusal, RefusalKind};
use crate::ids::{ClientId, StaffId};
use crate::personal::Personal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientStatus {
    #[default]
    Active,
    Deactivated,
}

/// New contact details; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactChange {
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub address: Option<Address>,
}

impl ContactChange {
    fn is_empty(&self) -> bool {
        self.email.is_none() && self.phone.is_none() && self.address.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCommand {
    Onboard {
        client_id: ClientId,
        agent_id: StaffId,
        details: PersonalDetails,
    },
    UpdateContact(ContactChange),
    Reassign {
        to: StaffId,
    },
    /// Know-your-customer checks passed; `method` names how (document, video call …).
    Verify {
        method: String,
    },
    Deactivate {
        reason: Option<String>,
    },
    /// Right to be forgotten, for a deactivated client: the personal data leaves the
    /// client's state, and the store destroys the key it was encrypted under.
    Erase {
        reason: String,
    },
    /// A message was sent to the client; the body itself is kept only as a hash.
    RecordCommunication {
        recipient: Email,
        subject: String,
        body_sha256: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientEvent {
    ClientOnboarded {
        client_id: ClientId,
        agent_id: StaffId,
        details: Personal<PersonalDetails>,
    },
    ContactDetailsUpdated(Personal<ContactChange>),
    ClientReassigned {
        from: StaffId,
        to: StaffId,
    },
    ClientVerified {
        method: String,
    },
    ClientDeactivated {
        reason: Option<String>,
    },
    ClientErased {
        reason: String,
    },
    CommunicationSent {
        recipient: Personal<Email>,
        subject: String,
        body_sha256: String,
    },
}

impl DomainEvent for ClientEvent {
    fn event_type(&self) -> String {
        match self {
            ClientEvent::ClientOnboarded { .. } => "ClientOnboarded",
            ClientEvent::ContactDetailsUpdated(_) => "ContactDetailsUpdated",
            ClientEvent::ClientReassigned { .. } => "ClientReassigned",
            ClientEvent::ClientVerified { .. } => "ClientVerified",
            ClientEvent::ClientDeactivated { .. } => "ClientDeactivated",
            ClientEvent::ClientErased { .. } => "ClientErased",
            ClientEvent::CommunicationSent { .. } => "CommunicationSent",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("the client does not exist")]
    NotFound,
    #[error("the client is already onboarded")]
    AlreadyOnboarded,
    #[error("the client is deactivated")]
    Deactivated,
    #[error("the client is still active; deactivate before erasing personal data")]
    StillActive,
    #[error("the client's personal data has been erased")]
    Erased,
    #[error("nothing to change: give at least one of email, phone, address")]
    NothingToUpdate,
    #[error("the client is already assigned to that agent")]
    SameAgent,
    #[error("the client is already verified")]
    AlreadyVerified,
}

impl Refusal for ClientError {
    fn code(&self) -> &'static str {
        match self {
            ClientError::NotFound => "client-not-found",
            ClientError::AlreadyOnboarded => "client-already-onboarded",
            ClientError::Deactivated => "client-deactivated",
            ClientError::StillActive => "client-still-active",
            ClientError::Erased => "client-erased",
            ClientError::NothingToUpdate => "nothing-to-update",
            ClientError::SameAgent => "same-agent",
            ClientError::AlreadyVerified => "client-already-verified",
        }
    }

    fn kind(&self) -> RefusalKind {
        match self {
            ClientError::NotFound => RefusalKind::NotFound,
            ClientError::NothingToUpdate => RefusalKind::Invalid,
            _ => RefusalKind::Conflict,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub id: Option<ClientId>,
    pub agent_id: StaffId,
    pub status: ClientStatus,
    pub verified: bool,
    /// `None` once erased.
    pub details: Option<PersonalDetails>,
    pub erased: bool,
    pub communications_sent: u64,
}

/// Where a client stands, as other aggregates' rules need it (accounts are opened for
/// active clients only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientStanding {
    Unknown,
    Active,
    Deactivated,
    Erased,
}

impl std::fmt::Display for ClientStanding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClientStanding::Unknown => "unknown",
            ClientStanding::Active => "active",
            ClientStanding::Deactivated => "deactivated",
            ClientStanding::Erased => "erased",
        })
    }
}

impl Client {
    pub fn standing(&self) -> ClientStanding {
        match (self.id, self.status, self.erased) {
            (None, _, _) => ClientStanding::Unknown,
            (_, _, true) => ClientStanding::Erased,
            (_, ClientStatus::Deactivated, _) => ClientStanding::Deactivated,
            _ => ClientStanding::Active,
        }
    }

    fn require_active(&self) -> Result<(), ClientError> {
        match (self.id, self.status, self.erased) {
            (None, _, _) => Err(ClientError::NotFound),
            (_, _, true) => Err(ClientError::Erased),
            (_, ClientStatus::Deactivated, _) => Err(ClientError::Deactivated),
            _ => Ok(()),
        }
    }

    pub fn decide(&self, command: ClientCommand) -> Result<Vec<ClientEvent>, ClientError> {
        use ClientCommand as C;
        use ClientEvent as E;
        let event = match command {
            C::Onboard {
                client_id,
                agent_id,
                details,
            } => {
                if self.id.is_some() {
                    return Err(ClientError::AlreadyOnboarded);
                }
                E::ClientOnboarded {
                    client_id,
                    agent_id,
                    details: details.into(),
                }
            }
            C::UpdateContact(change) => {
                self.require_active()?;
                if change.is_empty() {
                    return Err(ClientError::NothingToUpdate);
                }
                E::ContactDetailsUpdated(change.into())
            }
            C::Reassign { to } => {
                self.require_active()?;
                if to == self.agent_id {
                    return Err(ClientError::SameAgent);
                }
                E::ClientReassigned {
                    from: self.agent_id,
                    to,
                }
            }
            C::Verify { method } => {
                self.require_active()?;
                if self.verified {
                    return Err(ClientError::AlreadyVerified);
                }
                E::ClientVerified { method }
            }
            C::Deactivate { reason } => {
                self.require_active()?;
                E::ClientDeactivated { reason }
            }
            C::Erase { reason } => match (self.id, self.status, self.erased) {
                (None, _, _) => return Err(ClientError::NotFound),
                (_, _, true) => return Err(ClientError::Erased),
                (_, ClientStatus::Active, _) => return Err(ClientError::StillActive),
                _ => E::ClientErased { reason },
            },
            C::RecordCommunication {
                recipient,
                subject,
                body_sha256,
            } => {
                self.require_active()?;
                E::CommunicationSent {
                    recipient: recipient.into(),
                    subject,
                    body_sha256,
                }
            }
        };
        Ok(vec![event])
    }
}

decider_aggregate!(Client, "client", ClientCommand, ClientEvent, ClientError);

impl Client {
    /// Evolves the state by one event; never refuses.
    fn evolve(&mut self, event: ClientEvent) {
        use ClientEvent as E;
        match event {
            E::ClientOnboarded {
                client_id,
                agent_id,
                details,
            } => {
                self.id = Some(client_id);
                self.agent_id = agent_id;
                self.details = details.known();
            }
            E::ContactDetailsUpdated(change) => {
                if let (Some(details), Personal::Known(change)) = (&mut self.details, change) {
                    if let Some(email) = change.email {
                        details.email = email;
                    }
                    if let Some(phone) = change.phone {
                        details.phone = phone;
                    }
                    if let Some(address) = change.address {
                        details.address = address;
                    }
                }
            }
            E::ClientReassigned { to, .. } => self.agent_id = to,
            E::ClientVerified { .. } => self.verified = true,
            E::ClientDeactivated { .. } => self.status = ClientStatus::Deactivated,
            E::ClientErased { .. } => {
                self.details = None;
                self.erased = true;
            }
            E::CommunicationSent { .. } => self.communications_sent += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::{Address, PersonalDetails};
    use chrono::NaiveDate;
    use cqrs_es::test::TestFramework;
    use cqrs_es::Aggregate;
    use ClientCommand as C;
    use ClientEvent as E;

    type Given = TestFramework<Client>;

    fn agent(n: u8) -> StaffId {
        format!("0192f000-0000-7000-8000-0000000000{n:02}")
            .parse()
            .unwrap()
    }

    fn client_id() -> ClientId {
        "0192f000-0000-7000-8000-000000000c11".parse().unwrap()
    }

    fn details() -> PersonalDetails {
        PersonalDetails::builder()
            .first_name("Grace")
            .last_name("Hopper")
            .date_of_birth("1970-01-01")
            .gender("female")
            .email("grace@example.com")
            .phone("+15550100")
            .address(
                Address::builder()
                    .line1("1 Navy Way")
                    .city("Arlington")
                    .state("VA")
                    .country("US")
                    .postal_code("22202"),
            )
            .build(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap())
            .unwrap()
    }

    fn onboarded() -> Vec<ClientEvent> {
        vec![E::ClientOnboarded {
            client_id: client_id(),
            agent_id: agent(1),
            details: details().into(),
        }]
    }

    fn deactivated() -> Vec<ClientEvent> {
        [onboarded(), vec![E::ClientDeactivated { reason: None }]].concat()
    }

    fn email(value: &str) -> Email {
        Email::parse(value).unwrap()
    }

    #[test]
    fn onboards_once() {
        let onboard = C::Onboard {
            client_id: client_id(),
            agent_id: agent(1),
            details: details(),
        };
        Given::with(())
            .given_no_previous_events()
            .when(onboard.clone())
            .then_expect_events(onboarded());
        Given::with(())
            .given(onboarded())
            .when(onboard)
            .then_expect_error(ClientError::AlreadyOnboarded);
    }

    #[test]
    fn updates_contact_details() {
        let change = ContactChange {
            email: Some(email("g@navy.mil")),
            ..Default::default()
        };
        Given::with(())
            .given(onboarded())
            .when(C::UpdateContact(change.clone()))
            .then_expect_events(vec![E::ContactDetailsUpdated(change.clone().into())]);
        Given::with(())
            .given(onboarded())
            .when(C::UpdateContact(ContactChange::default()))
            .then_expect_error(ClientError::NothingToUpdate);
        Given::with(())
            .given(deactivated())
            .when(C::UpdateContact(change.clone()))
            .then_expect_error(ClientError::Deactivated);
        Given::with(())
            .given_no_previous_events()
            .when(C::UpdateContact(change))
            .then_expect_error(ClientError::NotFound);
    }

    #[test]
    fn the_update_changes_the_state() {
        let mut client = Client::default();
        for event in onboarded() {
            client.apply(event);
        }
        client.apply(E::ContactDetailsUpdated(
            ContactChange {
                phone: Some(Phone::parse("+15550199").unwrap()),
                ..Default::default()
            }
            .into(),
        ));
        assert_eq!(client.details.unwrap().phone.as_str(), "+15550199");
    }

    #[test]
    fn reassigns_to_another_agent() {
        Given::with(())
            .given(onboarded())
            .when(C::Reassign { to: agent(2) })
            .then_expect_events(vec![E::ClientReassigned {
                from: agent(1),
                to: agent(2),
            }]);
        Given::with(())
            .given(onboarded())
            .when(C::Reassign { to: agent(1) })
            .then_expect_error(ClientError::SameAgent);
    }

    #[test]
    fn verifies_once() {
        Given::with(())
            .given(onboarded())
            .when(C::Verify {
                method: "passport".into(),
            })
            .then_expect_events(vec![E::ClientVerified {
                method: "passport".into(),
            }]);
        Given::with(())
            .given(
                [
                    onboarded(),
                    vec![E::ClientVerified {
                        method: "passport".into(),
                    }],
                ]
                .concat(),
            )
            .when(C::Verify {
                method: "passport".into(),
            })
            .then_expect_error(ClientError::AlreadyVerified);
    }

    #[test]
    fn deactivates_once() {
        Given::with(())
            .given(onboarded())
            .when(C::Deactivate {
                reason: Some("moved abroad".into()),
            })
            .then_expect_events(vec![E::ClientDeactivated {
                reason: Some("moved abroad".into()),
            }]);
        Given::with(())
            .given(deactivated())
            .when(C::Deactivate { reason: None })
            .then_expect_error(ClientError::Deactivated);
    }

    #[test]
    fn erases_personal_data_only_after_deactivation() {
        let erase = || C::Erase {
            reason: "the client asked to be forgotten".into(),
        };
        let erased = || E::ClientErased {
            reason: "the client asked to be forgotten".into(),
        };
        Given::with(())
            .given(onboarded())
            .when(erase())
            .then_expect_error(ClientError::StillActive);
        Given::with(())
            .given(deactivated())
            .when(erase())
            .then_expect_events(vec![erased()]);
        Given::with(())
            .given([deactivated(), vec![erased()]].concat())
            .when(erase())
            .then_expect_error(ClientError::Erased);
        let mut client = Client::default();
        for event in [deactivated(), vec![erased()]].concat() {
            client.apply(event);
        }
        assert!(client.details.is_none());
        assert_eq!(client.standing(), ClientStanding::Erased);
    }

    #[test]
    fn shredded_events_replay_to_a_client_without_personal_data() {
        let mut client = Client::default();
        client.apply(E::ClientOnboarded {
            client_id: client_id(),
            agent_id: agent(1),
            details: Personal::Shredded,
        });
        client.apply(E::ContactDetailsUpdated(Personal::Shredded));
        assert_eq!(client.id, Some(client_id()));
        assert!(client.details.is_none());
    }

    #[test]
    fn records_communications_with_active_clients() {
        let command = C::RecordCommunication {
            recipient: email("grace@example.com"),
            subject: "Hello".into(),
            body_sha256: "ab".repeat(32),
        };
        Given::with(())
            .given(onboarded())
            .when(command.clone())
            .then_expect_events(vec![E::CommunicationSent {
                recipient: email("grace@example.com").into(),
                subject: "Hello".into(),
                body_sha256: "ab".repeat(32),
            }]);
        Given::with(())
            .given(deactivated())
            .when(command)
            .then_expect_error(ClientError::Deactivated);
    }
}
