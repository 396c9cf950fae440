//! The Transfer process: moving money between two accounts as a saga. The transfer's own
//! stream records its progress; the accounts record the money. The compensating step
//! (reversing the debit) runs when the credit side refuses, so money is never created or
//! lost. [`Transfer::next_step`] tells the process manager what to do next.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::error::{Refusal, RefusalKind};
use crate::ids::{AccountId, TransferId};
use crate::money::{Amount, Money};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransferStatus {
    #[default]
    Requested,
    /// The source account was debited; the credit is outstanding.
    Debited,
    Completed,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferCommand {
    Request {
        transfer_id: TransferId,
        from_account: AccountId,
        to_account: AccountId,
        amount: Amount,
        /// The payer's words for the payee, shown on both accounts' histories.
        reference: Option<String>,
    },
    MarkDebited,
    Complete,
    /// `compensated`: the debit was reversed (or never happened).
    Fail {
        reason: String,
        compensated: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransferEvent {
    TransferRequested {
        transfer_id: TransferId,
        from_account: AccountId,
        to_account: AccountId,
        amount: Money,
        /// Absent in transfers requested before references existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    TransferSourceDebited,
    TransferCompleted,
    TransferFailed {
        reason: String,
        compensated: bool,
    },
}

impl DomainEvent for TransferEvent {
    fn event_type(&self) -> String {
        match self {
            TransferEvent::TransferRequested { .. } => "TransferRequested",
            TransferEvent::TransferSourceDebited => "TransferSourceDebited",
            TransferEvent::TransferCompleted => "TransferCompleted",
            TransferEvent::TransferFailed { .. } => "TransferFailed",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("the transfer does not exist")]
    NotFound,
    #[error("the transfer was already requested")]
    AlreadyRequested,
    #[error("a transfer needs two different accounts")]
    SameAccount,
    #[error("the transfer is {0:?} and cannot take that step")]
    InvalidStep(TransferStatus),
}

impl Refusal for TransferError {
    fn code(&self) -> &'static str {
        match self {
            TransferError::NotFound => "transfer-not-found",
            TransferError::AlreadyRequested => "transfer-already-requested",
            TransferError::SameAccount => "same-account",
            TransferError::InvalidStep(_) => "invalid-transfer-step",
        }
    }

    fn kind(&self) -> RefusalKind {
        match self {
            TransferError::NotFound => RefusalKind::NotFound,
            TransferError::SameAccount => RefusalKind::Invalid,
            _ => RefusalKind::Conflict,
        }
    }
}

/// What the process manager must do next for a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferStep {
    DebitSource,
    CreditDestination,
    /// Reverse the source debit, then fail the transfer.
    Compensate,
    Done,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub id: Option<TransferId>,
    pub from_account: AccountId,
    pub to_account: AccountId,
    pub amount: Option<Money>,
    pub status: TransferStatus,
    pub failure_reason: Option<String>,
    #[serde(default)]
    pub reference: Option<String>,
}

impl Transfer {
    /// The next step of the saga, given whether the last attempted step was refused.
    pub fn next_step(&self, credit_refused: bool) -> TransferStep {
        match self.status {
            TransferStatus::Requested => TransferStep::DebitSource,
            TransferStatus::Debited if credit_refused => TransferStep::Compensate,
            TransferStatus::Debited => TransferStep::CreditDestination,
            TransferStatus::Completed | TransferStatus::Failed => TransferStep::Done,
        }
    }

    pub fn decide(&self, command: TransferCommand) -> Result<Vec<TransferEvent>, TransferError> {
        use TransferCommand as C;
        use TransferEvent as E;
        if !matches!(command, C::Request { .. }) && self.id.is_none() {
            return Err(TransferError::NotFound);
        }
        let event = match command {
            C::Request {
                transfer_id,
                from_account,
                to_account,
                amount,
                reference,
            } => {
                if self.id.is_some() {
                    return Err(TransferError::AlreadyRequested);
                }
                if from_account == to_account {
                    return Err(TransferError::SameAccount);
                }
                E::TransferRequested {
                    transfer_id,
                    from_account,
                    to_account,
                    amount: amount.into(),
                    reference,
                }
            }
            C::MarkDebited if self.status == TransferStatus::Requested => E::TransferSourceDebited,
            C::Complete if self.status == TransferStatus::Debited => E::TransferCompleted,
            C::Fail {
                reason,
                compensated,
            } if matches!(
                self.status,
                TransferStatus::Requested | TransferStatus::Debited
            ) =>
            {
                E::TransferFailed {
                    reason,
                    compensated,
                }
            }
            _ => return Err(TransferError::InvalidStep(self.status)),
        };
        Ok(vec![event])
    }
}

decider_aggregate!(
    Transfer,
    "transfer",
    TransferCommand,
    TransferEvent,
    TransferError
);

impl Transfer {
    /// Evolves the state by one event; never refuses.
    fn evolve(&mut self, event: TransferEvent) {
        use TransferEvent as E;
        match event {
            E::TransferRequested {
                transfer_id,
                from_account,
                to_account,
                amount,
                reference,
            } => {
                self.id = Some(transfer_id);
                self.from_account = from_account;
                self.to_account = to_account;
                self.amount = Some(amount);
                self.reference = reference;
                self.status = TransferStatus::Requested;
            }
            E::TransferSourceDebited => self.status = TransferStatus::Debited,
            E::TransferCompleted => self.status = TransferStatus::Completed,
            E::TransferFailed { reason, .. } => {
                self.status = TransferStatus::Failed;
                self.failure_reason = Some(reason);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use cqrs_es::test::TestFramework;
    use cqrs_es::Aggregate;
    use TransferCommand as C;
    use TransferEvent as E;

    type Given = TestFramework<Transfer>;

    fn account(n: u8) -> AccountId {
        format!("0192f000-0000-7000-8000-0000000000{n:02}")
            .parse()
            .unwrap()
    }

    fn id() -> TransferId {
        "0192f000-0000-7000-8000-00000000f001".parse().unwrap()
    }

    fn amount() -> Money {
        Money::positive(250, Currency::parse("EUR").unwrap()).unwrap()
    }

    fn requested() -> Vec<TransferEvent> {
        vec![E::TransferRequested {
            transfer_id: id(),
            from_account: account(1),
            to_account: account(2),
            amount: amount(),
            reference: Some("Rent March".into()),
        }]
    }

    fn state(events: Vec<TransferEvent>) -> Transfer {
        let mut transfer = Transfer::default();
        for event in events {
            transfer.apply(event);
        }
        transfer
    }

    #[test]
    fn is_requested_between_two_accounts() {
        Given::with(())
            .given_no_previous_events()
            .when(C::Request {
                transfer_id: id(),
                from_account: account(1),
                to_account: account(2),
                amount: amount().try_into().unwrap(),
                reference: Some("Rent March".into()),
            })
            .then_expect_events(requested());
        Given::with(())
            .given_no_previous_events()
            .when(C::Request {
                transfer_id: id(),
                from_account: account(1),
                to_account: account(1),
                amount: amount().try_into().unwrap(),
                reference: Some("Rent March".into()),
            })
            .then_expect_error(TransferError::SameAccount);
        Given::with(())
            .given(requested())
            .when(C::Request {
                transfer_id: id(),
                from_account: account(1),
                to_account: account(2),
                amount: amount().try_into().unwrap(),
                reference: Some("Rent March".into()),
            })
            .then_expect_error(TransferError::AlreadyRequested);
    }

    #[test]
    fn completes_after_the_debit() {
        Given::with(())
            .given(requested())
            .when(C::MarkDebited)
            .then_expect_events(vec![E::TransferSourceDebited]);
        Given::with(())
            .given([requested(), vec![E::TransferSourceDebited]].concat())
            .when(C::Complete)
            .then_expect_events(vec![E::TransferCompleted]);
        Given::with(())
            .given(requested())
            .when(C::Complete)
            .then_expect_error(TransferError::InvalidStep(TransferStatus::Requested));
    }

    #[test]
    fn fails_before_completion_only() {
        let fail = C::Fail {
            reason: "insufficient-funds".into(),
            compensated: true,
        };
        Given::with(())
            .given(requested())
            .when(fail.clone())
            .then_expect_events(vec![E::TransferFailed {
                reason: "insufficient-funds".into(),
                compensated: true,
            }]);
        Given::with(())
            .given(
                [
                    requested(),
                    vec![E::TransferSourceDebited, E::TransferCompleted],
                ]
                .concat(),
            )
            .when(fail)
            .then_expect_error(TransferError::InvalidStep(TransferStatus::Completed));
        Given::with(())
            .given_no_previous_events()
            .when(C::MarkDebited)
            .then_expect_error(TransferError::NotFound);
    }

    #[test]
    fn the_saga_steps_follow_the_state() {
        assert_eq!(
            state(requested()).next_step(false),
            TransferStep::DebitSource
        );
        let debited = state([requested(), vec![E::TransferSourceDebited]].concat());
        assert_eq!(debited.next_step(false), TransferStep::CreditDestination);
        assert_eq!(debited.next_step(true), TransferStep::Compensate);
        let done = state(
            [
                requested(),
                vec![E::TransferSourceDebited, E::TransferCompleted],
            ]
            .concat(),
        );
        assert_eq!(done.next_step(false), TransferStep::Done);
    }
}
