//! Exports to the core system's outbox, driven by the product's events (read in commit
//! order from a checkpoint the ledger keeps). Every file is written under a temporary
//! name (`.<name>.part`) and renamed when complete, so the core system sees whole files
//! only. All are UTF-8 CSV with a header line:
//!
//! - `clients-<from>-<to>.csv` — new and changed clients, their state now:
//!   `client_id,agent_id,status,first_name,last_name,email,phone,changed_at`
//!   (personal fields empty once erased).
//! - `accounts-<from>-<to>.csv` — opened and closed accounts:
//!   `account_id,client_id,event,account_type,currency,at` (`event` is `opened`/`closed`).
//! - `statement-<account_id>-<YYYY-MM-DD>.csv` — one per account and past day with
//!   movements: `transaction_id,kind,direction,amount_minor,currency,balance_after_minor,occurred_at,description`.
//!
//! `<from>-<to>` are the event positions the file covers: a file is never written twice
//! for the same events.

use chrono::{DateTime, NaiveDate, Utc};
use domain::client::Client;
use event_store::{CommitFeed, EventStore, StoredEvent};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::inbound::RunError;
use crate::ledger::Ledger;
use crate::remote::Remote;

const BATCH: i64 = 1_000;
const CHECKPOINT: &str = "exports";

/// What one export run wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Exported {
    pub files: Vec<String>,
}

fn csv_line(fields: &[String]) -> String {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    let _ = writer.write_record(fields);
    String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
}

fn occurred_at(event: &StoredEvent) -> Option<DateTime<Utc>> {
    event.event.metadata["occurred_at"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The single variant's fields of an externally tagged event payload.
fn fields(event: &StoredEvent) -> &Value {
    event
        .event
        .payload
        .as_object()
        .and_then(|o| o.values().next())
        .unwrap_or(&Value::Null)
}

/// Whether an account event moved money: its fields carry the balance after it, or it
/// opened the account with a deposit.
fn moves_money(event: &StoredEvent) -> bool {
    let f = fields(event);
    f.get("balance_after").is_some()
        || f["initial_deposit"]["amount_minor"].as_i64().unwrap_or(0) > 0
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Exports what the events since the last run changed (following the SQLite store in
/// commit order), and the statements of every day before `today` that has movements;
/// returns the files written.
pub async fn run(
    store: &EventStore,
    feed: &impl CommitFeed,
    remote: &Remote,
    outbox: &str,
    ledger: &Ledger,
    today: NaiveDate,
) -> Result<Exported, RunError> {
    let mut exported = Exported::default();
    loop {
        let from = ledger.checkpoint(CHECKPOINT).await?;
        let events = feed
            .read_after(from, BATCH)
            .await
            .map_err(|e| RunError::Store(e.to_string()))?;
        let Some(last) = events.last().map(|e| e.position) else {
            break;
        };
        let label = format!("{:012}-{:012}", from + 1, last);
        exported
            .files
            .extend(export_events(store, remote, outbox, ledger, &events, &label).await?);
        ledger.set_checkpoint(CHECKPOINT, last).await?;
    }
    exported
        .files
        .extend(export_statements(store, remote, outbox, ledger, today).await?);
    Ok(exported)
}

/// The exports `events` call for, in files named with `label`; notes the days each
/// account moved money for its statement.
pub async fn export_events(
    store: &EventStore,
    remote: &Remote,
    outbox: &str,
    ledger: &Ledger,
    events: &[StoredEvent],
    label: &str,
) -> Result<Vec<String>, RunError> {
    let mut files = Vec::new();
    let (mut clients, mut accounts) = (BTreeMap::new(), Vec::new());
    for event in events {
        let at = occurred_at(event).unwrap_or_default();
        match (
            event.event.aggregate_type.as_str(),
            event.event.event_type.as_str(),
        ) {
            ("client", _) => {
                let latest = clients
                    .entry(event.event.aggregate_id.clone())
                    .or_insert(at);
                *latest = (*latest).max(at);
            }
            ("account", "AccountOpened") => {
                accounts.push(account_row(
                    event.event.aggregate_id.clone(),
                    fields(event),
                    "opened",
                    at,
                ));
            }
            ("account", "AccountClosed") => {
                let stream = store
                    .stream("account", &event.event.aggregate_id)
                    .await
                    .map_err(|e| RunError::Store(e.to_string()))?;
                let opened = stream
                    .first()
                    .and_then(|e| e.payload.get("AccountOpened"))
                    .cloned()
                    .unwrap_or(Value::Null);
                accounts.push(account_row(
                    event.event.aggregate_id.clone(),
                    &opened,
                    "closed",
                    at,
                ));
            }
            _ => {}
        }
        if event.event.aggregate_type == "account" && moves_money(event) {
            ledger
                .statement_day(&event.event.aggregate_id, at.date_naive())
                .await?;
        }
    }
    if !clients.is_empty() {
        let mut body =
            String::from("client_id,agent_id,status,first_name,last_name,email,phone,changed_at\n");
        for (id, at) in clients {
            let client = store
                .load::<Client>(&id)
                .await
                .map_err(|e| RunError::Store(e.to_string()))?
                .aggregate;
            let details = client.details.as_ref();
            let personal = |f: &dyn Fn(&domain::contact::PersonalDetails) -> String| {
                details.map(f).unwrap_or_default()
            };
            body.push_str(&csv_line(&[
                id,
                client.agent_id.to_string(),
                format!("{:?}", client.status).to_lowercase(),
                personal(&|d| d.first_name.clone()),
                personal(&|d| d.last_name.clone()),
                personal(&|d| d.email.as_str().to_string()),
                personal(&|d| d.phone.as_str().to_string()),
                at.to_rfc3339(),
            ]));
        }
        let name = format!("clients-{label}.csv");
        remote
            .write_atomically(outbox, &name, body.as_bytes())
            .await?;
        files.push(name);
    }
    if !accounts.is_empty() {
        let body = format!(
            "account_id,client_id,event,account_type,currency,at\n{}",
            accounts.concat()
        );
        let name = format!("accounts-{label}.csv");
        remote
            .write_atomically(outbox, &name, body.as_bytes())
            .await?;
        files.push(name);
    }
    Ok(files)
}

fn account_row(id: String, opened: &Value, event: &str, at: DateTime<Utc>) -> String {
    csv_line(&[
        id,
        text(&opened["client_id"]),
        event.into(),
        text(&opened["account_type"]),
        text(&opened["currency"]),
        at.to_rfc3339(),
    ])
}

/// The statements due before `today` that are not written yet.
pub async fn export_statements(
    store: &EventStore,
    remote: &Remote,
    outbox: &str,
    ledger: &Ledger,
    today: NaiveDate,
) -> Result<Vec<String>, RunError> {
    let mut files = Vec::new();
    for (account, day) in ledger.statements_due(today).await? {
        let name = format!("statement-{account}-{day}.csv");
        let body = statement(store, &account, day).await?;
        remote
            .write_atomically(outbox, &name, body.as_bytes())
            .await?;
        ledger.statement_written(&account, day).await?;
        files.push(name);
    }
    Ok(files)
}

/// One account's movements on one day, from its stream.
async fn statement(store: &EventStore, account: &str, day: NaiveDate) -> Result<String, RunError> {
    let events = store
        .stream_after("account", account, 0)
        .await
        .map_err(|e| RunError::Store(e.to_string()))?;
    let mut body = String::from(
        "transaction_id,kind,direction,amount_minor,currency,balance_after_minor,occurred_at,description\n",
    );
    for event in &events {
        let Some(at) = occurred_at(event).filter(|at| at.date_naive() == day) else {
            continue;
        };
        if !moves_money(event) {
            continue;
        }
        let f = fields(event);
        let direction = match (event.event.event_type.as_str(), f["direction"].as_str()) {
            (_, Some(direction)) => direction.to_lowercase(),
            ("MoneyWithdrawn" | "TransferDebited", _) => "debit".into(),
            _ => "credit".into(),
        };
        let transaction = ["transaction_id", "opening_transaction_id"]
            .iter()
            .find_map(|k| f.get(*k))
            .map(text)
            .unwrap_or_default();
        let amount = f
            .get("amount")
            .or_else(|| f.get("initial_deposit"))
            .unwrap_or(&Value::Null);
        body.push_str(&csv_line(&[
            transaction,
            event.event.event_type.clone(),
            direction,
            text(&amount["amount_minor"]),
            text(&amount["currency"]),
            text(
                f.get("balance_after")
                    .unwrap_or(&f["initial_deposit"])
                    .get("amount_minor")
                    .unwrap_or(&Value::Null),
            ),
            at.to_rfc3339(),
            text(f.get("description").unwrap_or(&Value::Null)),
        ]));
    }
    Ok(body)
}
