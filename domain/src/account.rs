//! The Account aggregate: one client's savings or checking account in one currency.
//! Invariants: the balance never goes below zero, a frozen or closed account takes no
//! movement, an account closes only at zero, the currency never changes, and an external
//! transaction id or transfer id has an effect at most once.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use crate::account_number::AccountNumber;
use crate::client::ClientStanding;
use crate::error::{Refusal, RefusalKind};
use crate::ids::{AccountId, ClientId, TransactionId, TransferId};
use crate::money::{Amount, Currency, Money};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountType {
    #[default]
    Savings,
    Checking,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    #[default]
    Open,
    Frozen,
    Closed,
}

/// Money entering (credit) or leaving (debit) an account, as the core system books it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Credit,
    Debit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountCommand {
    Open {
        account_id: AccountId,
        client_id: ClientId,
        /// Where the client stands ([`crate::client::Client::standing`]): accounts are
        /// opened for active clients only.
        client: ClientStanding,
        account_type: AccountType,
        currency: Currency,
        initial_deposit: Option<Money>,
        /// Names the opening deposit in the transaction history.
        opening_transaction_id: TransactionId,
        /// Allocated by the store's sequence before the command is decided.
        account_number: AccountNumber,
    },
    Deposit {
        transaction_id: TransactionId,
        amount: Amount,
        description: Option<String>,
    },
    Withdraw {
        transaction_id: TransactionId,
        amount: Amount,
        description: Option<String>,
    },
    /// A transaction booked by the external core system; a repeated id is a no-op.
    RecordExternal {
        transaction_id: TransactionId,
        external_id: String,
        direction: Direction,
        amount: Amount,
        booked_at: DateTime<Utc>,
        description: Option<String>,
    },
    /// The first step of a transfer; a repeated transfer id is a no-op.
    DebitForTransfer {
        transaction_id: TransactionId,
        transfer_id: TransferId,
        to_account: AccountId,
        amount: Amount,
        reference: Option<String>,
    },
    /// The second step of a transfer; a repeated transfer id is a no-op.
    CreditFromTransfer {
        transaction_id: TransactionId,
        transfer_id: TransferId,
        from_account: AccountId,
        amount: Amount,
        reference: Option<String>,
    },
    /// The compensation when the credit side failed: gives the debited amount back. It
    /// ignores freezes and closure on purpose; compensation must not fail.
    ReverseTransferDebit {
        transaction_id: TransactionId,
        transfer_id: TransferId,
    },
    Freeze {
        reason: Option<String>,
    },
    Unfreeze,
    Close,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountEvent {
    AccountOpened {
        account_id: AccountId,
        client_id: ClientId,
        account_type: AccountType,
        currency: Currency,
        initial_deposit: Money,
        opening_transaction_id: TransactionId,
        /// Since event version 2; version 1 events are upcast with
        /// [`AccountNumber::derived`] (see [`crate::upcast`]).
        account_number: AccountNumber,
    },
    MoneyDeposited {
        transaction_id: TransactionId,
        amount: Money,
        description: Option<String>,
        balance_after: Money,
    },
    MoneyWithdrawn {
        transaction_id: TransactionId,
        amount: Money,
        description: Option<String>,
        balance_after: Money,
    },
    ExternalTransactionRecorded {
        transaction_id: TransactionId,
        external_id: String,
        direction: Direction,
        amount: Money,
        booked_at: DateTime<Utc>,
        description: Option<String>,
        balance_after: Money,
    },
    TransferDebited {
        transaction_id: TransactionId,
        transfer_id: TransferId,
        to_account: AccountId,
        amount: Money,
        balance_after: Money,
        /// The payer's words for the payee (absent before references existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    TransferCredited {
        transaction_id: TransactionId,
        transfer_id: TransferId,
        from_account: AccountId,
        amount: Money,
        balance_after: Money,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    TransferDebitReversed {
        transaction_id: TransactionId,
        transfer_id: TransferId,
        amount: Money,
        balance_after: Money,
    },
    /// This account refused its side of a transfer (`reason` is the refusal's code). It
    /// is the decision, made once: every later attempt of the same transfer on this
    /// account gets the same answer, so two process managers driving one transfer can
    /// never see different outcomes (one compensating while the other credits).
    TransferRefused {
        transfer_id: TransferId,
        reason: String,
    },
    AccountFrozen {
        reason: Option<String>,
    },
    AccountUnfrozen,
    AccountClosed,
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            AccountEvent::AccountOpened { .. } => "AccountOpened",
            AccountEvent::MoneyDeposited { .. } => "MoneyDeposited",
            AccountEvent::MoneyWithdrawn { .. } => "MoneyWithdrawn",
            AccountEvent::ExternalTransactionRecorded { .. } => "ExternalTransactionRecorded",
            AccountEvent::TransferDebited { .. } => "TransferDebited",
            AccountEvent::TransferCredited { .. } => "TransferCredited",
            AccountEvent::TransferDebitReversed { .. } => "TransferDebitReversed",
            AccountEvent::TransferRefused { .. } => "TransferRefused",
            AccountEvent::AccountFrozen { .. } => "AccountFrozen",
            AccountEvent::AccountUnfrozen => "AccountUnfrozen",
            AccountEvent::AccountClosed => "AccountClosed",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        match self {
            AccountEvent::AccountOpened { .. } => crate::upcast::ACCOUNT_OPENED_VERSION,
            _ => "1",
        }
        .to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("the account does not exist")]
    NotFound,
    #[error("the account is already open")]
    AlreadyOpen,
    #[error("the amount is in {given}, the account holds {account}")]
    CurrencyMismatch { given: Currency, account: Currency },
    #[error("insufficient funds: the balance is {balance}")]
    InsufficientFunds { balance: Money },
    #[error("the account is frozen")]
    Frozen,
    #[error("the account is closed")]
    Closed,
    #[error("the account is not frozen")]
    NotFrozen,
    #[error("the account is already frozen")]
    AlreadyFrozen,
    #[error("the account can only be closed at a zero balance; it holds {balance}")]
    BalanceNotZero { balance: Money },
    #[error("the resulting balance would exceed the maximum an account may hold")]
    BalanceLimit,
    #[error("transfer {0} was never debited from this account")]
    TransferNotDebited(TransferId),
    #[error("a transfer cannot go from an account to itself")]
    SameAccount,
    #[error("the external transaction id must be 1 to 100 printable characters")]
    InvalidExternalId,
    #[error("accounts can only be opened for active clients; this one is {0}")]
    ClientNotActive(ClientStanding),
}

impl Refusal for AccountError {
    fn code(&self) -> &'static str {
        match self {
            AccountError::NotFound => "account-not-found",
            AccountError::AlreadyOpen => "account-already-open",
            AccountError::CurrencyMismatch { .. } => "currency-mismatch",
            AccountError::InsufficientFunds { .. } => "insufficient-funds",
            AccountError::Frozen => "account-frozen",
            AccountError::Closed => "account-closed",
            AccountError::NotFrozen => "account-not-frozen",
            AccountError::AlreadyFrozen => "account-already-frozen",
            AccountError::BalanceNotZero { .. } => "balance-not-zero",
            AccountError::BalanceLimit => "balance-limit",
            AccountError::TransferNotDebited(_) => "transfer-not-debited",
            AccountError::SameAccount => "same-account",
            AccountError::InvalidExternalId => "invalid-external-id",
            // The code the API has always answered with, for erased clients too.
            AccountError::ClientNotActive(_) => "client-deactivated",
        }
    }

    fn kind(&self) -> RefusalKind {
        match self {
            AccountError::NotFound => RefusalKind::NotFound,
            AccountError::CurrencyMismatch { .. }
            | AccountError::InvalidExternalId
            | AccountError::SameAccount => RefusalKind::Invalid,
            _ => RefusalKind::Conflict,
        }
    }
}

/// The state of one account, evolved from its events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// `None` until the account is opened.
    pub id: Option<AccountId>,
    #[serde(default)]
    pub number: Option<AccountNumber>,
    pub client_id: ClientId,
    pub account_type: AccountType,
    pub status: AccountStatus,
    pub balance: Money,
    pub external_ids: BTreeSet<String>,
    pub transfers_debited: BTreeSet<TransferId>,
    pub transfers_credited: BTreeSet<TransferId>,
    pub transfers_reversed: BTreeSet<TransferId>,
    /// Amount of each transfer debited and not reversed, for compensation.
    pub pending_debits: Vec<(TransferId, Money)>,
    /// Transfers this account refused, with the refusal's code.
    #[serde(default)]
    pub transfers_refused: std::collections::BTreeMap<TransferId, String>,
}

impl Account {
    pub fn currency(&self) -> Currency {
        self.balance.currency()
    }

    fn require_open(&self) -> Result<(), AccountError> {
        match (self.id, self.status) {
            (None, _) => Err(AccountError::NotFound),
            (_, AccountStatus::Frozen) => Err(AccountError::Frozen),
            (_, AccountStatus::Closed) => Err(AccountError::Closed),
            _ => Ok(()),
        }
    }

    fn require_currency(&self, amount: Money) -> Result<(), AccountError> {
        if amount.currency() == self.currency() {
            Ok(())
        } else {
            Err(AccountError::CurrencyMismatch {
                given: amount.currency(),
                account: self.currency(),
            })
        }
    }

    fn credited(&self, amount: Money) -> Result<Money, AccountError> {
        self.require_currency(amount)?;
        self.balance
            .checked_add(amount)
            .ok_or(AccountError::BalanceLimit)
    }

    fn debited(&self, amount: Money) -> Result<Money, AccountError> {
        self.require_currency(amount)?;
        self.balance
            .checked_sub(amount)
            .ok_or(AccountError::InsufficientFunds {
                balance: self.balance,
            })
    }

    /// Why this account refused its side of `transfer`, if it did.
    pub fn transfer_refusal(&self, transfer: TransferId) -> Option<&str> {
        self.transfers_refused.get(&transfer).map(String::as_str)
    }

    /// A transfer step's refusal becomes a recorded decision; refusals that mean the
    /// step was asked wrongly (no account, same account) stay errors.
    fn refuse_transfer(
        transfer_id: TransferId,
        refusal: AccountError,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        match refusal {
            AccountError::NotFound | AccountError::SameAccount => Err(refusal),
            refusal => Ok(vec![AccountEvent::TransferRefused {
                transfer_id,
                reason: refusal.code().to_string(),
            }]),
        }
    }

    /// Decides which events `command` causes, without changing anything.
    pub fn decide(&self, command: AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        use AccountCommand as C;
        use AccountEvent as E;
        if let C::Open { .. } = command {
            if self.id.is_some() {
                return Err(AccountError::AlreadyOpen);
            }
        } else if self.id.is_none() {
            return Err(AccountError::NotFound);
        }
        let events = match command {
            C::Open {
                account_id,
                client_id,
                client,
                account_type,
                currency,
                initial_deposit,
                opening_transaction_id,
                account_number,
            } => {
                let initial_deposit = initial_deposit.unwrap_or(Money::zero(currency));
                if initial_deposit.currency() != currency {
                    return Err(AccountError::CurrencyMismatch {
                        given: initial_deposit.currency(),
                        account: currency,
                    });
                }
                if client != ClientStanding::Active {
                    return Err(AccountError::ClientNotActive(client));
                }
                vec![E::AccountOpened {
                    account_id,
                    client_id,
                    account_type,
                    currency,
                    initial_deposit,
                    opening_transaction_id,
                    account_number,
                }]
            }
            C::Deposit {
                transaction_id,
                amount,
                description,
            } => {
                let amount = Money::from(amount);
                self.require_open()?;
                let balance_after = self.credited(amount)?;
                vec![E::MoneyDeposited {
                    transaction_id,
                    amount,
                    description,
                    balance_after,
                }]
            }
            C::Withdraw {
                transaction_id,
                amount,
                description,
            } => {
                let amount = Money::from(amount);
                self.require_open()?;
                let balance_after = self.debited(amount)?;
                vec![E::MoneyWithdrawn {
                    transaction_id,
                    amount,
                    description,
                    balance_after,
                }]
            }
            C::RecordExternal {
                transaction_id,
                external_id,
                direction,
                amount,
                booked_at,
                description,
            } => {
                let amount = Money::from(amount);
                let valid_id = !external_id.is_empty()
                    && external_id.chars().count() <= 100
                    && !external_id.chars().any(char::is_control);
                if !valid_id {
                    return Err(AccountError::InvalidExternalId);
                }
                if self.external_ids.contains(&external_id) {
                    return Ok(vec![]);
                }
                self.require_open()?;
                let balance_after = match direction {
                    Direction::Credit => self.credited(amount)?,
                    Direction::Debit => self.debited(amount)?,
                };
                vec![E::ExternalTransactionRecorded {
                    transaction_id,
                    external_id,
                    direction,
                    amount,
                    booked_at,
                    description,
                    balance_after,
                }]
            }
            C::DebitForTransfer {
                transaction_id,
                transfer_id,
                to_account,
                amount,
                reference,
            } => {
                let amount = Money::from(amount);
                if self.transfers_debited.contains(&transfer_id)
                    || self.transfers_refused.contains_key(&transfer_id)
                {
                    return Ok(vec![]);
                }
                if Some(to_account) == self.id {
                    return Err(AccountError::SameAccount);
                }
                let balance_after = match self.require_open().and_then(|()| self.debited(amount)) {
                    Ok(balance) => balance,
                    Err(refusal) => return Self::refuse_transfer(transfer_id, refusal),
                };
                vec![E::TransferDebited {
                    transaction_id,
                    transfer_id,
                    to_account,
                    amount,
                    balance_after,
                    reference,
                }]
            }
            C::CreditFromTransfer {
                transaction_id,
                transfer_id,
                from_account,
                amount,
                reference,
            } => {
                let amount = Money::from(amount);
                if self.transfers_credited.contains(&transfer_id)
                    || self.transfers_refused.contains_key(&transfer_id)
                {
                    return Ok(vec![]);
                }
                if Some(from_account) == self.id {
                    return Err(AccountError::SameAccount);
                }
                let balance_after = match self.require_open().and_then(|()| self.credited(amount)) {
                    Ok(balance) => balance,
                    Err(refusal) => return Self::refuse_transfer(transfer_id, refusal),
                };
                vec![E::TransferCredited {
                    transaction_id,
                    transfer_id,
                    from_account,
                    amount,
                    balance_after,
                    reference,
                }]
            }
            C::ReverseTransferDebit {
                transaction_id,
                transfer_id,
            } => {
                if self.transfers_reversed.contains(&transfer_id) {
                    return Ok(vec![]);
                }
                let (_, amount) = self
                    .pending_debits
                    .iter()
                    .find(|(id, _)| *id == transfer_id)
                    .copied()
                    .ok_or(AccountError::TransferNotDebited(transfer_id))?;
                let balance_after = self.credited(amount)?;
                vec![E::TransferDebitReversed {
                    transaction_id,
                    transfer_id,
                    amount,
                    balance_after,
                }]
            }
            C::Freeze { reason } => match self.status {
                AccountStatus::Open => vec![E::AccountFrozen { reason }],
                AccountStatus::Frozen => return Err(AccountError::AlreadyFrozen),
                AccountStatus::Closed => return Err(AccountError::Closed),
            },
            C::Unfreeze => match self.status {
                AccountStatus::Frozen => vec![E::AccountUnfrozen],
                AccountStatus::Open => return Err(AccountError::NotFrozen),
                AccountStatus::Closed => return Err(AccountError::Closed),
            },
            C::Close => {
                self.require_open()?;
                if !self.balance.is_zero() {
                    return Err(AccountError::BalanceNotZero {
                        balance: self.balance,
                    });
                }
                vec![E::AccountClosed]
            }
        };
        Ok(events)
    }
}

decider_aggregate!(
    Account,
    "account",
    AccountCommand,
    AccountEvent,
    AccountError
);

impl Account {
    /// Evolves the state by one event; never refuses.
    fn evolve(&mut self, event: AccountEvent) {
        use AccountEvent as E;
        match event {
            E::AccountOpened {
                account_id,
                client_id,
                account_type,
                initial_deposit,
                account_number,
                ..
            } => {
                self.id = Some(account_id);
                self.number = Some(account_number);
                self.client_id = client_id;
                self.account_type = account_type;
                self.status = AccountStatus::Open;
                self.balance = initial_deposit;
            }
            E::MoneyDeposited { balance_after, .. } | E::MoneyWithdrawn { balance_after, .. } => {
                self.balance = balance_after;
            }
            E::ExternalTransactionRecorded {
                external_id,
                balance_after,
                ..
            } => {
                self.external_ids.insert(external_id);
                self.balance = balance_after;
            }
            E::TransferDebited {
                transfer_id,
                amount,
                balance_after,
                ..
            } => {
                self.transfers_debited.insert(transfer_id);
                self.pending_debits.push((transfer_id, amount));
                self.balance = balance_after;
            }
            E::TransferCredited {
                transfer_id,
                balance_after,
                ..
            } => {
                self.transfers_credited.insert(transfer_id);
                self.balance = balance_after;
            }
            E::TransferDebitReversed {
                transfer_id,
                balance_after,
                ..
            } => {
                self.transfers_reversed.insert(transfer_id);
                self.pending_debits.retain(|(id, _)| *id != transfer_id);
                self.balance = balance_after;
            }
            E::TransferRefused {
                transfer_id,
                reason,
            } => {
                self.transfers_refused.insert(transfer_id, reason);
            }
            E::AccountFrozen { .. } => self.status = AccountStatus::Frozen,
            E::AccountUnfrozen => self.status = AccountStatus::Open,
            E::AccountClosed => self.status = AccountStatus::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;
    use AccountCommand as C;
    use AccountEvent as E;

    type Given = TestFramework<Account>;

    fn eur(amount: i64) -> Money {
        Money::non_negative(amount, Currency::parse("EUR").unwrap()).unwrap()
    }

    fn usd(amount: i64) -> Money {
        Money::positive(amount, Currency::parse("USD").unwrap()).unwrap()
    }

    fn amt(amount: i64) -> Amount {
        Amount::new(amount, Currency::parse("EUR").unwrap()).unwrap()
    }

    fn ids() -> (AccountId, ClientId) {
        (
            "0192f000-0000-7000-8000-000000000001".parse().unwrap(),
            "0192f000-0000-7000-8000-000000000002".parse().unwrap(),
        )
    }

    fn opened(balance: i64) -> Vec<AccountEvent> {
        let (account_id, client_id) = ids();
        vec![E::AccountOpened {
            account_id,
            client_id,
            account_type: AccountType::Checking,
            currency: Currency::parse("EUR").unwrap(),
            initial_deposit: eur(balance),
            opening_transaction_id: tx(),
            account_number: number(),
        }]
    }

    fn number() -> AccountNumber {
        AccountNumber::allocated(42).unwrap()
    }

    fn other_account() -> AccountId {
        "0192f000-0000-7000-8000-0000000000ff".parse().unwrap()
    }

    fn tx() -> TransactionId {
        "0192f000-0000-7000-8000-0000000000bb".parse().unwrap()
    }

    fn transfer() -> TransferId {
        "0192f000-0000-7000-8000-0000000000aa".parse().unwrap()
    }

    #[test]
    fn accounts_are_opened_for_active_clients_only() {
        let (account_id, client_id) = ids();
        for standing in [
            ClientStanding::Deactivated,
            ClientStanding::Erased,
            ClientStanding::Unknown,
        ] {
            let refusal = AccountError::ClientNotActive(standing);
            assert_eq!(refusal.code(), "client-deactivated");
            assert_eq!(refusal.kind(), RefusalKind::Conflict);
            Given::with(())
                .given_no_previous_events()
                .when(C::Open {
                    account_id,
                    client_id,
                    client: standing,
                    account_type: AccountType::Checking,
                    currency: Currency::parse("EUR").unwrap(),
                    initial_deposit: None,
                    opening_transaction_id: tx(),
                    account_number: number(),
                })
                .then_expect_error(refusal);
        }
    }

    #[test]
    fn opens_with_an_initial_deposit() {
        let (account_id, client_id) = ids();
        Given::with(())
            .given_no_previous_events()
            .when(C::Open {
                account_id,
                client_id,
                client: ClientStanding::Active,
                account_type: AccountType::Checking,
                currency: Currency::parse("EUR").unwrap(),
                initial_deposit: Some(eur(500)),
                opening_transaction_id: tx(),
                account_number: number(),
            })
            .then_expect_events(opened(500));
    }

    #[test]
    fn opens_at_zero_without_a_deposit() {
        let (account_id, client_id) = ids();
        Given::with(())
            .given_no_previous_events()
            .when(C::Open {
                account_id,
                client_id,
                client: ClientStanding::Active,
                account_type: AccountType::Checking,
                currency: Currency::parse("EUR").unwrap(),
                initial_deposit: None,
                opening_transaction_id: tx(),
                account_number: number(),
            })
            .then_expect_events(opened(0));
    }

    #[test]
    fn refuses_an_initial_deposit_in_another_currency() {
        let (account_id, client_id) = ids();
        Given::with(())
            .given_no_previous_events()
            .when(C::Open {
                account_id,
                client_id,
                client: ClientStanding::Active,
                account_type: AccountType::Savings,
                currency: Currency::parse("EUR").unwrap(),
                initial_deposit: Some(usd(5)),
                opening_transaction_id: tx(),
                account_number: number(),
            })
            .then_expect_error(AccountError::CurrencyMismatch {
                given: Currency::parse("USD").unwrap(),
                account: Currency::parse("EUR").unwrap(),
            });
    }

    #[test]
    fn refuses_to_open_twice() {
        let (account_id, client_id) = ids();
        Given::with(())
            .given(opened(0))
            .when(C::Open {
                account_id,
                client_id,
                client: ClientStanding::Active,
                account_type: AccountType::Savings,
                currency: Currency::parse("EUR").unwrap(),
                initial_deposit: None,
                opening_transaction_id: tx(),
                account_number: number(),
            })
            .then_expect_error(AccountError::AlreadyOpen);
    }

    #[test]
    fn refuses_commands_on_an_account_never_opened() {
        Given::with(())
            .given_no_previous_events()
            .when(C::Deposit {
                transaction_id: tx(),
                amount: amt(1),
                description: None,
            })
            .then_expect_error(AccountError::NotFound);
    }

    #[test]
    fn deposits_and_withdraws() {
        Given::with(())
            .given(opened(100))
            .when(C::Deposit {
                transaction_id: tx(),
                amount: amt(50),
                description: Some("cash".into()),
            })
            .then_expect_events(vec![E::MoneyDeposited {
                transaction_id: tx(),
                amount: eur(50),
                description: Some("cash".into()),
                balance_after: eur(150),
            }]);
        Given::with(())
            .given(opened(100))
            .when(C::Withdraw {
                transaction_id: tx(),
                amount: amt(100),
                description: None,
            })
            .then_expect_events(vec![E::MoneyWithdrawn {
                transaction_id: tx(),
                amount: eur(100),
                description: None,
                balance_after: eur(0),
            }]);
    }

    #[test]
    fn never_overdraws() {
        Given::with(())
            .given(opened(100))
            .when(C::Withdraw {
                transaction_id: tx(),
                amount: amt(101),
                description: None,
            })
            .then_expect_error(AccountError::InsufficientFunds { balance: eur(100) });
    }

    #[test]
    fn refuses_a_movement_in_another_currency() {
        Given::with(())
            .given(opened(100))
            .when(C::Deposit {
                transaction_id: tx(),
                amount: Amount::new(1, Currency::parse("USD").unwrap()).unwrap(),
                description: None,
            })
            .then_expect_error(AccountError::CurrencyMismatch {
                given: Currency::parse("USD").unwrap(),
                account: Currency::parse("EUR").unwrap(),
            });
    }

    #[test]
    fn refuses_a_balance_beyond_the_limit() {
        Given::with(())
            .given(opened(crate::money::MAX_AMOUNT_MINOR))
            .when(C::Deposit {
                transaction_id: tx(),
                amount: amt(1),
                description: None,
            })
            .then_expect_error(AccountError::BalanceLimit);
    }

    #[test]
    fn a_frozen_account_takes_no_movement() {
        let frozen = [opened(100), vec![E::AccountFrozen { reason: None }]].concat();
        for command in [
            C::Deposit {
                transaction_id: tx(),
                amount: amt(1),
                description: None,
            },
            C::Withdraw {
                transaction_id: tx(),
                amount: amt(1),
                description: None,
            },
            C::Close,
        ] {
            Given::with(())
                .given(frozen.clone())
                .when(command)
                .then_expect_error(AccountError::Frozen);
        }
        // A transfer step is refused as a recorded decision.
        let refused = vec![E::TransferRefused {
            transfer_id: transfer(),
            reason: "account-frozen".into(),
        }];
        for command in [
            C::DebitForTransfer {
                transaction_id: tx(),
                transfer_id: transfer(),
                to_account: other_account(),
                amount: amt(1),
                reference: None,
            },
            C::CreditFromTransfer {
                transaction_id: tx(),
                transfer_id: transfer(),
                from_account: other_account(),
                amount: amt(1),
                reference: None,
            },
        ] {
            Given::with(())
                .given(frozen.clone())
                .when(command)
                .then_expect_events(refused.clone());
        }
    }

    #[test]
    fn a_refused_transfer_stays_refused_after_the_account_changes() {
        let refused = E::TransferRefused {
            transfer_id: transfer(),
            reason: "insufficient-funds".into(),
        };
        let debit = C::DebitForTransfer {
            transaction_id: tx(),
            transfer_id: transfer(),
            to_account: other_account(),
            amount: amt(40),
            reference: None,
        };
        Given::with(())
            .given(opened(10))
            .when(debit.clone())
            .then_expect_events(vec![refused.clone()]);
        // Money arrived since: the same transfer is still not debited.
        let deposited = E::MoneyDeposited {
            transaction_id: tx(),
            amount: eur(100),
            description: None,
            balance_after: eur(110),
        };
        Given::with(())
            .given([opened(10), vec![refused.clone(), deposited]].concat())
            .when(debit)
            .then_expect_events(vec![]);
        let credit = C::CreditFromTransfer {
            transaction_id: tx(),
            transfer_id: transfer(),
            from_account: other_account(),
            amount: amt(40),
            reference: None,
        };
        let frozen_refusal = E::TransferRefused {
            transfer_id: transfer(),
            reason: "account-frozen".into(),
        };
        Given::with(())
            .given(
                [
                    opened(0),
                    vec![
                        E::AccountFrozen { reason: None },
                        frozen_refusal,
                        E::AccountUnfrozen,
                    ],
                ]
                .concat(),
            )
            .when(credit)
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_closed_account_takes_no_movement() {
        let closed = [opened(0), vec![E::AccountClosed]].concat();
        for command in [
            C::Deposit {
                transaction_id: tx(),
                amount: amt(1),
                description: None,
            },
            C::Withdraw {
                transaction_id: tx(),
                amount: amt(1),
                description: None,
            },
            C::Close,
        ] {
            Given::with(())
                .given(closed.clone())
                .when(command)
                .then_expect_error(AccountError::Closed);
        }
        Given::with(())
            .given(closed.clone())
            .when(C::Freeze { reason: None })
            .then_expect_error(AccountError::Closed);
        Given::with(())
            .given(closed)
            .when(C::Unfreeze)
            .then_expect_error(AccountError::Closed);
    }

    #[test]
    fn freezes_and_unfreezes() {
        Given::with(())
            .given(opened(0))
            .when(C::Freeze {
                reason: Some("fraud check".into()),
            })
            .then_expect_events(vec![E::AccountFrozen {
                reason: Some("fraud check".into()),
            }]);
        Given::with(())
            .given([opened(0), vec![E::AccountFrozen { reason: None }]].concat())
            .when(C::Freeze { reason: None })
            .then_expect_error(AccountError::AlreadyFrozen);
        Given::with(())
            .given([opened(0), vec![E::AccountFrozen { reason: None }]].concat())
            .when(C::Unfreeze)
            .then_expect_events(vec![E::AccountUnfrozen]);
        Given::with(())
            .given(opened(0))
            .when(C::Unfreeze)
            .then_expect_error(AccountError::NotFrozen);
    }

    #[test]
    fn closes_only_at_zero() {
        Given::with(())
            .given(opened(0))
            .when(C::Close)
            .then_expect_events(vec![E::AccountClosed]);
        Given::with(())
            .given(opened(1))
            .when(C::Close)
            .then_expect_error(AccountError::BalanceNotZero { balance: eur(1) });
    }

    fn external(id: &str, direction: Direction, amount: i64) -> AccountCommand {
        C::RecordExternal {
            transaction_id: tx(),
            external_id: id.into(),
            direction,
            amount: amt(amount),
            booked_at: DateTime::parse_from_rfc3339("2026-11-01T10:00:00Z")
                .unwrap()
                .into(),
            description: None,
        }
    }

    #[test]
    fn records_an_external_transaction_once() {
        let recorded = E::ExternalTransactionRecorded {
            transaction_id: tx(),
            external_id: "core-1".into(),
            direction: Direction::Credit,
            amount: eur(30),
            booked_at: DateTime::parse_from_rfc3339("2026-11-01T10:00:00Z")
                .unwrap()
                .into(),
            description: None,
            balance_after: eur(130),
        };
        Given::with(())
            .given(opened(100))
            .when(external("core-1", Direction::Credit, 30))
            .then_expect_events(vec![recorded.clone()]);
        Given::with(())
            .given([opened(100), vec![recorded]].concat())
            .when(external("core-1", Direction::Credit, 30))
            .then_expect_events(vec![]);
    }

    #[test]
    fn an_external_debit_cannot_overdraw_and_ids_are_checked() {
        Given::with(())
            .given(opened(10))
            .when(external("core-2", Direction::Debit, 11))
            .then_expect_error(AccountError::InsufficientFunds { balance: eur(10) });
        Given::with(())
            .given(opened(10))
            .when(external("", Direction::Credit, 1))
            .then_expect_error(AccountError::InvalidExternalId);
    }

    #[test]
    fn transfer_steps_apply_once() {
        let debited = E::TransferDebited {
            transaction_id: tx(),
            transfer_id: transfer(),
            to_account: other_account(),
            amount: eur(40),
            balance_after: eur(60),
            reference: None,
        };
        let debit = C::DebitForTransfer {
            transaction_id: tx(),
            transfer_id: transfer(),
            to_account: other_account(),
            amount: amt(40),
            reference: None,
        };
        Given::with(())
            .given(opened(100))
            .when(debit.clone())
            .then_expect_events(vec![debited.clone()]);
        Given::with(())
            .given([opened(100), vec![debited.clone()]].concat())
            .when(debit)
            .then_expect_events(vec![]);
        let credit = C::CreditFromTransfer {
            transaction_id: tx(),
            transfer_id: transfer(),
            from_account: other_account(),
            amount: amt(40),
            reference: None,
        };
        let credited = E::TransferCredited {
            transaction_id: tx(),
            transfer_id: transfer(),
            from_account: other_account(),
            amount: eur(40),
            balance_after: eur(140),
            reference: None,
        };
        Given::with(())
            .given(opened(100))
            .when(credit.clone())
            .then_expect_events(vec![credited.clone()]);
        Given::with(())
            .given([opened(100), vec![credited]].concat())
            .when(credit)
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_transfer_to_itself_is_refused() {
        let (account_id, _) = ids();
        Given::with(())
            .given(opened(100))
            .when(C::DebitForTransfer {
                transaction_id: tx(),
                transfer_id: transfer(),
                to_account: account_id,
                amount: amt(1),
                reference: None,
            })
            .then_expect_error(AccountError::SameAccount);
    }

    #[test]
    fn a_reversal_restores_the_debit_once_even_when_frozen() {
        let debited = E::TransferDebited {
            transaction_id: tx(),
            transfer_id: transfer(),
            to_account: other_account(),
            amount: eur(40),
            balance_after: eur(60),
            reference: None,
        };
        let reversed = E::TransferDebitReversed {
            transaction_id: tx(),
            transfer_id: transfer(),
            amount: eur(40),
            balance_after: eur(100),
        };
        Given::with(())
            .given(
                [
                    opened(100),
                    vec![debited.clone(), E::AccountFrozen { reason: None }],
                ]
                .concat(),
            )
            .when(C::ReverseTransferDebit {
                transaction_id: tx(),
                transfer_id: transfer(),
            })
            .then_expect_events(vec![reversed.clone()]);
        Given::with(())
            .given([opened(100), vec![debited, reversed]].concat())
            .when(C::ReverseTransferDebit {
                transaction_id: tx(),
                transfer_id: transfer(),
            })
            .then_expect_events(vec![]);
        Given::with(())
            .given(opened(100))
            .when(C::ReverseTransferDebit {
                transaction_id: tx(),
                transfer_id: transfer(),
            })
            .then_expect_error(AccountError::TransferNotDebited(transfer()));
    }

    #[test]
    fn refusal_codes_are_stable() {
        assert_eq!(
            AccountError::InsufficientFunds { balance: eur(0) }.code(),
            "insufficient-funds"
        );
        assert_eq!(AccountError::NotFound.kind(), RefusalKind::NotFound);
        assert_eq!(AccountError::Closed.kind(), RefusalKind::Conflict);
    }
}
