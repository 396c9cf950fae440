//! The projector: follows the event store in commit order from a durable checkpoint and
//! applies each event to every read model. A batch's read-model changes, stream positions
//! and checkpoint commit in one transaction, so a crash mid-batch resumes without loss
//! or double counting. Each stream's last applied sequence is remembered: a duplicate is
//! skipped, a gap is filled from the event store, and an event that cannot be applied
//! (poison) is dead-lettered and logged, blocking only its own stream.

use event_store::{CommitFeed, EventStore, StoreError, StoredEvent};
use serde_json::json;
use sqlx::{Acquire, AnyConnection, AnyPool};
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

use crate::db::ReadStore;
use crate::envelope::{Decoded, Envelope};
use crate::error::ProjectionError;
use crate::models::{accounts, audit_log, clients, staff, transactions};
use crate::page::{Param, PendingRows, Script};
use crate::system_log::{LogEntry, SystemLog};
use std::collections::HashMap;

const CHECKPOINT: &str = "read-models";
/// Events per transaction while following the store: small, so commits stay prompt.
const BATCH: i64 = 512;
/// Events per transaction in a rebuild, where only throughput matters.
const REBUILD_BATCH: i64 = 8192;
/// How often the projector looks for events when nothing woke it.
const POLL: Duration = Duration::from_millis(500);
/// Backoff after a failed catch-up (a busy or unreachable database), doubling.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_LONGEST: Duration = Duration::from_secs(5);

/// What one catch-up did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatchUp {
    pub applied: u64,
    /// Events that arrived again after they were applied (redeliveries).
    pub skipped: u64,
    /// Events fetched from the store because a later one of their stream arrived first.
    pub gaps_filled: u64,
    pub dead_lettered: u64,
    /// Batches the fast path could not apply whole (poison, a refused statement), redone
    /// event by event.
    pub redone: u64,
    pub position: i64,
}

impl CatchUp {
    /// Adds what `other` did (its counts; the position stays).
    pub fn add(&mut self, other: &CatchUp) {
        self.applied += other.applied;
        self.skipped += other.skipped;
        self.gaps_filled += other.gaps_filled;
        self.dead_lettered += other.dead_lettered;
        self.redone += other.redone;
    }
}

#[derive(Default)]
struct Counters {
    applied: AtomicU64,
    dead_lettered: AtomicU64,
    position: AtomicI64,
}

/// Where a projector finds the events of a stream it missed (a gap: a later event came
/// first). A projector following a [`CommitFeed`] reads them from the feed, with their
/// positions in commit order; one fed events from a queue ([`Delivered`]) reads them
/// from the store, positioned by time as delivered events are.
pub trait GapSource: Send + Sync {
    fn missing(
        &self,
        store: &EventStore,
        aggregate_type: &str,
        id: &str,
        after: i64,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send;
}

/// A projector handed its events (from SQS in AWS, or by a rebuild's scan).
#[derive(Debug, Clone, Copy, Default)]
pub struct Delivered;

impl GapSource for Delivered {
    async fn missing(
        &self,
        store: &EventStore,
        aggregate_type: &str,
        id: &str,
        after: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        store.stream_after(aggregate_type, id, after).await
    }
}

impl<F: CommitFeed> GapSource for F {
    async fn missing(
        &self,
        _store: &EventStore,
        aggregate_type: &str,
        id: &str,
        after: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.stream_after(aggregate_type, id, after).await
    }
}

/// Applies events to every read model: handed them one by one ([`Delivered`], the
/// default), or following a store's [`CommitFeed`] from its checkpoint, which only a
/// store with a feed (the embedded SQLite store) can hand it.
pub struct Projector<F = Delivered> {
    store: Arc<EventStore>,
    feed: F,
    read: Arc<ReadStore>,
    log: Arc<SystemLog>,
    counters: Counters,
    /// One catch-up at a time: the follower and explicit catch-ups share this projector.
    stepping: tokio::sync::Mutex<()>,
}

impl Projector<Delivered> {
    /// A projector handed its events ([`Projector::deliver_one`]).
    pub fn new(store: Arc<EventStore>, read: Arc<ReadStore>, log: Arc<SystemLog>) -> Self {
        Projector::following(store, Delivered, read, log)
    }
}

impl<F: GapSource> Projector<F> {
    /// A projector reading what it misses from `feed`; with a [`CommitFeed`] it can also
    /// follow the store ([`Projector::catch_up`], [`Projector::run`]).
    pub fn following(
        store: Arc<EventStore>,
        feed: F,
        read: Arc<ReadStore>,
        log: Arc<SystemLog>,
    ) -> Self {
        Projector {
            store,
            feed,
            read,
            log,
            counters: Counters::default(),
            stepping: Default::default(),
        }
    }

    /// Events applied since start, events dead-lettered since start, last position.
    pub fn stats(&self) -> (u64, u64, i64) {
        (
            self.counters.applied.load(Ordering::Relaxed),
            self.counters.dead_lettered.load(Ordering::Relaxed),
            self.counters.position.load(Ordering::Relaxed),
        )
    }

    pub async fn checkpoint(pool: &AnyPool) -> Result<i64, ProjectionError> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT position FROM projection_checkpoint WHERE name = $1")
                .bind(CHECKPOINT)
                .fetch_optional(pool)
                .await?;
        Ok(row.map_or(0, |(position,)| position))
    }

    /// The whole batch in one transaction with the fewest statements: everything that can
    /// wait is staged and written at the end. Any poison fails the batch (the caller then
    /// redoes it carefully).
    async fn apply_fast(
        &self,
        pool: &AnyPool,
        events: &[StoredEvent],
        decoded: Vec<Decoded>,
        last: i64,
    ) -> Result<CatchUp, ProjectionError> {
        let mut stats = CatchUp {
            position: last,
            ..CatchUp::default()
        };
        let mut tx = pool.begin().await?;
        let staged = async {
            let mut staging = Staging::new();
            staging.read_positions(&mut tx, events).await?;
            for (stored, decoded) in events.iter().zip(decoded) {
                let event = &stored.event;
                let key = (event.aggregate_type.clone(), event.aggregate_id.clone());
                let (applied_up_to, poisoned) = staging.position(&mut tx, &key).await?;
                let sequence = event.sequence as i64;
                if sequence <= applied_up_to {
                    stats.skipped += 1;
                    continue;
                }
                if poisoned {
                    return Err(ProjectionError::Poison("the stream is blocked".into()));
                }
                if sequence > applied_up_to + 1 {
                    let missing = self
                        .feed
                        .missing(
                            &self.store,
                            &event.aggregate_type,
                            &event.aggregate_id,
                            applied_up_to,
                        )
                        .await?;
                    for earlier in missing
                        .iter()
                        .filter(|m| (m.event.sequence as i64) < sequence)
                    {
                        let envelope = Envelope::new(earlier);
                        staging.stage(&mut tx, &envelope, None).await?;
                        stats.applied += 1;
                    }
                }
                let (envelope, account) = Envelope::decoded(stored, decoded);
                staging.stage(&mut tx, &envelope, account).await?;
                stats.applied += 1;
                self.after_apply(&envelope).await;
            }
            staging.flush(&mut tx, last).await?;
            Ok::<_, ProjectionError>(())
        }
        .await;
        match staged {
            Ok(()) => {
                tx.commit().await?;
                Ok(stats)
            }
            Err(error) => {
                // Roll back now, not on drop: the careful redo needs the write lock.
                tx.rollback().await?;
                Err(error)
            }
        }
    }

    async fn apply_batch(
        &self,
        pool: &AnyPool,
        events: &[StoredEvent],
        last: i64,
        careful: bool,
    ) -> Result<CatchUp, ProjectionError> {
        let mut stats = CatchUp {
            position: last,
            ..CatchUp::default()
        };
        let mut tx = pool.begin().await?;
        for stored in events {
            self.deliver_with(&mut tx, stored, &mut stats, careful)
                .await?;
        }
        save_checkpoint(&mut tx, last).await?;
        tx.commit().await?;
        Ok(stats)
    }

    /// Delivers one event in its own transaction (how events arriving from a queue are
    /// applied); returns what happened.
    pub async fn deliver_one(&self, stored: &StoredEvent) -> Result<CatchUp, ProjectionError> {
        // An event as stored (a message from the relay) carries personal data sealed:
        // opened here, as the store's own readers open it.
        let opened;
        let stored = match self.store.vault() {
            Some(vault) => {
                let mut copy = stored.clone();
                vault.open(&mut copy.event).await?;
                opened = copy;
                &opened
            }
            None => stored,
        };
        let pool = self.read.pool();
        let mut tx = pool.begin().await?;
        if tx.backend_name() == "PostgreSQL" {
            // Projectors in several processes (Lambdas) may hold the same event at once
            // (a redelivery after a timeout): one stream's deliveries take turns, and the
            // second finds the event applied instead of failing on its rows.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(format!(
                    "{}:{}",
                    stored.event.aggregate_type, stored.event.aggregate_id
                ))
                .execute(&mut *tx)
                .await?;
        }
        let mut stats = CatchUp {
            position: stored.position,
            ..CatchUp::default()
        };
        match self.deliver(&mut tx, stored, &mut stats).await {
            Ok(()) => {
                tx.commit().await?;
                Ok(stats)
            }
            Err(error) => {
                tx.rollback().await?;
                Err(error)
            }
        }
    }

    /// Delivers one event, whatever order or repetition it arrives in; an event that
    /// cannot be applied is dead-lettered.
    pub async fn deliver(
        &self,
        conn: &mut AnyConnection,
        stored: &StoredEvent,
        stats: &mut CatchUp,
    ) -> Result<(), ProjectionError> {
        self.deliver_with(conn, stored, stats, true).await
    }

    /// `careful`: each event in a savepoint, poison dead-lettered; otherwise poison is an
    /// error that aborts the batch.
    async fn deliver_with(
        &self,
        conn: &mut AnyConnection,
        stored: &StoredEvent,
        stats: &mut CatchUp,
        careful: bool,
    ) -> Result<(), ProjectionError> {
        let event = &stored.event;
        let (last, poisoned) =
            stream_position(conn, &event.aggregate_type, &event.aggregate_id).await?;
        let sequence = event.sequence as i64;
        if sequence <= last {
            stats.skipped += 1;
            return Ok(());
        }
        if poisoned {
            dead_letter(
                conn,
                stored,
                "the stream is blocked by an earlier event that could not be applied",
            )
            .await?;
            stats.dead_lettered += 1;
            return Ok(());
        }
        if sequence > last + 1 {
            // A gap: fetch what is missing from the store and apply it first.
            let missing = self
                .feed
                .missing(
                    &self.store,
                    &event.aggregate_type,
                    &event.aggregate_id,
                    last,
                )
                .await?;
            for earlier in missing
                .iter()
                .filter(|m| (m.event.sequence as i64) < sequence)
            {
                stats.gaps_filled += 1;
                if !self.apply_one(conn, earlier, stats, careful).await? {
                    stats.dead_lettered += 1;
                    dead_letter(
                        conn,
                        stored,
                        "the stream is blocked by an earlier event that could not be applied",
                    )
                    .await?;
                    return Ok(());
                }
            }
        }
        if !self.apply_one(conn, stored, stats, careful).await? {
            stats.dead_lettered += 1;
        }
        Ok(())
    }

    /// Applies one event (in a savepoint when `careful`). Returns false when it was poison.
    async fn apply_one(
        &self,
        conn: &mut AnyConnection,
        stored: &StoredEvent,
        stats: &mut CatchUp,
        careful: bool,
    ) -> Result<bool, ProjectionError> {
        if !careful {
            let envelope = Envelope::new(stored);
            apply_all(conn, &envelope).await?;
            set_stream_position(conn, &envelope, false).await?;
            stats.applied += 1;
            self.after_apply(&envelope).await;
            return Ok(true);
        }
        let envelope = Envelope::new(stored);
        let mut savepoint = conn.begin().await?;
        let outcome = apply_all(&mut savepoint, &envelope).await;
        let poison = match outcome {
            Ok(()) => {
                savepoint.commit().await?;
                set_stream_position(conn, &envelope, false).await?;
                stats.applied += 1;
                self.after_apply(&envelope).await;
                return Ok(true);
            }
            Err(ProjectionError::Poison(reason)) => reason,
            Err(error @ ProjectionError::Database(sqlx::Error::Database(_)))
                if !error.is_transient() =>
            {
                error.to_string()
            }
            // A retry can help: not this event's fault; the batch is redone later.
            Err(other) => {
                savepoint.rollback().await?;
                return Err(other);
            }
        };
        savepoint.rollback().await?;
        tracing::error!(position = stored.position, stream = %stored.event.aggregate_id, reason = %poison, "dead-lettered an event");
        dead_letter(conn, stored, &poison).await?;
        set_stream_position(conn, &envelope, true).await?;
        self.log
            .record_or_warn(
                LogEntry::new("error", "projection", format!("could not apply {} of {} {}", stored.event.event_type, stored.event.aggregate_type, stored.event.aggregate_id))
                    .keyed(format!("dead-letter:{}", stored.position), crate::timestamp(chrono::Utc::now()))
                    .details(json!({"position": stored.position, "sequence": stored.event.sequence, "error": poison})),
            )
            .await;
        Ok(false)
    }

    /// Staff changes also go to the system log (keyed by event, so replays add nothing).
    async fn after_apply(&self, e: &Envelope<'_>) {
        if e.aggregate_type() != "staff" {
            return;
        }
        let entry = LogEntry::new("info", "staff", self.staff_message(e).await)
            .keyed(
                format!("event:staff:{}:{}", e.aggregate_id(), e.sequence()),
                e.occurred_at.clone(),
            )
            .actor(e.actor_id.clone(), Some(&e.actor_role))
            .correlation(e.correlation_id.clone())
            .details(e.stored.event.payload.clone());
        self.log.record_or_warn(entry).await;
    }

    /// "Staff created: eve (agent)", "Staff disabled: eve": what an admin reads.
    async fn staff_message(&self, e: &Envelope<'_>) -> String {
        use domain::staff::StaffEvent;
        let who = match e.payload::<StaffEvent>() {
            Ok(StaffEvent::StaffCreated { username, role, .. }) => {
                return format!("Staff created: {} ({role})", username.as_str())
            }
            Ok(StaffEvent::StaffRoleChanged { from, to }) => format!("role {from} → {to}"),
            _ => String::new(),
        };
        let name = staff::get(&self.read.pool(), e.aggregate_id())
            .await
            .ok()
            .flatten()
            .map_or_else(|| e.aggregate_id().to_string(), |member| member.username);
        let what = match e.stored.event.event_type.as_str() {
            "StaffDisabled" => "Staff disabled",
            "StaffEnabled" => "Staff enabled",
            "StaffDeleted" => "Staff deleted",
            "StaffRoleChanged" => "Staff role changed",
            "StaffDetailsChanged" => "Staff details changed",
            "StaffPasswordReset" => "Staff password reset",
            other => other,
        };
        if who.is_empty() {
            format!("{what}: {name}")
        } else {
            format!("{what}: {name}, {who}")
        }
    }
}

impl<F: CommitFeed + GapSource + Clone + 'static> Projector<F> {
    /// Applies everything committed so far.
    pub async fn catch_up(&self) -> Result<CatchUp, ProjectionError> {
        self.follow(&self.read.pool(), BATCH).await
    }

    /// Catches up into `pool` (a rebuild's fresh copy) rather than the live store.
    pub(crate) async fn catch_up_into(&self, pool: &AnyPool) -> Result<i64, ProjectionError> {
        Ok(self.follow(pool, REBUILD_BATCH).await?.position)
    }

    /// Applies the feed from `pool`'s checkpoint to its end in batches of `limit`. The
    /// next batch is read and decoded on another task while one is applied: the two
    /// took turns on one core before, each about half of a rebuild's time.
    async fn follow(&self, pool: &AnyPool, limit: i64) -> Result<CatchUp, ProjectionError> {
        let _one_catch_up_at_a_time = self.stepping.lock().await;
        let mut total = CatchUp {
            position: Self::checkpoint(pool).await?,
            ..CatchUp::default()
        };
        // After a restart with nothing new to apply, the position is the checkpoint
        // (not 0, which would report every committed event as lag).
        self.counters
            .position
            .fetch_max(total.position, Ordering::Relaxed);
        let mut reader = ReadAhead::start(self.feed.clone(), total.position, limit);
        loop {
            // The reader sends an empty batch at the end: closing without one means it
            // panicked, and stopping here must not look like being caught up.
            let Some(batch) = reader.batches.recv().await else {
                return Err(ProjectionError::Store(StoreError::Unavailable(
                    "the task reading the event store stopped".into(),
                )));
            };
            let (events, decoded) = batch?;
            let Some(last) = events.last().map(|e| e.position) else {
                break;
            };
            total.add(&self.apply_read(pool, &events, decoded, last).await?);
            total.position = last;
            // Freeing a batch's JSON trees is a tenth of applying it: not on this task.
            tokio::spawn(async move { drop(events) });
        }
        Ok(total)
    }

    /// Applies a batch read from the feed, up to position `last`.
    async fn apply_read(
        &self,
        pool: &AnyPool,
        events: &[StoredEvent],
        decoded: Vec<Decoded>,
        last: i64,
    ) -> Result<CatchUp, ProjectionError> {
        // Fast path: the whole batch in one transaction. If any event is poison, redo the
        // batch carefully, each event in a savepoint, so only the poison is set aside.
        let stats = match self.apply_fast(pool, events, decoded, last).await {
            Ok(stats) => stats,
            // Busy or unreachable: the whole batch again later (see `run`).
            Err(error) if error.is_transient() => return Err(error),
            Err(error @ ProjectionError::Poison(_))
            | Err(error @ ProjectionError::Database(sqlx::Error::Database(_))) => {
                tracing::warn!(%error, events = events.len(), position = last, "a batch is redone event by event");
                CatchUp {
                    redone: 1,
                    ..self.apply_batch(pool, events, last, true).await?
                }
            }
            Err(other) => return Err(other),
        };
        self.counters
            .applied
            .fetch_add(stats.applied, Ordering::Relaxed);
        self.counters
            .dead_lettered
            .fetch_add(stats.dead_lettered, Ordering::Relaxed);
        self.counters.position.store(last, Ordering::Relaxed);
        if events.iter().any(|e| e.event.event_type == "ClientErased") {
            // Applied already; what is left is leaving no copy of what it replaced.
            if let Err(error) = crate::models::client_search::forget_erased(pool).await {
                tracing::warn!(%error, "an erased client's old data may remain in the read models' free pages until the next erasure");
            }
        }
        Ok(stats)
    }

    /// Follows the store until `shutdown` turns true: woken on every commit, and every
    /// half second regardless.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let commits = self.store.commits();
        let mut backoff = RETRY_FIRST;
        loop {
            match self.catch_up().await {
                Ok(_) => backoff = RETRY_FIRST,
                Err(error) => {
                    tracing::warn!(%error, transient = error.is_transient(), retry_in_ms = backoff.as_millis() as u64, "projection failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    if *shutdown.borrow() {
                        return;
                    }
                    backoff = (backoff * 2).min(RETRY_LONGEST);
                    continue;
                }
            }
            tokio::select! {
                () = commits.notified() => {}
                () = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }
}

/// A batch of the feed and what was decoded of each of its events.
type ReadBatch = Result<(Vec<StoredEvent>, Vec<Decoded>), StoreError>;

/// Reads a feed in batches on a task of its own, decoding each batch, one batch ahead of
/// the receiver; the task is stopped when this is dropped.
struct ReadAhead {
    batches: tokio::sync::mpsc::Receiver<ReadBatch>,
    task: tokio::task::JoinHandle<()>,
}

impl ReadAhead {
    /// Reads `feed` after `position` in batches of `limit`. It ends after an empty batch
    /// or an error (both are sent).
    fn start<F: CommitFeed + Clone + 'static>(feed: F, mut position: i64, limit: i64) -> Self {
        let (sender, batches) = tokio::sync::mpsc::channel(1);
        let task = tokio::spawn(async move {
            loop {
                // A slot first, then the read: besides the batch being applied (and the
                // one before it, being freed), only the next is in memory.
                let Ok(slot) = sender.reserve().await else {
                    return;
                };
                let batch = feed.read_after(position, limit).await.map(|events| {
                    let decoded = events.iter().map(Decoded::of).collect();
                    (events, decoded)
                });
                let next = batch
                    .as_ref()
                    .ok()
                    .and_then(|(events, _)| events.last().map(|e| e.position));
                slot.send(batch);
                match next {
                    Some(last) => position = last,
                    None => return,
                }
            }
        });
        ReadAhead { batches, task }
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn apply_all(conn: &mut AnyConnection, e: &Envelope<'_>) -> Result<(), ProjectionError> {
    match e.aggregate_type() {
        "client" => clients::apply(conn, e).await?,
        "account" => {
            let event = e.payload::<domain::account::AccountEvent>()?;
            accounts::apply(conn, e, &event, None).await?;
            transactions::apply(conn, e, event).await?;
        }
        "staff" => staff::apply(conn, e).await?,
        _ => {}
    }
    audit_log::apply(conn, e).await
}

/// What a fast batch collects to write at its end: onboarded clients and account
/// updates (one per account), history and audit rows (multi-row inserts), stream
/// positions (one per stream).
struct Staging {
    /// New clients, written before any other event of a client applies (it updates
    /// the client's row) and at the end.
    clients: PendingRows,
    client_agents: PendingRows,
    accounts: HashMap<String, accounts::PendingUpdate>,
    transactions: PendingRows,
    audit: PendingRows,
    positions: HashMap<(String, String), (i64, bool)>,
    touched: Vec<(String, String)>,
}

impl Staging {
    fn new() -> Self {
        Staging {
            clients: PendingRows::new(&clients::ONBOARD, clients::ONBOARD_COLUMNS),
            client_agents: PendingRows::new(clients::FILL_AGENTS, 2),
            accounts: HashMap::new(),
            transactions: PendingRows::new(transactions::INSERT, transactions::COLUMNS),
            audit: PendingRows::new(audit_log::INSERT, audit_log::COLUMNS),
            positions: HashMap::new(),
            touched: Vec::new(),
        }
    }

    /// Reads the positions of every stream in `events` at once (a batch of a busy
    /// system touches hundreds of streams: one statement each was most of its cost).
    async fn read_positions(
        &mut self,
        conn: &mut AnyConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let mut keys: Vec<(String, String)> = Vec::new();
        for stored in events {
            let key = (
                stored.event.aggregate_type.clone(),
                stored.event.aggregate_id.clone(),
            );
            if !self.positions.contains_key(&key) {
                self.positions.insert(key.clone(), (0, false));
                keys.push(key);
            }
        }
        for (key, position) in stream_positions(conn, &keys).await? {
            self.positions.insert(key, position);
        }
        Ok(())
    }

    async fn position(
        &mut self,
        conn: &mut AnyConnection,
        key: &(String, String),
    ) -> Result<(i64, bool), ProjectionError> {
        if let Some(position) = self.positions.get(key) {
            return Ok(*position);
        }
        let position = stream_position(conn, &key.0, &key.1).await?;
        self.positions.insert(key.clone(), position);
        Ok(position)
    }

    /// Applies what must be applied now (new rows other rows refer to) and collects
    /// the rest.
    /// `account`: the event's typed payload when it was decoded ahead.
    async fn stage(
        &mut self,
        conn: &mut AnyConnection,
        e: &Envelope<'_>,
        account: Option<domain::account::AccountEvent>,
    ) -> Result<(), ProjectionError> {
        match e.aggregate_type() {
            "client" => match clients::onboarding(e)? {
                Some(onboarding) => {
                    self.clients.push(onboarding.client);
                    self.client_agents.push(onboarding.agent);
                }
                None => {
                    self.write_clients(conn).await?;
                    clients::apply(conn, e).await?;
                }
            },
            "account" => {
                let event = match account {
                    Some(event) => event,
                    None => e.payload::<domain::account::AccountEvent>()?,
                };
                accounts::apply(conn, e, &event, Some(&mut self.accounts)).await?;
                if let Some(row) = transactions::row(e, event) {
                    self.transactions.push(row);
                }
            }
            "staff" => staff::apply(conn, e).await?,
            _ => {}
        }
        self.audit.push(audit_log::row(e));
        let key = (e.aggregate_type().to_string(), e.aggregate_id().to_string());
        if self
            .positions
            .insert(key.clone(), (e.sequence(), false))
            .is_none_or(|_| !self.touched.contains(&key))
        {
            self.touched.push(key);
        }
        Ok(())
    }

    /// Writes the clients onboarded so far, and fills in the agent of their accounts
    /// (an account opened in the same batch found no client row to read it from).
    async fn write_clients(&mut self, conn: &mut AnyConnection) -> Result<(), ProjectionError> {
        self.clients.flush_with(conn, clients::ONBOARD_TAIL).await?;
        self.client_agents
            .flush_with(conn, clients::FILL_AGENTS_TAIL)
            .await?;
        Ok(())
    }

    /// Writes what is staged and the checkpoint at `last`. The accounts' updates run
    /// alone (each account must be found); the rest of the writes go as one script.
    async fn flush(mut self, conn: &mut AnyConnection, last: i64) -> Result<(), ProjectionError> {
        self.write_clients(conn).await?;
        accounts::write_updates(conn, &self.accounts).await?;
        let mut script = Script::new(conn);
        self.transactions.add_to(&mut script, "");
        self.audit.add_to(&mut script, "");
        let mut positions = PendingRows::new(
            "INSERT INTO stream_positions (aggregate_type, aggregate_id, last_sequence, poisoned) VALUES",
            4,
        );
        for key in &self.touched {
            let (sequence, _) = self.positions[key];
            positions.push(vec![
                Param::Text(key.0.clone()),
                Param::Text(key.1.clone()),
                Param::Int(sequence),
                Param::Int(0),
            ]);
        }
        positions.add_to(
            &mut script,
            "ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET last_sequence = excluded.last_sequence",
        );
        add_checkpoint(&mut script, last);
        script.run(conn).await
    }
}

/// Adds the write of the checkpoint at `position` to `script`.
fn add_checkpoint(script: &mut Script, position: i64) {
    script.push(
        |values| {
            format!(
                "INSERT INTO projection_checkpoint (name, position) VALUES {values} \
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position"
            )
        },
        vec![Param::Text(CHECKPOINT.into()), Param::Int(position)],
    );
}

async fn save_checkpoint(conn: &mut AnyConnection, position: i64) -> Result<(), ProjectionError> {
    let mut script = Script::new(conn);
    add_checkpoint(&mut script, position);
    script.run(conn).await
}

/// The recorded positions of the streams `keys` that have one.
async fn stream_positions(
    conn: &mut AnyConnection,
    keys: &[(String, String)],
) -> Result<Vec<((String, String), (i64, bool))>, ProjectionError> {
    const STREAMS_PER_STATEMENT: usize = 200;
    let anonymous = crate::page::anonymous_placeholders(conn);
    let mut found = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(STREAMS_PER_STATEMENT) {
        // A join on the primary key: SQLite scans the table for `(a, b) IN (VALUES …)`.
        let sql = format!(
            "SELECT p.aggregate_type, p.aggregate_id, p.last_sequence, p.poisoned FROM (VALUES {}) AS k \
             JOIN stream_positions p ON p.aggregate_type = k.column1 AND p.aggregate_id = k.column2",
            crate::page::values_list(chunk.len(), 2, anonymous)
        );
        let mut query = sqlx::query_as::<_, (String, String, i64, i64)>(&sql);
        for (aggregate_type, id) in chunk {
            query = query.bind(aggregate_type.as_str()).bind(id.as_str());
        }
        for (aggregate_type, id, last, poisoned) in query.fetch_all(&mut *conn).await? {
            found.push(((aggregate_type, id), (last, poisoned != 0)));
        }
    }
    Ok(found)
}

async fn stream_position(
    conn: &mut AnyConnection,
    aggregate_type: &str,
    id: &str,
) -> Result<(i64, bool), ProjectionError> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT last_sequence, poisoned FROM stream_positions WHERE aggregate_type = $1 AND aggregate_id = $2")
            .bind(aggregate_type)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map_or((0, false), |(last, poisoned)| (last, poisoned != 0)))
}

async fn set_stream_position(
    conn: &mut AnyConnection,
    e: &Envelope<'_>,
    poisoned: bool,
) -> Result<(), ProjectionError> {
    // A poisoned stream keeps its last good sequence.
    let sequence = if poisoned {
        e.sequence() - 1
    } else {
        e.sequence()
    };
    sqlx::query(
        "INSERT INTO stream_positions (aggregate_type, aggregate_id, last_sequence, poisoned) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET last_sequence = excluded.last_sequence, poisoned = excluded.poisoned",
    )
    .bind(e.aggregate_type())
    .bind(e.aggregate_id())
    .bind(sequence)
    .bind(i64::from(poisoned))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn dead_letter(
    conn: &mut AnyConnection,
    stored: &StoredEvent,
    error: &str,
) -> Result<(), ProjectionError> {
    sqlx::query(
        "INSERT INTO dead_letters (position, aggregate_type, aggregate_id, sequence, event_type, error, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (position) DO NOTHING",
    )
    .bind(stored.position)
    .bind(&stored.event.aggregate_type)
    .bind(&stored.event.aggregate_id)
    .bind(stored.event.sequence as i64)
    .bind(&stored.event.event_type)
    .bind(error)
    .bind(crate::timestamp(chrono::Utc::now()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
