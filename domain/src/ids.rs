//! Identifiers: UUIDv7 newtypes, so a client id can never be passed where an account id
//! is expected, and new ids sort by creation time.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(Uuid);

        impl $name {
            /// A new time-ordered id (UUIDv7).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self(Uuid::nil())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// A client of the bank.
    ClientId
);
id_type!(
    /// A client's account.
    AccountId
);
id_type!(
    /// A member of staff (root admin, admin, agent, auditor).
    StaffId
);
id_type!(
    /// A transfer between two accounts.
    TransferId
);
id_type!(
    /// One movement of money on one account (a line of its transaction history).
    TransactionId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_version_7_and_ordered() {
        let first = ClientId::new();
        let second = ClientId::new();
        assert_eq!(first.as_uuid().get_version_num(), 7);
        assert!(first <= second);
    }

    #[test]
    fn parses_its_own_display() {
        let id = AccountId::new();
        assert_eq!(id.to_string().parse::<AccountId>().unwrap(), id);
        assert!("not-a-uuid".parse::<AccountId>().is_err());
    }
}
