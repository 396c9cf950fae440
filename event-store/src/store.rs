//! The event store: appending sealed events, and reading streams back as stored.
//! Loading state from them is in [`crate::loading`].

use cqrs_es::persist::SerializedEvent;
use cqrs_es::{Aggregate, DomainEvent};
use domain::chain::seal;
use domain::metadata::{CommandMetadata, HASH};
use serde_json::Value;

use crate::backend::Backend;
use crate::capabilities::EventLog;
use crate::error::StoreError;
use crate::feed::{time_position, StoredEvent};
use crate::state::Loaded;

/// How many events apart snapshots are taken by default: a load replays fewer than this.
pub const SNAPSHOT_EVERY: u64 = 500;

/// The event store. Every append seals its events into the stream's hash chain.
pub struct EventStore {
    pub(crate) backend: Backend,
    pub(crate) locks: crate::executor::StreamLocks,
    pub(crate) commits: std::sync::Arc<tokio::sync::Notify>,
    pub(crate) cache: crate::cache::AggregateCache,
    /// Every append of this process, for in-process followers (the transfer manager).
    pub(crate) committed: tokio::sync::broadcast::Sender<std::sync::Arc<crate::Appended>>,
    /// Events between snapshots; 0 keeps none.
    pub(crate) snapshot_every: u64,
    /// Whether other processes may write the store (PostgreSQL): cached aggregates then
    /// serve only the deciding of commands.
    pub(crate) shared: bool,
    /// Encrypts personal data on append and opens it for readers that fold events;
    /// `None` writes it in the clear.
    pub(crate) vault: Option<std::sync::Arc<crate::personal::Vault>>,
}

impl EventStore {
    /// A store over `backend`. Aggregates are cached in memory between commands: on the
    /// embedded SQLite store (unless turned off), whose owning process is its only
    /// writer, for every load; on PostgreSQL, which several processes may share, for
    /// deciding commands only. A command decided on a copy another process has since
    /// outdated cannot be written (its sequence is taken), so it is decided again on
    /// fresh state; other readers (authorization, transfers, mail) always read the store.
    pub fn new(backend: Backend) -> Self {
        let shared = backend.shared();
        let cache = crate::cache::AggregateCache::new(
            shared || backend.sqlite_options().is_some_and(|o| o.aggregate_cache),
        );
        EventStore {
            backend,
            locks: Default::default(),
            commits: Default::default(),
            cache,
            shared,
            committed: tokio::sync::broadcast::channel(1024).0,
            snapshot_every: SNAPSHOT_EVERY,
            vault: None,
        }
    }

    /// Encrypts clients' personal data from now on, each client's under a data key of
    /// its own wrapped under `master` ([`crate::personal`]). Fails on a backend that
    /// keeps no data keys.
    pub fn with_master_key(self, master: &[u8; 32]) -> Result<Self, StoreError> {
        self.with_master(std::sync::Arc::new(crate::personal::LocalMaster::new(
            master,
        )))
    }

    /// As [`EventStore::with_master_key`], under any master key (a KMS key in AWS).
    pub fn with_master(
        mut self,
        master: std::sync::Arc<dyn crate::personal::MasterKey>,
    ) -> Result<Self, StoreError> {
        let keys = self.backend.data_keys().ok_or_else(|| {
            StoreError::Unavailable(
                "this store keeps no data keys: personal data cannot be encrypted".into(),
            )
        })?;
        self.vault = Some(std::sync::Arc::new(crate::personal::Vault::new(
            master,
            keys,
            self.shared,
        )));
        Ok(self)
    }

    /// The vault, for a reader of the store's events outside it (the feed).
    pub fn vault(&self) -> Option<std::sync::Arc<crate::personal::Vault>> {
        self.vault.clone()
    }

    /// Destroys the data key of `owner` (an erased client): their personal data no
    /// longer opens anywhere. Without a vault there is nothing to destroy.
    pub async fn shred(&self, owner: &str) -> Result<(), StoreError> {
        // The cached state was made with the key; the erasure's event cleared it anyway.
        match &self.vault {
            Some(vault) => vault.destroy(owner).await,
            None => Ok(()),
        }
    }

    /// `events`, read as stored, with their personal data opened (see
    /// [`crate::personal`]).
    pub(crate) async fn opened(
        &self,
        mut events: Vec<SerializedEvent>,
    ) -> Result<Vec<SerializedEvent>, StoreError> {
        if let Some(vault) = &self.vault {
            for event in &mut events {
                vault.open(event).await?;
            }
        }
        Ok(events)
    }

    /// Takes a snapshot every `events` events of a stream (0: never), instead of every
    /// [`SNAPSHOT_EVERY`].
    pub fn with_snapshot_every(mut self, events: u64) -> Self {
        self.snapshot_every = events;
        self
    }

    pub(crate) fn cache_key<A: Aggregate>(id: &str) -> String {
        format!("{}/{id}", A::TYPE)
    }

    /// Whether aggregates are kept in memory between commands.
    pub fn caches_aggregates(&self) -> bool {
        self.cache.enabled()
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Appends `events` after `loaded`, sealing each into the chain. Fails with
    /// [`StoreError::Conflict`] when another writer appended first; nothing is written then.
    pub async fn append<A: Aggregate>(
        &self,
        id: &str,
        loaded: &Loaded<A>,
        events: &[A::Event],
        metadata: &CommandMetadata,
    ) -> Result<Vec<SerializedEvent>, StoreError> {
        let base = metadata.to_map();
        let mut previous = loaded.last_hash.clone();
        let mut sealed = Vec::with_capacity(events.len());
        for (offset, event) in events.iter().enumerate() {
            let metadata: serde_json::Map<String, Value> = base
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            let mut serialized = SerializedEvent::new(
                id.to_string(),
                loaded.version as usize + offset + 1,
                A::TYPE.to_string(),
                event.event_type(),
                event.event_version(),
                serde_json::to_value(event)?,
                Value::Object(metadata),
            );
            // Encrypted before it is hashed: the chain and the Merkle log cover the
            // ciphertext, so destroying the key later leaves every hash as it was.
            if let Some(vault) = &self.vault {
                vault.seal(&mut serialized).await?;
            }
            seal(&mut serialized, &previous);
            previous = serialized.metadata[HASH]
                .as_str()
                .unwrap_or_default()
                .to_string();
            sealed.push(serialized);
        }
        if sealed.is_empty() {
            return Ok(sealed);
        }
        // Once the outcome is known, a cached copy of this stream may be out of date; the
        // executor puts the new state back after a successful command. Evicting before
        // the append instead sent every reader during it (authorization loads the
        // account on each command) to replay the stream from the store.
        let _stale = self.cache.evict_on_drop(Self::cache_key::<A>(id));
        self.backend.append::<A>(&sealed).await?;
        // A stored permit: the follower wakes even if it was busy when we committed.
        self.commits.notify_one();
        if self.committed.receiver_count() > 0 {
            let _ = self.committed.send(std::sync::Arc::new(crate::Appended {
                aggregate_type: A::TYPE.to_string(),
                aggregate_id: id.to_string(),
                event_types: sealed.iter().map(|e| e.event_type.clone()).collect(),
            }));
        }
        Ok(sealed)
    }

    /// One stream's events as stored, for audit and verification.
    pub async fn stream(
        &self,
        aggregate_type: &str,
        id: &str,
    ) -> Result<Vec<SerializedEvent>, StoreError> {
        // From 0: an event slipped in before the first is read, and so caught.
        self.stream_range(aggregate_type, id, 0, None).await
    }

    /// The events of one stream from sequence `from` up to `to` (inclusive; to the end
    /// when `None`), as stored.
    pub async fn stream_range(
        &self,
        aggregate_type: &str,
        id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<SerializedEvent>, StoreError> {
        self.stream_part(aggregate_type, id, from, to, None).await
    }

    /// At most `limit` events of one stream from sequence `from` on, as stored: a long
    /// stream read a part at a time, whatever gaps it has.
    pub async fn stream_from(
        &self,
        aggregate_type: &str,
        id: &str,
        from: u64,
        limit: u64,
    ) -> Result<Vec<SerializedEvent>, StoreError> {
        self.stream_part(aggregate_type, id, from, None, Some(limit))
            .await
    }

    async fn stream_part(
        &self,
        aggregate_type: &str,
        id: &str,
        from: u64,
        to: Option<u64>,
        limit: Option<u64>,
    ) -> Result<Vec<SerializedEvent>, StoreError> {
        self.backend
            .read_stream(
                aggregate_type,
                id,
                from,
                to.unwrap_or(u64::MAX),
                limit.unwrap_or(u64::MAX),
            )
            .await
    }

    /// The events of one stream after `sequence`, positioned by their time (as events
    /// delivered through queues are): how a projector fed events fills a gap.
    pub async fn stream_after(
        &self,
        aggregate_type: &str,
        id: &str,
        sequence: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let from = u64::try_from(sequence.saturating_add(1)).unwrap_or(0);
        let events = self
            .opened(self.stream_range(aggregate_type, id, from, None).await?)
            .await?;
        Ok(events
            .into_iter()
            .map(|event| StoredEvent {
                position: time_position(&event),
                event,
            })
            .collect())
    }

    /// How many events the stream holds (its last sequence; 0 when there is none).
    pub async fn stream_length(&self, aggregate_type: &str, id: &str) -> Result<u64, StoreError> {
        self.backend.stream_length(aggregate_type, id).await
    }

    /// Ids of the streams of `aggregate_type` that hold none of `terminal_events`: the
    /// processes (transfers) still under way, to be resumed after a restart.
    pub async fn open_streams(
        &self,
        aggregate_type: &str,
        terminal_events: &[&str],
    ) -> Result<Vec<String>, StoreError> {
        self.backend
            .open_streams(aggregate_type, terminal_events)
            .await
    }

    /// Signalled after every append (a stored permit: a follower busy when we committed
    /// still wakes).
    pub fn commits(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.commits.clone()
    }

    /// Every later append made through this store (by this process), as it commits. A
    /// receiver that falls more than 1,024 appends behind is told it lagged.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<std::sync::Arc<crate::Appended>> {
        self.committed.subscribe()
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.backend.ping().await
    }

    /// Closes the database connections.
    pub async fn close(&self) {
        self.backend.close().await
    }

    /// The backend's name: `sqlite`, `postgres` or `dynamodb`.
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }
}
