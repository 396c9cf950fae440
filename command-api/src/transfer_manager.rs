//! The transfer process manager: drives every Transfer saga (debit the source, credit the
//! destination, or reverse the debit when the destination refuses) to completion or
//! failure, in tasks of its own. A request that asks for a transfer waits for the outcome,
//! but its going away cancels nothing. Transfers it did not start — begun by a process
//! that died, or stalled on a store that failed — are found again continuously: from the
//! events this process commits, and by a sweep of the store's open transfers.
//!
//! Running a saga twice at once is harmless: each account decides its side of a transfer
//! once and records it (`TransferDebited`/`TransferCredited` or `TransferRefused`), so
//! every driver sees the same outcome; a step another driver already took is skipped.

use domain::account::{Account, AccountCommand};
use domain::metadata::CommandMetadata;
use domain::policy::Role;
use domain::transfer::{Transfer, TransferCommand, TransferError, TransferStep};
use domain::{Amount, TransactionId, TransferId};
use event_store::{Appended, EventStore, ExecuteError, Expected, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

/// The events that end a transfer.
const TERMINAL: [&str; 2] = ["TransferCompleted", "TransferFailed"];

/// What driving a transfer came to.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Completed or failed, as recorded.
    Settled(Box<Transfer>, u64),
    /// The store failed repeatedly; the transfer stays open and the manager retries it.
    Stalled(String),
}

/// How often the manager looks for transfers that need it.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// How often open transfers known to this process are checked.
    pub check_every: Duration,
    /// How long a transfer must have made no progress before the manager takes it up
    /// (so that it does not race a driver in another process).
    pub idle_after: Duration,
    /// How often the whole store is searched for open transfers (those begun by other
    /// processes, or whose commit this process missed).
    pub sweep_every: Duration,
    /// How long a transfer request waits for the outcome before answering 202.
    pub request_patience: Duration,
}

impl Pace {
    /// One process owns the store: everything it commits, it sees.
    pub const EMBEDDED: Pace = Pace {
        check_every: Duration::from_millis(250),
        idle_after: Duration::from_millis(500),
        sweep_every: Duration::from_secs(30),
        request_patience: Duration::from_secs(10),
    };
    /// Several services share the store (AWS): each leaves a transfer to its driver for
    /// longer, and sweeps the store (a scan) rarely.
    pub const SHARED: Pace = Pace {
        check_every: Duration::from_secs(1),
        idle_after: Duration::from_secs(5),
        sweep_every: Duration::from_secs(60),
        request_patience: Duration::from_secs(10),
    };
}

type Watch = watch::Receiver<Option<Outcome>>;

pub struct TransferManager {
    store: Arc<EventStore>,
    pace: Pace,
    /// Transfers being driven by this process, and where their outcome will appear.
    driving: Mutex<HashMap<TransferId, Watch>>,
    /// Open transfers known to this process, with when they last moved.
    open: Mutex<HashMap<TransferId, Instant>>,
}

impl TransferManager {
    pub fn new(store: Arc<EventStore>, pace: Pace) -> Arc<Self> {
        Arc::new(TransferManager {
            store,
            pace,
            driving: Mutex::default(),
            open: Mutex::default(),
        })
    }

    /// How long a transfer request waits for the outcome.
    pub fn request_patience(&self) -> Duration {
        self.pace.request_patience
    }

    /// Drives `id` in a task of its own (or joins the task already driving it) and waits
    /// up to `patience` for the outcome; `None` if it is still under way.
    pub async fn settle(self: &Arc<Self>, id: TransferId, patience: Duration) -> Option<Outcome> {
        let mut outcome = self.drive(id);
        let settled = tokio::time::timeout(patience, outcome.wait_for(Option::is_some)).await;
        match settled {
            Ok(Ok(outcome)) => outcome.clone(),
            _ => None,
        }
    }

    /// Starts driving `id` unless this process already is.
    fn drive(self: &Arc<Self>, id: TransferId) -> Watch {
        let mut driving = lock(&self.driving);
        if let Some(outcome) = driving.get(&id) {
            return outcome.clone();
        }
        let (report, outcome) = watch::channel(None);
        driving.insert(id, outcome.clone());
        let manager = self.clone();
        tokio::spawn(async move {
            let result = manager.drive_with_retries(id).await;
            if let Outcome::Settled(..) = result {
                lock(&manager.open).remove(&id);
            } else {
                lock(&manager.open).insert(id, Instant::now());
            }
            lock(&manager.driving).remove(&id);
            let _ = report.send(Some(result));
        });
        outcome
    }

    async fn drive_with_retries(&self, id: TransferId) -> Outcome {
        let metadata = system_metadata(id);
        let mut delay = Duration::from_millis(20);
        let mut attempt = 0;
        loop {
            match run(&self.store, id, &metadata).await {
                Ok((transfer, version)) => return Outcome::Settled(Box::new(transfer), version),
                Err(error) if attempt < 5 => {
                    tracing::warn!(transfer = %id, %error, attempt, "a transfer step failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 3;
                    attempt += 1;
                }
                Err(error) => {
                    tracing::error!(transfer = %id, %error, "a transfer is stalled; the manager will take it up again");
                    return Outcome::Stalled(error.to_string());
                }
            }
        }
    }

    /// Follows this process's commits and the store until `stop` turns true: every open
    /// transfer that is not being driven and has been idle for `pace.idle_after` is
    /// driven. Starts with a sweep, which is what recovers transfers after a crash.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut commits = self.store.subscribe();
        let mut check = tokio::time::interval(self.pace.check_every);
        let mut sweep = tokio::time::interval(self.pace.sweep_every);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = sweep.tick() => self.sweep().await,
                _ = check.tick() => self.take_up_idle(),
                committed = commits.recv() => match committed {
                    Ok(events) => self.note(&events),
                    // Missed commits: the store knows what is open.
                    Err(broadcast::error::RecvError::Lagged(_)) => self.sweep().await,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }

    /// Remembers which transfers this process's commits opened, moved or settled.
    fn note(&self, appended: &Appended) {
        if appended.aggregate_type != "transfer" {
            return;
        }
        let Ok(id) = appended.aggregate_id.parse::<TransferId>() else {
            return;
        };
        let settled = appended
            .event_types
            .iter()
            .any(|t| TERMINAL.contains(&t.as_str()));
        let mut open = lock(&self.open);
        if settled {
            open.remove(&id);
        } else {
            open.insert(id, Instant::now());
        }
    }

    async fn sweep(&self) {
        match self.store.open_streams("transfer", &TERMINAL).await {
            Ok(ids) => {
                let mut open = lock(&self.open);
                for id in ids.iter().filter_map(|id| id.parse::<TransferId>().ok()) {
                    // Known ones keep their time; new ones are taken up after idle_after.
                    open.entry(id).or_insert_with(Instant::now);
                }
            }
            Err(error) => tracing::warn!(%error, "could not search the store for open transfers"),
        }
    }

    fn take_up_idle(self: &Arc<Self>) {
        let idle: Vec<TransferId> = {
            let open = lock(&self.open);
            let driving = lock(&self.driving);
            open.iter()
                .filter(|(id, moved)| {
                    !driving.contains_key(id) && moved.elapsed() >= self.pace.idle_after
                })
                .map(|(id, _)| *id)
                .collect()
        };
        for id in idle {
            tracing::info!(transfer = %id, "taking up an unfinished transfer");
            drop(self.drive(id));
        }
    }

    /// Drives every open transfer in the store to its end now; returns how many there
    /// were. For start-up and tests; the running manager does this continuously.
    pub async fn settle_all(self: &Arc<Self>) -> Result<usize, StoreError> {
        let ids = self.store.open_streams("transfer", &TERMINAL).await?;
        for id in ids.iter().filter_map(|id| id.parse::<TransferId>().ok()) {
            let mut outcome = self.drive(id);
            let _ = outcome.wait_for(Option::is_some).await;
        }
        Ok(ids.len())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The metadata of the steps the manager takes: the system acts, correlated with the
/// transfer.
fn system_metadata(id: TransferId) -> CommandMetadata {
    CommandMetadata {
        actor_id: "system".into(),
        actor_role: Role::Worker,
        correlation_id: id.to_string(),
        causation_id: format!("transfer-manager-{}", uuid::Uuid::now_v7()),
        idempotency_key: None,
        occurred_at: chrono::Utc::now(),
    }
}

/// Why a saga step could not be taken now.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("no transfer with id {0}")]
    Unknown(TransferId),
    #[error("transfer {0} holds an amount that is not positive")]
    InvalidAmount(TransferId),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the account refused a step it should take: {0}")]
    Refused(String),
    #[error("too many concurrent writers")]
    Contention,
}

impl<E: std::error::Error> From<ExecuteError<E>> for StepError {
    fn from(error: ExecuteError<E>) -> Self {
        match error {
            ExecuteError::Store(error) => StepError::Store(error),
            ExecuteError::Contention | ExecuteError::VersionMismatch { .. } => {
                StepError::Contention
            }
            ExecuteError::Refused(refusal) => StepError::Refused(refusal.to_string()),
        }
    }
}

/// Drives transfer `id` to completion or failure from wherever it stands.
pub async fn run(
    store: &EventStore,
    id: TransferId,
    metadata: &CommandMetadata,
) -> Result<(Transfer, u64), StepError> {
    let key = id.to_string();
    loop {
        let loaded = store.load::<Transfer>(&key).await?;
        let transfer = loaded.aggregate;
        let amount = transfer.amount.ok_or(StepError::Unknown(id))?;
        let amount = Amount::try_from(amount).map_err(|_| StepError::InvalidAmount(id))?;
        // The accounts' recorded decisions say what the next step is.
        let on_account = |account: domain::AccountId, command| async move {
            store
                .execute::<Account>(&account.to_string(), Expected::Any, metadata, command)
                .await
                .map(|committed| committed.aggregate.transfer_refusal(id).map(str::to_string))
        };
        let next = match transfer.next_step(false) {
            TransferStep::Done => return Ok((transfer, loaded.version)),
            TransferStep::DebitSource => {
                let debit = AccountCommand::DebitForTransfer {
                    transaction_id: TransactionId::new(),
                    transfer_id: id,
                    to_account: transfer.to_account,
                    amount,
                    reference: transfer.reference.clone(),
                };
                match on_account(transfer.from_account, debit).await? {
                    None => TransferCommand::MarkDebited,
                    Some(reason) => TransferCommand::Fail {
                        reason,
                        compensated: false,
                    },
                }
            }
            TransferStep::CreditDestination | TransferStep::Compensate => {
                let credit = AccountCommand::CreditFromTransfer {
                    transaction_id: TransactionId::new(),
                    transfer_id: id,
                    from_account: transfer.from_account,
                    amount,
                    reference: transfer.reference.clone(),
                };
                match on_account(transfer.to_account, credit).await? {
                    None => TransferCommand::Complete,
                    Some(reason) => {
                        let reverse = AccountCommand::ReverseTransferDebit {
                            transaction_id: TransactionId::new(),
                            transfer_id: id,
                        };
                        on_account(transfer.from_account, reverse).await?;
                        TransferCommand::Fail {
                            reason,
                            compensated: true,
                        }
                    }
                }
            }
        };
        match store
            .execute::<Transfer>(&key, Expected::Any, metadata, next)
            .await
        {
            // Another driver took this step first: look again.
            Ok(_) | Err(ExecuteError::Refused(TransferError::InvalidStep(_))) => {}
            Err(error) => return Err(error.into()),
        }
    }
}
