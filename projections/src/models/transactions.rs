//! The transaction history of each account: one row per movement of money.

use domain::account::{AccountEvent, Direction};
use domain::{Money, TransactionId};
use serde::Serialize;
use sqlx::{AnyConnection, AnyPool, FromRow};

use crate::envelope::Envelope;
use crate::error::ProjectionError;
use crate::models::accounts::MoneyView;
use crate::page::{bind_all, count, paginate, Order, Page, Param, PendingRows, Select};

#[derive(Debug, Clone, FromRow)]
struct Row {
    id: String,
    account_id: String,
    kind: String,
    amount_minor: i64,
    currency: String,
    balance_after_minor: i64,
    description: Option<String>,
    transfer_id: Option<String>,
    counterparty_account_id: Option<String>,
    counterparty_account_number: Option<String>,
    external_id: Option<String>,
    occurred_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TransactionView {
    pub id: String,
    pub account_id: String,
    /// opening_deposit, deposit, withdrawal, external_credit, external_debit,
    /// transfer_out, transfer_in or transfer_reversal.
    pub kind: String,
    pub amount: MoneyView,
    pub balance_after: MoneyView,
    pub occurred_at: String,
    pub description: Option<String>,
    pub transfer_id: Option<String>,
    pub counterparty_account_id: Option<String>,
    /// The other account's number (compact), for transfers.
    pub counterparty_account_number: Option<String>,
    pub external_id: Option<String>,
}

impl From<Row> for TransactionView {
    fn from(row: Row) -> Self {
        TransactionView {
            amount: MoneyView {
                amount_minor: row.amount_minor,
                currency: row.currency.clone(),
            },
            balance_after: MoneyView {
                amount_minor: row.balance_after_minor,
                currency: row.currency,
            },
            id: row.id,
            account_id: row.account_id,
            kind: row.kind,
            occurred_at: row.occurred_at,
            description: row.description,
            transfer_id: row.transfer_id,
            counterparty_account_id: row.counterparty_account_id,
            counterparty_account_number: row.counterparty_account_number,
            external_id: row.external_id,
        }
    }
}

struct Line {
    id: TransactionId,
    kind: &'static str,
    amount: Money,
    balance_after: Money,
    description: Option<String>,
    transfer_id: Option<String>,
    counterparty: Option<String>,
    external_id: Option<String>,
    occurred_at: Option<String>,
}

fn line(event: AccountEvent) -> Option<Line> {
    use AccountEvent as E;
    let plain = |id, kind, amount, balance_after, description| Line {
        id,
        kind,
        amount,
        balance_after,
        description,
        transfer_id: None,
        counterparty: None,
        external_id: None,
        occurred_at: None,
    };
    Some(match event {
        E::AccountOpened {
            initial_deposit,
            opening_transaction_id,
            ..
        } if !initial_deposit.is_zero() => plain(
            opening_transaction_id,
            "opening_deposit",
            initial_deposit,
            initial_deposit,
            None,
        ),
        E::MoneyDeposited {
            transaction_id,
            amount,
            description,
            balance_after,
        } => plain(
            transaction_id,
            "deposit",
            amount,
            balance_after,
            description,
        ),
        E::MoneyWithdrawn {
            transaction_id,
            amount,
            description,
            balance_after,
        } => plain(
            transaction_id,
            "withdrawal",
            amount,
            balance_after,
            description,
        ),
        E::ExternalTransactionRecorded {
            transaction_id,
            external_id,
            direction,
            amount,
            booked_at,
            description,
            balance_after,
        } => {
            let kind = if direction == Direction::Credit {
                "external_credit"
            } else {
                "external_debit"
            };
            Line {
                external_id: Some(external_id),
                occurred_at: Some(crate::timestamp(booked_at)),
                ..plain(transaction_id, kind, amount, balance_after, description)
            }
        }
        E::TransferDebited {
            transaction_id,
            transfer_id,
            to_account,
            amount,
            balance_after,
            reference,
        } => Line {
            transfer_id: Some(transfer_id.to_string()),
            counterparty: Some(to_account.to_string()),
            // The transfer's reference is the description on both sides.
            ..plain(
                transaction_id,
                "transfer_out",
                amount,
                balance_after,
                reference,
            )
        },
        E::TransferCredited {
            transaction_id,
            transfer_id,
            from_account,
            amount,
            balance_after,
            reference,
        } => Line {
            transfer_id: Some(transfer_id.to_string()),
            counterparty: Some(from_account.to_string()),
            // The transfer's reference is the description on both sides.
            ..plain(
                transaction_id,
                "transfer_in",
                amount,
                balance_after,
                reference,
            )
        },
        E::TransferDebitReversed {
            transaction_id,
            transfer_id,
            amount,
            balance_after,
        } => Line {
            transfer_id: Some(transfer_id.to_string()),
            ..plain(
                transaction_id,
                "transfer_reversal",
                amount,
                balance_after,
                None,
            )
        },
        _ => return None,
    })
}

pub(crate) const INSERT: &str = "INSERT INTO transactions (id, account_id, sequence, kind, amount_minor, currency, \
     balance_after_minor, description, transfer_id, counterparty_account_id, external_id, occurred_at) VALUES";
pub(crate) const COLUMNS: usize = 12;

/// The history row `event` (`e`'s payload, decoded once by the caller) adds, if it
/// moves money.
pub(crate) fn row(e: &Envelope<'_>, event: AccountEvent) -> Option<Vec<Param>> {
    let line = line(event)?;
    Some(vec![
        Param::Text(line.id.to_string()),
        Param::Text(e.aggregate_id().to_string()),
        Param::Int(e.sequence()),
        Param::Text(line.kind.to_string()),
        Param::Int(line.amount.amount_minor()),
        Param::Text(line.amount.currency().code().to_string()),
        Param::Int(line.balance_after.amount_minor()),
        Param::OptText(line.description),
        Param::OptText(line.transfer_id),
        Param::OptText(line.counterparty),
        Param::OptText(line.external_id),
        Param::Text(line.occurred_at.unwrap_or_else(|| e.occurred_at.clone())),
    ])
}

pub(crate) async fn apply(
    conn: &mut AnyConnection,
    e: &Envelope<'_>,
    event: AccountEvent,
) -> Result<(), ProjectionError> {
    if let Some(row) = row(e, event) {
        let mut rows = PendingRows::new(INSERT, COLUMNS);
        rows.push(row);
        rows.flush(conn).await?;
    }
    Ok(())
}

#[derive(Debug, Clone, Default)]
pub struct TransactionFilter {
    pub account_id: String,
    /// Inclusive lower bound on `occurred_at` (RFC 3339).
    pub from: Option<String>,
    /// Exclusive upper bound.
    pub to: Option<String>,
    /// Oldest first instead of newest first.
    pub oldest_first: bool,
    pub cursor: Option<String>,
    pub limit: i64,
}

/// Newest first.
pub async fn list(
    pool: &AnyPool,
    filter: TransactionFilter,
) -> Result<Page<TransactionView>, ProjectionError> {
    let mut select = Select::new(
        "SELECT id, account_id, kind, amount_minor, currency, balance_after_minor, description, transfer_id, \
         counterparty_account_id, (SELECT a.account_number FROM accounts a WHERE a.id = transactions.counterparty_account_id) \
         AS counterparty_account_number, external_id, occurred_at FROM transactions",
    );
    select.and("account_id = ?", [Param::Text(filter.account_id)]);
    if let Some(from) = filter.from {
        select.and("occurred_at >= ?", [Param::Text(from)]);
    }
    if let Some(to) = filter.to {
        select.and("occurred_at < ?", [Param::Text(to)]);
    }
    let total = count(pool, select.count("FROM transactions")).await?;
    let order = Order {
        columns: &["occurred_at", "id"],
        descending: !filter.oldest_first,
    };
    if let Some(cursor) = &filter.cursor {
        order.after(&mut select, cursor)?;
    }
    let (sql, params) = select.build(&order.by(), filter.limit);
    let rows: Vec<Row> = bind_all(sqlx::query_as(&sql), params)
        .fetch_all(pool)
        .await?;
    let views = rows.into_iter().map(TransactionView::from).collect();
    Ok(paginate(views, filter.limit, |t: &TransactionView| {
        vec![t.occurred_at.clone(), t.id.clone()]
    })
    .counted(total))
}
