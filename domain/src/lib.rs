//! Ledgerline's business rules. Everything here is pure: aggregates decide on commands
//! and evolve from events, value types refuse invalid values, the authorization policy
//! is a function of actor and action, and the event hash chain is computed and checked
//! over plain data. IO (stores, HTTP, clocks) lives in the crates around this one.

/// Implements cqrs-es's `Aggregate` for a decider: `handle` writes what `decide` returns
/// (applying each event as it goes), `apply` is `evolve`. One place for what every
/// aggregate does the same way.
macro_rules! decider_aggregate {
    ($aggregate:ty, $type_name:literal, $command:ty, $event:ty, $error:ty) => {
        impl cqrs_es::Aggregate for $aggregate {
            const TYPE: &'static str = $type_name;
            type Command = $command;
            type Event = $event;
            type Error = $error;
            type Services = ();

            async fn handle(
                &mut self,
                command: Self::Command,
                _services: &Self::Services,
                sink: &cqrs_es::event_sink::EventSink<Self>,
            ) -> Result<(), Self::Error> {
                for event in self.decide(command)? {
                    sink.write(event, self).await;
                }
                Ok(())
            }

            fn apply(&mut self, event: Self::Event) {
                self.evolve(event);
            }
        }
    };
}

pub mod account;
pub mod account_number;
pub mod chain;
pub mod client;
pub mod contact;
pub mod error;
pub mod ids;
pub mod merkle;
pub mod metadata;
pub mod money;
pub mod personal;
pub mod policy;
pub mod snapshot;
pub mod staff;
pub mod transfer;
pub mod upcast;

pub use account_number::AccountNumber;
pub use error::{Refusal, RefusalKind, ValidationError, ValidationErrors};
pub use ids::{AccountId, ClientId, StaffId, TransactionId, TransferId};
pub use money::{Amount, Currency, Money};
