//! Accounts with their balances.

use domain::account::AccountEvent;
use domain::{AccountId, AccountNumber};
use serde::Serialize;
use sqlx::{AnyConnection, AnyPool, FromRow};

use crate::envelope::Envelope;
use crate::error::ProjectionError;
use crate::page::{bind_all, decode_cursor, paginate, Page, Param, PendingRows, Select};

#[derive(Debug, Clone, FromRow)]
struct Row {
    id: String,
    account_number: Option<String>,
    client_id: String,
    agent_id: String,
    account_type: String,
    currency: String,
    balance_minor: i64,
    status: String,
    version: i64,
    opened_at: String,
    updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MoneyView {
    pub amount_minor: i64,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AccountView {
    pub id: String,
    /// Compact (`LL70000000000042`); print it in groups of four.
    #[schema(example = "LL70000000000042")]
    pub account_number: String,
    pub client_id: String,
    pub agent_id: String,
    pub account_type: String,
    pub currency: String,
    pub balance: MoneyView,
    pub status: String,
    pub version: i64,
    pub opened_at: String,
    pub updated_at: String,
}

impl From<Row> for AccountView {
    fn from(row: Row) -> Self {
        AccountView {
            balance: MoneyView {
                amount_minor: row.balance_minor,
                currency: row.currency.clone(),
            },
            account_number: row
                .account_number
                .or_else(|| {
                    row.id
                        .parse()
                        .ok()
                        .map(|id| AccountNumber::derived(id).compact())
                })
                .unwrap_or_default(),
            id: row.id,
            client_id: row.client_id,
            agent_id: row.agent_id,
            account_type: row.account_type,
            currency: row.currency,
            status: row.status,
            version: row.version,
            opened_at: row.opened_at,
            updated_at: row.updated_at,
        }
    }
}

/// Applies an account event; with `pending`, balance and status changes are collected
/// there (one UPDATE per account per batch) instead of written at once.
pub(crate) async fn apply(
    conn: &mut AnyConnection,
    e: &Envelope<'_>,
    event: &AccountEvent,
    pending: Option<&mut std::collections::HashMap<String, PendingUpdate>>,
) -> Result<(), ProjectionError> {
    use AccountEvent as E;
    let id = e.aggregate_id();
    let (balance, status) = match event {
        E::AccountOpened {
            client_id,
            account_type,
            currency,
            initial_deposit,
            account_number,
            ..
        } => {
            // Streams arrive unordered: if the client is not projected yet, its
            // onboarding fills the agent in (see clients::apply).
            let agent: Option<(String,)> =
                sqlx::query_as("SELECT agent_id FROM clients WHERE id = $1")
                    .bind(client_id.to_string())
                    .fetch_optional(&mut *conn)
                    .await?;
            let agent = agent.map(|(agent,)| agent).unwrap_or_default();
            let account_type = serde_json::to_value(account_type)?
                .as_str()
                .unwrap_or_default()
                .to_string();
            sqlx::query(
                "INSERT INTO accounts (id, client_id, agent_id, account_type, currency, balance_minor, status, version, \
                 opened_at, updated_at, account_number) VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8, $8, $9)",
            )
            .bind(id)
            .bind(client_id.to_string())
            .bind(agent)
            .bind(account_type)
            .bind(currency.code())
            .bind(initial_deposit.amount_minor())
            .bind(e.sequence())
            .bind(&e.occurred_at)
            .bind(account_number.compact())
            .execute(&mut *conn)
            .await?;
            return Ok(());
        }
        E::MoneyDeposited { balance_after, .. }
        | E::MoneyWithdrawn { balance_after, .. }
        | E::ExternalTransactionRecorded { balance_after, .. }
        | E::TransferDebited { balance_after, .. }
        | E::TransferCredited { balance_after, .. }
        | E::TransferDebitReversed { balance_after, .. } => {
            (Some(balance_after.amount_minor()), None)
        }
        E::AccountFrozen { .. } => (None, Some("frozen")),
        E::AccountUnfrozen => (None, Some("open")),
        E::AccountClosed => (None, Some("closed")),
        // A refused transfer step moves no money; only the version advances.
        E::TransferRefused { .. } => (None, None),
    };
    let update = PendingUpdate {
        balance,
        status,
        version: e.sequence(),
        updated_at: e.occurred_at.clone(),
    };
    match pending {
        Some(pending) => {
            match pending.get_mut(id) {
                Some(earlier) => earlier.merge(&update),
                None => {
                    pending.insert(id.to_string(), update);
                }
            }
            Ok(())
        }
        None => write_update(conn, id, &update).await,
    }
}

/// An account's new balance, status and version, waiting to be written.
#[derive(Debug, Clone)]
pub(crate) struct PendingUpdate {
    balance: Option<i64>,
    status: Option<&'static str>,
    version: i64,
    updated_at: String,
}

impl PendingUpdate {
    /// Folds a later update into this one.
    fn merge(&mut self, later: &PendingUpdate) {
        self.balance = later.balance.or(self.balance);
        self.status = later.status.or(self.status);
        self.version = later.version;
        self.updated_at.clone_from(&later.updated_at);
    }
}

/// Writes a batch's account updates in as few statements as rows allow (`UPDATE … FROM
/// (VALUES …)`, which SQLite and PostgreSQL both read), not one per account. An account
/// missing from the read model is poison; the careful redo then names it.
pub(crate) async fn write_updates(
    conn: &mut AnyConnection,
    updates: &std::collections::HashMap<String, PendingUpdate>,
) -> Result<(), ProjectionError> {
    let mut rows = PendingRows::new(
        "UPDATE accounts SET balance_minor = COALESCE(u.column2, accounts.balance_minor), \
         status = COALESCE(u.column3, accounts.status), version = u.column4, updated_at = u.column5 \
         FROM (VALUES",
        5,
    );
    for (id, update) in updates {
        rows.push(vec![
            Param::Text(id.clone()),
            Param::OptInt(update.balance),
            Param::OptText(update.status.map(str::to_string)),
            Param::Int(update.version),
            Param::Text(update.updated_at.clone()),
        ]);
    }
    let updated = rows
        .flush_with(conn, ") AS u WHERE accounts.id = u.column1")
        .await?;
    if updated != updates.len() as u64 {
        return Err(ProjectionError::Poison(format!(
            "{} of {} accounts are not in the read model",
            updates.len() as u64 - updated.min(updates.len() as u64),
            updates.len()
        )));
    }
    Ok(())
}

pub(crate) async fn write_update(
    conn: &mut AnyConnection,
    id: &str,
    update: &PendingUpdate,
) -> Result<(), ProjectionError> {
    let updated = sqlx::query(
        "UPDATE accounts SET balance_minor = COALESCE($1, balance_minor), status = COALESCE($2, status), version = $3, \
         updated_at = $4 WHERE id = $5",
    )
    .bind(update.balance)
    .bind(update.status)
    .bind(update.version)
    .bind(&update.updated_at)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(ProjectionError::Poison(format!(
            "account {id} is not in the read model"
        )));
    }
    Ok(())
}

const COLUMNS: &str = "SELECT id, account_number, client_id, agent_id, account_type, currency, balance_minor, status, version, opened_at, \
     updated_at FROM accounts";

pub async fn get(pool: &AnyPool, id: &str) -> Result<Option<AccountView>, ProjectionError> {
    let row: Option<Row> = sqlx::query_as(&format!("{COLUMNS} WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(AccountView::from))
}

/// Whom a transfer to an account goes to: enough for the payer to check the name, and
/// nothing else about the payee's client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PayeeView {
    pub account_id: String,
    #[schema(example = "LL70000000000042")]
    pub account_number: String,
    /// The holder's name; `null` once their personal data is erased.
    pub name: Option<String>,
    pub currency: String,
    /// open, frozen or closed: only open accounts take transfers.
    pub status: String,
}

#[derive(FromRow)]
struct PayeeRow {
    account_id: String,
    account_number: String,
    first_name: Option<String>,
    last_name: Option<String>,
    currency: String,
    status: String,
}

/// The payee behind account `number`.
pub async fn payee(
    pool: &AnyPool,
    number: AccountNumber,
) -> Result<Option<PayeeView>, ProjectionError> {
    let row: Option<PayeeRow> = sqlx::query_as(
        "SELECT a.id AS account_id, a.account_number, c.first_name, c.last_name, a.currency, a.status \
         FROM accounts a LEFT JOIN clients c ON c.id = a.client_id WHERE a.account_number = $1",
    )
    .bind(number.compact())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|row| {
        let name = [row.first_name, row.last_name]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        PayeeView {
            account_id: row.account_id,
            account_number: row.account_number,
            name: (!name.is_empty()).then_some(name),
            currency: row.currency,
            status: row.status,
        }
    }))
}

/// Gives rows projected before account numbers existed the number their opening event
/// has once upcast ([`AccountNumber::derived`]), so lookups find them without a rebuild.
pub(crate) async fn backfill_numbers(pool: &AnyPool) -> Result<u64, ProjectionError> {
    let missing: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM accounts WHERE account_number IS NULL")
            .fetch_all(pool)
            .await?;
    for (id,) in &missing {
        let Ok(account) = id.parse::<AccountId>() else {
            continue;
        };
        sqlx::query(
            "UPDATE accounts SET account_number = $1 WHERE id = $2 AND account_number IS NULL",
        )
        .bind(AccountNumber::derived(account).compact())
        .bind(id)
        .execute(pool)
        .await?;
    }
    Ok(missing.len() as u64)
}

/// A client's accounts, oldest first.
pub async fn of_client(
    pool: &AnyPool,
    client_id: &str,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Page<AccountView>, ProjectionError> {
    let mut select = Select::new(COLUMNS);
    select.and("client_id = ?", [Param::Text(client_id.to_string())]);
    if let Some(cursor) = cursor {
        select.and("id > ?", [Param::Text(decode_cursor(cursor, 1)?.remove(0))]);
    }
    let (sql, params) = select.build("id ASC", limit);
    let rows: Vec<Row> = bind_all(sqlx::query_as(&sql), params)
        .fetch_all(pool)
        .await?;
    Ok(paginate(
        rows.into_iter().map(AccountView::from).collect(),
        limit,
        |a: &AccountView| vec![a.id.clone()],
    ))
}
