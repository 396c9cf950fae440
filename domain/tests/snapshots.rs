//! A snapshot is the state written out and read back: for every aggregate, over random
//! command sequences, the state restored from a snapshot taken after any event, with the
//! later events applied, equals the state replayed from the first event.

use chrono::{NaiveDate, TimeZone, Utc};
use cqrs_es::Aggregate;
use domain::account::{Account, AccountCommand, AccountType, Direction};
use domain::client::{Client, ClientCommand, ClientStanding, ContactChange};
use domain::contact::{Address, Email, PersonalDetails};
use domain::policy::Role;
use domain::staff::{NewStaff, StaffCommand, StaffUser};
use domain::transfer::{Transfer, TransferCommand};
use domain::{
    AccountId, AccountNumber, Amount, ClientId, Currency, Money, StaffId, TransactionId, TransferId,
};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

fn id<T: std::str::FromStr>(n: u8) -> T
where
    T::Err: Debug,
{
    format!("0192f000-0000-7000-8000-0000000000{n:02}")
        .parse()
        .unwrap()
}

fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}

fn amount() -> impl Strategy<Value = Amount> {
    (1i64..50_000).prop_map(|minor| Amount::new(minor, eur()).unwrap())
}

fn text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[a-z é]{0,12}")
}

/// Every event `commands` write, deciding each on the state so far; refused commands
/// write nothing.
fn events_of<A: Aggregate, E>(
    commands: Vec<A::Command>,
    decide: impl Fn(&A, A::Command) -> Result<Vec<A::Event>, E>,
) -> Vec<A::Event>
where
    A::Event: Clone,
{
    let mut state = A::default();
    let mut written = Vec::new();
    for command in commands {
        if let Ok(events) = decide(&state, command) {
            for event in events {
                state.apply(event.clone());
                written.push(event);
            }
        }
    }
    written
}

/// The property: a snapshot after any prefix, read back and brought forward, is the full
/// replay.
fn snapshots_equal_replay<A>(events: &[A::Event]) -> Result<(), TestCaseError>
where
    A: Aggregate + PartialEq + Debug + Clone + Serialize + DeserializeOwned,
    A::Event: Clone,
{
    let mut full = A::default();
    for event in events {
        full.apply(event.clone());
    }
    let mut prefix = A::default();
    for cut in 0..=events.len() {
        let stored = serde_json::to_string(&prefix).unwrap();
        let mut restored: A = serde_json::from_str(&stored).unwrap();
        prop_assert_eq!(&restored, &prefix, "state read back after {} events", cut);
        for event in &events[cut..] {
            restored.apply(event.clone());
        }
        prop_assert_eq!(
            &restored,
            &full,
            "snapshot after {} of {} events",
            cut,
            events.len()
        );
        if let Some(event) = events.get(cut) {
            prefix.apply(event.clone());
        }
    }
    Ok(())
}

fn account_command() -> impl Strategy<Value = AccountCommand> {
    let transfer = (1u8..4).prop_map(id::<TransferId>);
    let transaction = any::<u8>().prop_map(|_| TransactionId::new());
    let standing = prop_oneof![
        Just(ClientStanding::Active),
        Just(ClientStanding::Deactivated),
        Just(ClientStanding::Unknown)
    ];
    prop_oneof![
        (standing, proptest::option::of(0i64..100_000), any::<bool>()).prop_map(
            |(client, deposit, checking)| AccountCommand::Open {
                account_id: id(1),
                client_id: id(2),
                client,
                account_type: if checking {
                    AccountType::Checking
                } else {
                    AccountType::Savings
                },
                currency: eur(),
                initial_deposit: deposit.map(|minor| Money::non_negative(minor, eur()).unwrap()),
                opening_transaction_id: TransactionId::new(),
                account_number: AccountNumber::allocated(7).unwrap(),
            }
        ),
        (transaction.clone(), amount(), text()).prop_map(
            |(transaction_id, amount, description)| AccountCommand::Deposit {
                transaction_id,
                amount,
                description
            }
        ),
        (transaction.clone(), amount(), text()).prop_map(
            |(transaction_id, amount, description)| AccountCommand::Withdraw {
                transaction_id,
                amount,
                description
            }
        ),
        (transaction.clone(), 0u8..4, any::<bool>(), amount(), text()).prop_map(
            |(transaction_id, external, credit, amount, description)| {
                AccountCommand::RecordExternal {
                    transaction_id,
                    external_id: format!("core-{external}"),
                    direction: if credit {
                        Direction::Credit
                    } else {
                        Direction::Debit
                    },
                    amount,
                    booked_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
                    description,
                }
            }
        ),
        (transaction.clone(), transfer.clone(), amount(), text()).prop_map(
            |(transaction_id, transfer_id, amount, reference)| AccountCommand::DebitForTransfer {
                transaction_id,
                transfer_id,
                to_account: id(9),
                amount,
                reference,
            }
        ),
        (transaction.clone(), transfer.clone(), amount(), text()).prop_map(
            |(transaction_id, transfer_id, amount, reference)| {
                AccountCommand::CreditFromTransfer {
                    transaction_id,
                    transfer_id,
                    from_account: id(9),
                    amount,
                    reference,
                }
            }
        ),
        (transaction, transfer).prop_map(|(transaction_id, transfer_id)| {
            AccountCommand::ReverseTransferDebit {
                transaction_id,
                transfer_id,
            }
        }),
        text().prop_map(|reason| AccountCommand::Freeze { reason }),
        Just(AccountCommand::Unfreeze),
        Just(AccountCommand::Close),
    ]
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

fn email(n: u8) -> Email {
    Email::parse(&format!("person{n}@example.com")).unwrap()
}

fn client_command() -> impl Strategy<Value = ClientCommand> {
    prop_oneof![
        (1u8..4).prop_map(|agent| ClientCommand::Onboard {
            client_id: id::<ClientId>(1),
            agent_id: id::<StaffId>(agent),
            details: details(),
        }),
        (proptest::option::of(0u8..3), any::<bool>()).prop_map(|(mail, keep)| {
            ClientCommand::UpdateContact(ContactChange {
                email: mail.map(email),
                phone: None,
                address: (!keep).then(|| {
                    Address::builder()
                        .line1("2 Main St")
                        .city("Springfield")
                        .country("US")
                        .postal_code("12345")
                        .build()
                        .unwrap()
                }),
            })
        }),
        (1u8..4).prop_map(|agent| ClientCommand::Reassign { to: id(agent) }),
        "[a-z ]{1,10}".prop_map(|method| ClientCommand::Verify { method }),
        text().prop_map(|reason| ClientCommand::Deactivate { reason }),
        "[a-z ]{1,10}".prop_map(|reason| ClientCommand::Erase { reason }),
        (0u8..3, "[a-z]{1,10}").prop_map(|(mail, subject)| ClientCommand::RecordCommunication {
            recipient: email(mail),
            subject,
            body_sha256: "ab".repeat(32),
        }),
    ]
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Admin), Just(Role::Agent), Just(Role::Auditor)]
}

fn staff_command() -> impl Strategy<Value = StaffCommand> {
    prop_oneof![
        role().prop_map(|role| StaffCommand::Create {
            staff_id: id(1),
            staff: NewStaff::builder()
                .username("grace")
                .email("grace@example.com")
                .full_name("Grace Hopper")
                .role(role.as_str())
                .build()
                .unwrap(),
        }),
        Just(StaffCommand::Disable),
        Just(StaffCommand::Enable),
        Just(StaffCommand::Delete),
        role().prop_map(|to| StaffCommand::ChangeRole { to }),
        (
            proptest::option::of(0u8..3),
            proptest::option::of("[A-Z][a-z]{1,8}")
        )
            .prop_map(|(mail, full_name)| StaffCommand::ChangeDetails {
                email: mail.map(email),
                full_name
            }),
        Just(StaffCommand::RecordPasswordReset),
    ]
}

fn transfer_command() -> impl Strategy<Value = TransferCommand> {
    prop_oneof![
        (amount(), text()).prop_map(|(amount, reference)| TransferCommand::Request {
            transfer_id: id(1),
            from_account: id::<AccountId>(2),
            to_account: id::<AccountId>(3),
            amount,
            reference,
        }),
        Just(TransferCommand::MarkDebited),
        Just(TransferCommand::Complete),
        ("[a-z ]{1,10}", any::<bool>()).prop_map(|(reason, compensated)| TransferCommand::Fail {
            reason,
            compensated
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn account_snapshots_equal_replay(commands in proptest::collection::vec(account_command(), 1..60)) {
        let events = events_of::<Account, _>(commands, Account::decide);
        snapshots_equal_replay::<Account>(&events)?;
    }

    #[test]
    fn client_snapshots_equal_replay(commands in proptest::collection::vec(client_command(), 1..40)) {
        let events = events_of::<Client, _>(commands, Client::decide);
        snapshots_equal_replay::<Client>(&events)?;
    }

    #[test]
    fn staff_snapshots_equal_replay(commands in proptest::collection::vec(staff_command(), 1..40)) {
        let events = events_of::<StaffUser, _>(commands, StaffUser::decide);
        snapshots_equal_replay::<StaffUser>(&events)?;
    }

    #[test]
    fn transfer_snapshots_equal_replay(commands in proptest::collection::vec(transfer_command(), 1..20)) {
        let events = events_of::<Transfer, _>(commands, Transfer::decide);
        snapshots_equal_replay::<Transfer>(&events)?;
    }
}
