//! One inbound run: every `*.csv` file in the inbox (files are uploaded under another
//! name and renamed into place, so a `.csv` is complete) is read whole and handled on
//! its own:
//!
//! 1. Seen before (same name and checksum): moved to `archive/`, nothing recorded.
//! 2. Checked line by line (format.rs), then against the accounts (exists, open, same
//!    currency, no debit taking the balance below zero). Any problem: the file moves to
//!    `error/` with `<name>.report.txt` naming each bad line and why; nothing recorded.
//! 3. Every line recorded through the worker's command, each with an idempotency key of
//!    its file checksum and line, transactions already recorded by an earlier file
//!    skipped; then the file moves to `archive/`.
//!
//! A run cut short (connection lost, product unavailable) leaves the file in the inbox;
//! the next run finishes it without recording anything twice. Every run and every
//! rejected file is written to the system log.

use projections::{LogEntry, SystemLog};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use thiserror::Error;

use crate::api::{AccountState, ApiCallError, ProductApi};
use crate::format::{self, Direction, Line, LineError};
use crate::ledger::Ledger;
use crate::remote::{Remote, RemoteError, SftpConfig};

#[derive(Debug, Error)]
pub enum RunError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error(transparent)]
    Api(#[from] ApiCallError),
    #[error("the worker's ledger: {0}")]
    Ledger(#[from] sqlx::Error),
    #[error("the event store: {0}")]
    Store(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    Archived {
        recorded: usize,
        already_recorded: usize,
    },
    Rejected {
        errors: Vec<LineError>,
    },
    Duplicate,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub files: Vec<(String, FileOutcome)>,
}

/// Connects, handles every file in the inbox, and logs the run.
pub async fn run(
    config: &SftpConfig,
    api: &ProductApi,
    ledger: &Ledger,
    log: &SystemLog,
) -> Result<RunReport, RunError> {
    let result = async {
        let remote = Remote::connect(config).await?;
        let result = run_on(&remote, config, api, ledger, log).await;
        remote.close().await;
        result
    }
    .await;
    let entry = match &result {
        Ok(report) => LogEntry::new(
            "info",
            "sftp",
            format!("SFTP inbound run: {} file(s)", report.files.len()),
        )
        .details(json!({
            "files": report.files.iter().map(|(name, outcome)| json!({
                "name": name,
                "outcome": match outcome {
                    FileOutcome::Archived { .. } => "archived",
                    FileOutcome::Rejected { .. } => "rejected",
                    FileOutcome::Duplicate => "duplicate",
                },
            })).collect::<Vec<_>>(),
        })),
        Err(error) => LogEntry::new("error", "sftp", format!("SFTP inbound run failed: {error}")),
    };
    log.record_or_warn(entry.actor("sftp-worker", None)).await;
    result
}

async fn run_on(
    remote: &Remote,
    config: &SftpConfig,
    api: &ProductApi,
    ledger: &Ledger,
    log: &SystemLog,
) -> Result<RunReport, RunError> {
    let mut report = RunReport::default();
    for name in remote.files(&config.inbox, ".csv").await? {
        let path = format!("{}/{name}", config.inbox);
        let bytes = remote.read(&path).await?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let outcome = if ledger.file(&name, &sha256).await?.is_some() {
            remote
                .rename(&path, &format!("{}/{name}", config.archive))
                .await?;
            FileOutcome::Duplicate
        } else {
            handle(remote, config, api, ledger, &name, &path, &sha256, &bytes).await?
        };
        if let FileOutcome::Rejected { errors } = &outcome {
            log.record_or_warn(
                LogEntry::new("warn", "sftp", format!("rejected transaction file {name}"))
                    .actor("sftp-worker", None)
                    .details(
                        json!({"file": name, "sha256": sha256, "report": format::report(errors)}),
                    ),
            )
            .await;
        }
        report.files.push((name, outcome));
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    remote: &Remote,
    config: &SftpConfig,
    api: &ProductApi,
    ledger: &Ledger,
    name: &str,
    path: &str,
    sha256: &str,
    bytes: &[u8],
) -> Result<FileOutcome, RunError> {
    let checked = match format::parse(bytes) {
        Ok(lines) => check_accounts(api, ledger, lines).await?,
        Err(errors) => Err(errors),
    };
    let (fresh, already_recorded) = match checked {
        Ok(lines) => lines,
        Err(errors) => {
            remote
                .write_atomically(
                    &config.error,
                    &format!("{name}.report.txt"),
                    format::report(&errors).as_bytes(),
                )
                .await?;
            remote
                .rename(path, &format!("{}/{name}", config.error))
                .await?;
            ledger.record_file(name, sha256, "rejected").await?;
            return Ok(FileOutcome::Rejected { errors });
        }
    };
    for line in &fresh {
        api.record(line, &format!("sftp-{sha256}-{}", line.number))
            .await?;
        ledger
            .record_transaction(&line.external_id, &line.account_id.to_string(), name)
            .await?;
    }
    remote
        .rename(path, &format!("{}/{name}", config.archive))
        .await?;
    ledger.record_file(name, sha256, "archived").await?;
    Ok(FileOutcome::Archived {
        recorded: fresh.len(),
        already_recorded,
    })
}

/// The lines still to record (and how many an earlier file recorded already), or every
/// line the accounts refuse.
async fn check_accounts(
    api: &ProductApi,
    ledger: &Ledger,
    lines: Vec<Line>,
) -> Result<Result<(Vec<Line>, usize), Vec<LineError>>, RunError> {
    let mut accounts: HashMap<String, Option<AccountState>> = HashMap::new();
    let (mut fresh, mut already, mut errors) = (Vec::new(), 0, Vec::new());
    for line in lines {
        if ledger.transaction(&line.external_id).await?.is_some() {
            already += 1;
            continue;
        }
        let id = line.account_id.to_string();
        if !accounts.contains_key(&id) {
            accounts.insert(id.clone(), api.account(&id).await?);
        }
        let refusal = match accounts.get_mut(&id).and_then(Option::as_mut) {
            None => Some(format!("account {id} does not exist")),
            Some(account) if account.status != "open" => {
                Some(format!("account {id} is {}", account.status))
            }
            Some(account) if account.currency != line.currency.code() => Some(format!(
                "currency {} is not the account's ({})",
                line.currency.code(),
                account.currency
            )),
            Some(account) => {
                let after = match line.direction {
                    Direction::Credit => account.balance_minor.checked_add(line.amount_minor),
                    Direction::Debit => account.balance_minor.checked_sub(line.amount_minor),
                };
                match after {
                    Some(after) if after >= 0 => {
                        account.balance_minor = after;
                        None
                    }
                    _ => Some(format!("the debit would take account {id} below zero")),
                }
            }
        };
        match refusal {
            Some(reason) => errors.push(LineError {
                number: line.number,
                reason,
            }),
            None => fresh.push(line),
        }
    }
    Ok(if errors.is_empty() {
        Ok((fresh, already))
    } else {
        Err(errors)
    })
}
