//! Loading aggregates and appending sealed events.

use cqrs_es::persist::{PersistedEventRepository, SerializedEvent};
use cqrs_es::{Aggregate, DomainEvent};
use domain::chain::seal;
use domain::metadata::{CommandMetadata, HASH, OCCURRED_AT};
use domain::snapshot::Snapshotted;
use serde_json::Value;

use crate::backend::{with_pool, with_repository, Backend};
use crate::error::StoreError;
use crate::snapshots::AsOf;

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
}

/// An aggregate as loaded: its state, its version (the last sequence) and the hash of its
/// last event, which the next event links to.
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    pub aggregate: A,
    pub version: u64,
    pub(crate) last_hash: String,
    /// The latest time among its events (a snapshot records it, so a state as of a
    /// time starts only from a snapshot wholly before that time).
    pub(crate) latest_time: String,
}

impl<A: Aggregate> Loaded<A> {
    pub fn exists(&self) -> bool {
        self.version > 0
    }

    /// The state after `events` were appended as `sealed` (what `append` returned), so a
    /// writer of many batches need not reload the stream between them.
    pub fn advanced(mut self, events: Vec<A::Event>, sealed: &[SerializedEvent]) -> Self {
        if let Some(last) = sealed.last() {
            self.version = last.sequence as u64;
            self.last_hash = last
                .metadata
                .get(HASH)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
        }
        for event in sealed {
            if let Some(time) = event.metadata.get(OCCURRED_AT).and_then(Value::as_str) {
                if time > self.latest_time.as_str() {
                    self.latest_time = time.to_string();
                }
            }
        }
        for event in events {
            self.aggregate.apply(event);
        }
        self
    }
}

impl EventStore {
    /// A store over `backend`. Aggregates are cached in memory between commands: on the
    /// embedded SQLite store (unless turned off), whose owning process is its only
    /// writer, for every load; on PostgreSQL, which several processes may share, for
    /// deciding commands only. A command decided on a copy another process has since
    /// outdated cannot be written (its sequence is taken), so it is decided again on
    /// fresh state; other readers (authorization, transfers, mail) always read the store.
    pub fn new(backend: Backend) -> Self {
        let shared = matches!(backend, Backend::Postgres { .. });
        let cache = crate::cache::AggregateCache::new(
            shared
                || matches!(
                    backend,
                    Backend::Sqlite {
                        options: crate::backend::SqliteOptions {
                            aggregate_cache: true,
                            ..
                        },
                        ..
                    }
                ),
        );
        EventStore {
            backend,
            locks: Default::default(),
            commits: Default::default(),
            cache,
            shared,
            committed: tokio::sync::broadcast::channel(1024).0,
            snapshot_every: crate::snapshots::SNAPSHOT_EVERY,
        }
    }

    /// Takes a snapshot every `events` events of a stream (0: never), instead of every
    /// [`crate::SNAPSHOT_EVERY`].
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

    /// Loads the aggregate `id` (from the cache, or by replaying its stream).
    pub async fn load<A: Snapshotted + Clone + 'static>(
        &self,
        id: &str,
    ) -> Result<Loaded<A>, StoreError> {
        if self.shared {
            return self.load_from_store::<A>(id).await;
        }
        self.load_for_command(id).await
    }

    /// Loads the aggregate `id` to decide a command on: from the cache when it holds the
    /// stream, which on a shared store may be out of date (the append then conflicts).
    pub(crate) async fn load_for_command<A: Snapshotted + Clone + 'static>(
        &self,
        id: &str,
    ) -> Result<Loaded<A>, StoreError> {
        let key = Self::cache_key::<A>(id);
        if let Some(loaded) = self.cache.get::<A>(&key) {
            return Ok(loaded);
        }
        let loaded = self.load_from_store::<A>(id).await?;
        if loaded.exists() {
            self.cache.put(key, loaded.clone());
        }
        Ok(loaded)
    }

    /// One page of every event in the DynamoDB store (with time positions), and where
    /// the next page starts; `None` when the scan is complete.
    #[cfg(feature = "dynamo")]
    pub async fn scan(
        &self,
        after: Option<crate::ScanCursor>,
    ) -> Result<(Vec<crate::StoredEvent>, Option<crate::ScanCursor>), StoreError> {
        let Backend::Dynamo { client, tables, .. } = &self.backend else {
            return Err(StoreError::Unsupported(
                "scanning is for the DynamoDB store; the SQL stores are read in commit order",
            ));
        };
        let (events, next) = crate::dynamo::scan(client, tables, after).await?;
        let events = events
            .into_iter()
            .map(|event| crate::StoredEvent {
                position: crate::time_position(&event),
                event,
            })
            .collect();
        Ok((events, next))
    }

    /// Loads the aggregate `id` from the store, bypassing the cache: its latest snapshot
    /// and the events after it. A load that had to replay a snapshot interval or more
    /// leaves a snapshot behind.
    pub async fn load_from_store<A: Snapshotted>(&self, id: &str) -> Result<Loaded<A>, StoreError> {
        let folded = self.fold::<A>(id, AsOf::Latest).await?;
        if self.snapshot_every > 0 && folded.replayed >= self.snapshot_every {
            self.save_snapshot(id, &folded.loaded).await;
        }
        Ok(folded.loaded)
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
        // Whatever happens next, a cached copy of this stream may be out of date; the
        // executor puts the new state back after a successful command.
        self.cache.evict(&Self::cache_key::<A>(id));
        with_repository!(&self.backend, repo => repo.persist::<A>(&sealed, None).await)?;
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
        let to = to.map_or(i64::MAX, |to| i64::try_from(to).unwrap_or(i64::MAX));
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        let limit = limit.map_or(i64::MAX, |limit| i64::try_from(limit).unwrap_or(i64::MAX));
        #[cfg(feature = "dynamo")]
        if let Backend::Dynamo { client, tables, .. } = &self.backend {
            let mut events = crate::dynamo::stream(client, tables, aggregate_type, id).await?;
            events.retain(|e| (from..=to).contains(&(e.sequence as i64)));
            events.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            return Ok(events);
        }
        const QUERY: &str =
            "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, \
             payload, metadata FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
             AND sequence >= $3 AND sequence <= $4 ORDER BY sequence LIMIT $5";
        let rows = match &self.backend {
            Backend::Sqlite { pool, .. } => {
                let rows: Vec<(String, String, i64, String, String, String, String)> =
                    sqlx::query_as(QUERY)
                        .bind(aggregate_type)
                        .bind(id)
                        .bind(from)
                        .bind(to)
                        .bind(limit)
                        .fetch_all(pool)
                        .await?;
                rows.into_iter()
                    .map(|(t, i, s, e, v, p, m)| {
                        Ok((
                            t,
                            i,
                            s,
                            e,
                            v,
                            serde_json::from_str(&p)?,
                            serde_json::from_str(&m)?,
                        ))
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?
            }
            Backend::Postgres { pool, .. } => {
                let rows: Vec<(String, String, i64, String, String, Value, Value)> =
                    sqlx::query_as(QUERY)
                        .bind(aggregate_type)
                        .bind(id)
                        .bind(from)
                        .bind(to)
                        .bind(limit)
                        .fetch_all(pool)
                        .await?;
                rows
            }
            #[cfg(feature = "dynamo")]
            Backend::Dynamo { .. } => unreachable!("answered above"),
        };
        Ok(rows
            .into_iter()
            .map(|(t, i, s, e, v, p, m)| SerializedEvent::new(i, s as usize, t, e, v, p, m))
            .collect())
    }

    /// How many events the stream holds (its last sequence; 0 when there is none).
    pub async fn stream_length(&self, aggregate_type: &str, id: &str) -> Result<u64, StoreError> {
        #[cfg(feature = "dynamo")]
        if let Backend::Dynamo { client, tables, .. } = &self.backend {
            let events = crate::dynamo::stream(client, tables, aggregate_type, id).await?;
            return Ok(events.last().map_or(0, |e| e.sequence as u64));
        }
        let (last,): (Option<i64>,) = with_pool!(&self.backend, pool => sqlx::query_as(
            "SELECT MAX(sequence) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2",
        )
        .bind(aggregate_type)
        .bind(id)
        .fetch_one(pool)
        .await?);
        Ok(last.unwrap_or(0) as u64)
    }

    /// Ids of the streams of `aggregate_type` that hold none of `terminal_events`: the
    /// processes (transfers) still under way, to be resumed after a restart.
    pub async fn open_streams(
        &self,
        aggregate_type: &str,
        terminal_events: &[&str],
    ) -> Result<Vec<String>, StoreError> {
        #[cfg(feature = "dynamo")]
        if let Backend::Dynamo { client, tables, .. } = &self.backend {
            return crate::dynamo::open_streams(client, tables, aggregate_type, terminal_events)
                .await;
        }
        // The terminal event types are our own constants, never caller input.
        let terminal = terminal_events
            .iter()
            .map(|t| format!("'{}'", t.replace('\'', "")))
            .collect::<Vec<_>>()
            .join(",");
        let finished = if terminal.is_empty() {
            "0".to_string()
        } else {
            format!("SUM(CASE WHEN event_type IN ({terminal}) THEN 1 ELSE 0 END)")
        };
        let query = format!(
            "SELECT aggregate_id FROM events WHERE aggregate_type = $1 GROUP BY aggregate_id HAVING {finished} = 0"
        );
        let ids: Vec<(String,)> = with_pool!(&self.backend, pool => sqlx::query_as(&query).bind(aggregate_type).fetch_all(pool).await?);
        Ok(ids.into_iter().map(|(id,)| id).collect())
    }
}
