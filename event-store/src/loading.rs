//! Loading aggregates: from the cache, or from the store's latest snapshot and the
//! events after it, or as of a point in the stream. Snapshots of aggregate state every few hundred events, so loading a long stream reads
//! its latest snapshot and the events after it, and an auditor's state as of a version
//! starts from the nearest snapshot below. A cache derived from the events, never a
//! replacement for them: a snapshot is used only under the schema it was written with
//! ([`domain::snapshot::schema`]) and only while the event it ends at still carries the
//! hash it recorded; otherwise it is ignored, the events are replayed and a new one is
//! written. Emptying the table loses nothing but time. The backends with a
//! [`crate::capabilities::SnapshotStore`] keep snapshots; on the others every load
//! replays the stream.

use domain::chain::{RawEvent, GENESIS_HASH};
use domain::metadata::{HASH, OCCURRED_AT};
use domain::snapshot::{schema, Snapshotted};
use serde_json::Value;

use crate::capabilities::{EventLog, SnapshotRow};
use crate::error::StoreError;
use crate::state::{AsOf, Loaded, StateAt};
use crate::store::EventStore;

/// A stream folded up to a point, and how it got there.
pub(crate) struct Folded<A> {
    pub(crate) loaded: Loaded<A>,
    /// Events applied on top of the snapshot (all of them without one).
    pub(crate) replayed: u64,
}

/// How many events a time-bounded fold reads at a time: it stops at the first event
/// past the bound, which it cannot find in SQL.
const TIME_PART: u64 = 1_000;

fn text(event: &RawEvent, field: &str) -> String {
    event
        .metadata
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl EventStore {
    /// Where snapshots are kept: the backend's snapshot store, unless turned off.
    fn snapshots(&self) -> Option<&dyn crate::capabilities::SnapshotStore> {
        self.backend.snapshots().filter(|_| self.snapshot_every > 0)
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

    /// Folds stream `id` of `A` up to `as_of`, from the nearest usable snapshot below.
    pub(crate) async fn fold<A: Snapshotted>(
        &self,
        id: &str,
        as_of: AsOf<'_>,
    ) -> Result<Folded<A>, StoreError> {
        if let Some(snapshots) = self.snapshots().filter(|_| A::SNAPSHOTS) {
            if let Some(row) = Self::nearest_snapshot::<A>(snapshots, id, as_of).await? {
                if let Some(folded) = self.fold_from::<A>(id, Some(&row), as_of).await? {
                    return Ok(folded);
                }
                tracing::warn!(
                    aggregate = A::TYPE,
                    id,
                    version = row.version,
                    "snapshot does not match its stream; replaying the events"
                );
            }
        }
        Ok(self
            .fold_from::<A>(id, None, as_of)
            .await?
            .expect("without a snapshot there is nothing to mismatch"))
    }

    /// The stream folded from `row` (or from its start) up to `as_of`; `None` if the
    /// snapshot does not belong to the stream as it is now (its last event is gone or
    /// has another hash) or cannot be read.
    async fn fold_from<A: Snapshotted>(
        &self,
        id: &str,
        row: Option<&SnapshotRow>,
        as_of: AsOf<'_>,
    ) -> Result<Option<Folded<A>>, StoreError> {
        // From the snapshot's own last event (checked, then skipped), or from 0: an
        // event slipped in before the first is read, as verification reads it.
        let from = row.map_or(0, |row| row.version);
        let (mut events, mut next) = self.read_on::<A>(id, from, as_of).await?;
        let mut folded = match row {
            None => Folded {
                loaded: Loaded {
                    aggregate: A::default(),
                    version: 0,
                    last_hash: GENESIS_HASH.to_string(),
                    latest_time: String::new(),
                },
                replayed: 0,
            },
            Some(row) => {
                let Some(first) = events.first() else {
                    return Ok(None);
                };
                if first.sequence as u64 != row.version || text(first, HASH) != row.last_hash {
                    return Ok(None);
                }
                let Ok(aggregate) = serde_json::from_str::<A>(&row.state) else {
                    return Ok(None);
                };
                events.remove(0);
                Folded {
                    loaded: Loaded {
                        aggregate,
                        version: row.version,
                        last_hash: row.last_hash.clone(),
                        latest_time: row.occurred_at.clone(),
                    },
                    replayed: 0,
                }
            }
        };
        loop {
            let past_bound = Self::fold_onto(&mut folded, &events, as_of)?;
            match next {
                Some(from) if !past_bound => {
                    (events, next) = self.read_on::<A>(id, from, as_of).await?
                }
                _ => return Ok(Some(folded)),
            }
        }
    }

    /// The events of the stream from `from` that a fold up to `as_of` may need, and
    /// where to read on if more may follow (time bounds are read a part at a time).
    async fn read_on<A: Snapshotted>(
        &self,
        id: &str,
        from: u64,
        as_of: AsOf<'_>,
    ) -> Result<(Vec<RawEvent>, Option<u64>), StoreError> {
        // Payloads as stored text, decoded straight into the event type; personal data
        // opened first.
        let read = |to, limit| async move {
            let mut events = self
                .backend
                .read_stream_raw(A::TYPE, id, from, to, limit)
                .await?;
            if let Some(vault) = &self.vault {
                for event in &mut events {
                    vault.open_raw(event).await?;
                }
            }
            Ok::<_, StoreError>(events)
        };
        match as_of {
            AsOf::Latest => Ok((read(u64::MAX, u64::MAX).await?, None)),
            AsOf::Version(version) => Ok((read(version, u64::MAX).await?, None)),
            AsOf::Time(_) => {
                let part = read(u64::MAX, TIME_PART).await?;
                let next = match part.last() {
                    Some(last) if part.len() as u64 == TIME_PART => Some(last.sequence as u64 + 1),
                    _ => None,
                };
                Ok((part, next))
            }
        }
    }

    /// Applies `events` in order up to `as_of`; whether it stopped at an event past a
    /// time bound (the fold is then complete).
    fn fold_onto<A: Snapshotted>(
        folded: &mut Folded<A>,
        events: &[RawEvent],
        as_of: AsOf<'_>,
    ) -> Result<bool, StoreError> {
        for event in events {
            let occurred_at = text(event, OCCURRED_AT);
            if matches!(as_of, AsOf::Time(bound) if occurred_at.as_str() > bound) {
                return Ok(true);
            }
            let payload: A::Event = domain::upcast::decode_raw(event)?;
            let loaded = &mut folded.loaded;
            loaded.aggregate.apply(payload);
            loaded.version = event.sequence as u64;
            loaded.last_hash = text(event, HASH);
            if occurred_at > loaded.latest_time {
                loaded.latest_time = occurred_at;
            }
            folded.replayed += 1;
        }
        Ok(false)
    }

    async fn nearest_snapshot<A: Snapshotted>(
        snapshots: &dyn crate::capabilities::SnapshotStore,
        id: &str,
        as_of: AsOf<'_>,
    ) -> Result<Option<SnapshotRow>, StoreError> {
        let (version, time) = match as_of {
            AsOf::Latest => (u64::MAX, "~"),
            AsOf::Version(version) => (version, "~"),
            AsOf::Time(time) => (u64::MAX, time),
        };
        snapshots
            .nearest(A::TYPE, id, &schema::<A>(), version, time)
            .await
    }

    /// Keeps `loaded` as a snapshot, and drops the stream's snapshots of other schemas.
    /// Best effort: a snapshot that cannot be written only means a longer replay later.
    pub(crate) async fn save_snapshot<A: Snapshotted>(&self, id: &str, loaded: &Loaded<A>) {
        let Some(snapshots) = self.snapshots().filter(|_| A::SNAPSHOTS) else {
            return;
        };
        if loaded.version == 0 {
            return;
        }
        let row = match serde_json::to_string(&loaded.aggregate) {
            Ok(state) => SnapshotRow {
                version: loaded.version,
                last_hash: loaded.last_hash.clone(),
                occurred_at: loaded.latest_time.clone(),
                schema: schema::<A>(),
                state,
            },
            Err(error) => {
                tracing::warn!(aggregate = A::TYPE, id, %error, "snapshot not written");
                return;
            }
        };
        if let Err(error) = snapshots.save(A::TYPE, id, &row).await {
            tracing::warn!(aggregate = A::TYPE, id, %error, "snapshot not written");
        }
    }

    /// Whether a stream that went from `before` to `after` events crossed a snapshot
    /// point.
    pub(crate) fn snapshot_due(&self, before: u64, after: u64) -> bool {
        self.snapshot_every > 0 && after / self.snapshot_every > before / self.snapshot_every
    }

    /// The state of aggregate `id` as of `as_of`, from the nearest snapshot below it and
    /// the events after; `None` when the stream does not exist.
    pub async fn state_at<A: Snapshotted>(
        &self,
        id: &str,
        as_of: AsOf<'_>,
    ) -> Result<Option<StateAt<A>>, StoreError> {
        let latest_version = self.stream_length(A::TYPE, id).await?;
        if latest_version == 0 {
            return Ok(None);
        }
        let folded = self.fold::<A>(id, as_of).await?;
        Ok(Some(StateAt {
            aggregate: folded.loaded.aggregate,
            version: folded.loaded.version,
            latest_version,
        }))
    }
}
