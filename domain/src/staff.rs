//! The StaffUser aggregate: a person who works at the bank, in one role.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::contact::{bounded_text, Email};
use crate::error::{Refusal, RefusalKind, ValidationErrors};
use crate::ids::StaffId;
use crate::policy::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StaffStatus {
    #[default]
    Enabled,
    Disabled,
    Deleted,
}

/// A login name: 3 to 64 of `a-z 0-9 . _ -`, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    pub fn parse(value: &str) -> Result<Self, &'static str> {
        let value = value.trim().to_ascii_lowercase();
        let valid = (3..=64).contains(&value.len())
            && value.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            });
        if valid {
            Ok(Username(value))
        } else {
            Err("must be 3 to 64 characters of a-z, 0-9, '.', '_' or '-'")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Username {
    type Error = &'static str;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Username::parse(&value)
    }
}

impl From<Username> for String {
    fn from(username: Username) -> Self {
        username.0
    }
}

/// A validated new member of staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStaff {
    pub username: Username,
    pub email: Email,
    pub full_name: String,
    pub role: Role,
}

/// Builds a [`NewStaff`] from raw input, validating every field on `build()`.
#[derive(Debug, Default, Clone)]
pub struct NewStaffBuilder {
    username: String,
    email: String,
    full_name: String,
    role: String,
}

impl NewStaffBuilder {
    pub fn username(mut self, value: impl Into<String>) -> Self {
        self.username = value.into();
        self
    }
    pub fn email(mut self, value: impl Into<String>) -> Self {
        self.email = value.into();
        self
    }
    pub fn full_name(mut self, value: impl Into<String>) -> Self {
        self.full_name = value.into();
        self
    }
    pub fn role(mut self, value: impl Into<String>) -> Self {
        self.role = value.into();
        self
    }

    pub fn build(self) -> Result<NewStaff, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let username = errors.check("username", Username::parse(&self.username));
        let email = errors.check("email", Email::parse(&self.email));
        let full_name = errors.check("full_name", bounded_text(&self.full_name, 200));
        let role = errors.check(
            "role",
            Role::parse(&self.role)
                .filter(Role::is_staff)
                .ok_or("must be one of root-admin, admin, agent, auditor"),
        );
        match (username, email, full_name, role) {
            (Some(username), Some(email), Some(full_name), Some(role)) if errors.is_empty() => {
                Ok(NewStaff {
                    username,
                    email,
                    full_name,
                    role,
                })
            }
            _ => Err(errors),
        }
    }
}

impl NewStaff {
    pub fn builder() -> NewStaffBuilder {
        NewStaffBuilder::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffCommand {
    Create {
        staff_id: StaffId,
        staff: NewStaff,
    },
    Disable,
    Enable,
    Delete,
    ChangeRole {
        to: Role,
    },
    /// Correct the email or the name (validated input; `None` keeps the value).
    ChangeDetails {
        email: Option<Email>,
        full_name: Option<String>,
    },
    /// An administrator set a new password (kept by the directory, never in events).
    RecordPasswordReset,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StaffEvent {
    StaffCreated {
        staff_id: StaffId,
        username: Username,
        email: Email,
        full_name: String,
        role: Role,
    },
    StaffDisabled,
    StaffEnabled,
    StaffDeleted,
    StaffRoleChanged {
        from: Role,
        to: Role,
    },
    /// Only the fields that changed.
    StaffDetailsChanged {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<Email>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        full_name: Option<String>,
    },
    /// The password was reset by whoever the metadata names; the password is not here.
    StaffPasswordReset,
}

impl DomainEvent for StaffEvent {
    fn event_type(&self) -> String {
        match self {
            StaffEvent::StaffCreated { .. } => "StaffCreated",
            StaffEvent::StaffDisabled => "StaffDisabled",
            StaffEvent::StaffEnabled => "StaffEnabled",
            StaffEvent::StaffDeleted => "StaffDeleted",
            StaffEvent::StaffRoleChanged { .. } => "StaffRoleChanged",
            StaffEvent::StaffDetailsChanged { .. } => "StaffDetailsChanged",
            StaffEvent::StaffPasswordReset => "StaffPasswordReset",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StaffError {
    #[error("the member of staff does not exist")]
    NotFound,
    #[error("the member of staff already exists")]
    AlreadyExists,
    #[error("the member of staff is already disabled")]
    AlreadyDisabled,
    #[error("the member of staff is already enabled")]
    AlreadyEnabled,
    #[error("the member of staff has been deleted")]
    Deleted,
    #[error("the member of staff already holds that role")]
    SameRole,
    #[error("workers are machine clients, not staff")]
    NotAStaffRole,
    #[error("nothing to change: the details are already as given")]
    NoChange,
}

impl Refusal for StaffError {
    fn code(&self) -> &'static str {
        match self {
            StaffError::NotFound => "staff-not-found",
            StaffError::AlreadyExists => "staff-already-exists",
            StaffError::AlreadyDisabled => "staff-already-disabled",
            StaffError::AlreadyEnabled => "staff-already-enabled",
            StaffError::Deleted => "staff-deleted",
            StaffError::SameRole => "same-role",
            StaffError::NotAStaffRole => "not-a-staff-role",
            StaffError::NoChange => "no-change",
        }
    }

    fn kind(&self) -> RefusalKind {
        match self {
            StaffError::NotFound | StaffError::Deleted => RefusalKind::NotFound,
            StaffError::NotAStaffRole => RefusalKind::Invalid,
            _ => RefusalKind::Conflict,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffUser {
    pub id: Option<StaffId>,
    pub username: String,
    pub email: String,
    pub full_name: String,
    pub role: Option<Role>,
    pub status: StaffStatus,
}

impl StaffUser {
    fn require_existing(&self) -> Result<(), StaffError> {
        match (self.id, self.status) {
            (None, _) => Err(StaffError::NotFound),
            (_, StaffStatus::Deleted) => Err(StaffError::Deleted),
            _ => Ok(()),
        }
    }

    pub fn decide(&self, command: StaffCommand) -> Result<Vec<StaffEvent>, StaffError> {
        use StaffCommand as C;
        use StaffEvent as E;
        let event = match command {
            C::Create { staff_id, staff } => {
                if self.id.is_some() {
                    return Err(StaffError::AlreadyExists);
                }
                if !staff.role.is_staff() {
                    return Err(StaffError::NotAStaffRole);
                }
                E::StaffCreated {
                    staff_id,
                    username: staff.username,
                    email: staff.email,
                    full_name: staff.full_name,
                    role: staff.role,
                }
            }
            C::Disable => {
                self.require_existing()?;
                if self.status == StaffStatus::Disabled {
                    return Err(StaffError::AlreadyDisabled);
                }
                E::StaffDisabled
            }
            C::Enable => {
                self.require_existing()?;
                if self.status == StaffStatus::Enabled {
                    return Err(StaffError::AlreadyEnabled);
                }
                E::StaffEnabled
            }
            C::Delete => {
                self.require_existing()?;
                E::StaffDeleted
            }
            C::ChangeRole { to } => {
                self.require_existing()?;
                if !to.is_staff() {
                    return Err(StaffError::NotAStaffRole);
                }
                let from = self.role.ok_or(StaffError::NotFound)?;
                if from == to {
                    return Err(StaffError::SameRole);
                }
                E::StaffRoleChanged { from, to }
            }
            C::ChangeDetails { email, full_name } => {
                self.require_existing()?;
                let email = email.filter(|e| e.as_str() != self.email);
                let full_name = full_name.filter(|n| *n != self.full_name);
                if email.is_none() && full_name.is_none() {
                    return Err(StaffError::NoChange);
                }
                E::StaffDetailsChanged { email, full_name }
            }
            C::RecordPasswordReset => {
                self.require_existing()?;
                E::StaffPasswordReset
            }
        };
        Ok(vec![event])
    }
}

decider_aggregate!(StaffUser, "staff", StaffCommand, StaffEvent, StaffError);

impl StaffUser {
    /// Evolves the state by one event; never refuses.
    fn evolve(&mut self, event: StaffEvent) {
        use StaffEvent as E;
        match event {
            E::StaffCreated {
                staff_id,
                username,
                email,
                full_name,
                role,
            } => {
                self.id = Some(staff_id);
                self.username = username.into();
                self.email = email.into();
                self.full_name = full_name;
                self.role = Some(role);
                self.status = StaffStatus::Enabled;
            }
            E::StaffDisabled => self.status = StaffStatus::Disabled,
            E::StaffEnabled => self.status = StaffStatus::Enabled,
            E::StaffDeleted => self.status = StaffStatus::Deleted,
            E::StaffRoleChanged { to, .. } => self.role = Some(to),
            E::StaffDetailsChanged { email, full_name } => {
                if let Some(email) = email {
                    self.email = email.into();
                }
                if let Some(full_name) = full_name {
                    self.full_name = full_name;
                }
            }
            E::StaffPasswordReset => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;
    use StaffCommand as C;
    use StaffEvent as E;

    type Given = TestFramework<StaffUser>;

    fn id() -> StaffId {
        "0192f000-0000-7000-8000-00000000a001".parse().unwrap()
    }

    fn new_agent() -> NewStaff {
        NewStaff::builder()
            .username("Jane.Doe")
            .email("jane@bank.example")
            .full_name("Jane Doe")
            .role("agent")
            .build()
            .unwrap()
    }

    fn created() -> Vec<StaffEvent> {
        vec![E::StaffCreated {
            staff_id: id(),
            username: Username::parse("jane.doe").unwrap(),
            email: Email::parse("jane@bank.example").unwrap(),
            full_name: "Jane Doe".into(),
            role: Role::Agent,
        }]
    }

    fn with(extra: StaffEvent) -> Vec<StaffEvent> {
        [created(), vec![extra]].concat()
    }

    #[test]
    fn the_builder_names_every_bad_field() {
        let errors = NewStaff::builder()
            .username("x")
            .email("nope")
            .full_name(" ")
            .role("worker")
            .build()
            .unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["username", "email", "full_name", "role"]);
    }

    #[test]
    fn creates_once() {
        let create = C::Create {
            staff_id: id(),
            staff: new_agent(),
        };
        Given::with(())
            .given_no_previous_events()
            .when(create.clone())
            .then_expect_events(created());
        Given::with(())
            .given(created())
            .when(create)
            .then_expect_error(StaffError::AlreadyExists);
    }

    #[test]
    fn refuses_a_worker_as_staff() {
        let mut staff = new_agent();
        staff.role = Role::Worker;
        Given::with(())
            .given_no_previous_events()
            .when(C::Create {
                staff_id: id(),
                staff,
            })
            .then_expect_error(StaffError::NotAStaffRole);
    }

    #[test]
    fn disables_and_enables() {
        Given::with(())
            .given(created())
            .when(C::Disable)
            .then_expect_events(vec![E::StaffDisabled]);
        Given::with(())
            .given(with(E::StaffDisabled))
            .when(C::Disable)
            .then_expect_error(StaffError::AlreadyDisabled);
        Given::with(())
            .given(with(E::StaffDisabled))
            .when(C::Enable)
            .then_expect_events(vec![E::StaffEnabled]);
        Given::with(())
            .given(created())
            .when(C::Enable)
            .then_expect_error(StaffError::AlreadyEnabled);
    }

    #[test]
    fn deletes_for_good() {
        Given::with(())
            .given(created())
            .when(C::Delete)
            .then_expect_events(vec![E::StaffDeleted]);
        for command in [
            C::Delete,
            C::Enable,
            C::Disable,
            C::ChangeRole { to: Role::Auditor },
        ] {
            Given::with(())
                .given(with(E::StaffDeleted))
                .when(command)
                .then_expect_error(StaffError::Deleted);
        }
        Given::with(())
            .given_no_previous_events()
            .when(C::Delete)
            .then_expect_error(StaffError::NotFound);
    }

    #[test]
    fn changes_role() {
        Given::with(())
            .given(created())
            .when(C::ChangeRole { to: Role::Auditor })
            .then_expect_events(vec![E::StaffRoleChanged {
                from: Role::Agent,
                to: Role::Auditor,
            }]);
        Given::with(())
            .given(created())
            .when(C::ChangeRole { to: Role::Agent })
            .then_expect_error(StaffError::SameRole);
        Given::with(())
            .given(created())
            .when(C::ChangeRole { to: Role::Worker })
            .then_expect_error(StaffError::NotAStaffRole);
    }

    #[test]
    fn changes_only_the_details_that_differ() {
        let email = |text: &str| Email::parse(text).unwrap();
        Given::with(())
            .given(created())
            .when(C::ChangeDetails {
                email: Some(email("jane.doe@bank.example")),
                full_name: Some("Jane Doe".into()),
            })
            .then_expect_events(vec![E::StaffDetailsChanged {
                email: Some(email("jane.doe@bank.example")),
                full_name: None,
            }]);
        Given::with(())
            .given(created())
            .when(C::ChangeDetails {
                email: Some(email("jane@bank.example")),
                full_name: None,
            })
            .then_expect_error(StaffError::NoChange);
        let deleted = [created(), vec![E::StaffDeleted]].concat();
        Given::with(())
            .given(deleted.clone())
            .when(C::ChangeDetails {
                email: None,
                full_name: Some("J. Doe".into()),
            })
            .then_expect_error(StaffError::Deleted);
        Given::with(())
            .given(deleted)
            .when(C::RecordPasswordReset)
            .then_expect_error(StaffError::Deleted);
        Given::with(())
            .given(created())
            .when(C::RecordPasswordReset)
            .then_expect_events(vec![E::StaffPasswordReset]);
    }
}
