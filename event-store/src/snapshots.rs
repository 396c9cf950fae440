//! Snapshots of aggregate state every few hundred events, so loading a long stream reads
//! its latest snapshot and the events after it, and an auditor's state as of a version
//! starts from the nearest snapshot below. A cache derived from the events, never a
//! replacement for them: a snapshot is used only under the schema it was written with
//! ([`domain::snapshot::schema`]) and only while the event it ends at still carries the
//! hash it recorded; otherwise it is ignored, the events are replayed and a new one is
//! written. Emptying the table loses nothing but time. The SQL stores keep snapshots;
//! on DynamoDB every load replays the stream.

use cqrs_es::persist::SerializedEvent;
use domain::chain::GENESIS_HASH;
use domain::metadata::{HASH, OCCURRED_AT};
use domain::snapshot::{schema, Snapshotted};
use serde_json::Value;

use crate::backend::Backend;
use crate::error::StoreError;
use crate::store::{EventStore, Loaded};

/// How many events apart snapshots are taken by default: a load replays fewer than this.
pub const SNAPSHOT_EVERY: u64 = 500;

/// Which state to read: the latest, or as of a version or a time (RFC 3339 in UTC,
/// compared as text, as events record it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf<'a> {
    Latest,
    Version(u64),
    Time(&'a str),
}

/// An aggregate's state as of a point in its stream.
#[derive(Debug, Clone)]
pub struct StateAt<A> {
    pub aggregate: A,
    /// The last event folded in (0: none, the stream had not started by then).
    pub version: u64,
    /// The stream's length now.
    pub latest_version: u64,
}

/// A stream folded up to a point, and how it got there.
pub(crate) struct Folded<A> {
    pub(crate) loaded: Loaded<A>,
    /// Events applied on top of the snapshot (all of them without one).
    pub(crate) replayed: u64,
}

struct Row {
    version: i64,
    last_hash: String,
    /// The latest time among the events folded in (times need not rise along a
    /// stream: a command's time is taken when it arrives, before it waits its turn).
    occurred_at: String,
    state: String,
}

/// How many events a time-bounded fold reads at a time: it stops at the first event
/// past the bound, which it cannot find in SQL.
const TIME_PART: u64 = 1_000;

fn text(event: &SerializedEvent, field: &str) -> String {
    event
        .metadata
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl EventStore {
    /// Whether this store keeps snapshots (a SQL backend, and not turned off).
    fn snapshots_kept(&self) -> bool {
        self.snapshot_every > 0 && !self.backend_is_dynamo()
    }

    pub(crate) fn backend_is_dynamo(&self) -> bool {
        #[cfg(feature = "dynamo")]
        if let Backend::Dynamo { .. } = self.backend {
            return true;
        }
        false
    }

    /// Folds stream `id` of `A` up to `as_of`, from the nearest usable snapshot below.
    pub(crate) async fn fold<A: Snapshotted>(
        &self,
        id: &str,
        as_of: AsOf<'_>,
    ) -> Result<Folded<A>, StoreError> {
        if self.snapshots_kept() {
            if let Some(row) = self.nearest_snapshot::<A>(id, as_of).await? {
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
        row: Option<&Row>,
        as_of: AsOf<'_>,
    ) -> Result<Option<Folded<A>>, StoreError> {
        // From the snapshot's own last event (checked, then skipped), or from 0: an
        // event slipped in before the first is read, as verification reads it.
        let from = row.map_or(0, |row| row.version as u64);
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
                if first.sequence as i64 != row.version || text(first, HASH) != row.last_hash {
                    return Ok(None);
                }
                let Ok(aggregate) = serde_json::from_str::<A>(&row.state) else {
                    return Ok(None);
                };
                events.remove(0);
                Folded {
                    loaded: Loaded {
                        aggregate,
                        version: row.version as u64,
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
    ) -> Result<(Vec<SerializedEvent>, Option<u64>), StoreError> {
        match as_of {
            AsOf::Latest => Ok((self.stream_range(A::TYPE, id, from, None).await?, None)),
            AsOf::Version(version) => Ok((
                self.stream_range(A::TYPE, id, from, Some(version)).await?,
                None,
            )),
            AsOf::Time(_) => {
                let part = self.stream_from(A::TYPE, id, from, TIME_PART).await?;
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
        events: &[SerializedEvent],
        as_of: AsOf<'_>,
    ) -> Result<bool, StoreError> {
        for event in events {
            let occurred_at = text(event, OCCURRED_AT);
            if matches!(as_of, AsOf::Time(bound) if occurred_at.as_str() > bound) {
                return Ok(true);
            }
            let payload: A::Event = domain::upcast::decode(event)?;
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
        &self,
        id: &str,
        as_of: AsOf<'_>,
    ) -> Result<Option<Row>, StoreError> {
        let (version, time) = match as_of {
            AsOf::Latest => (i64::MAX, "~"),
            AsOf::Version(version) => (i64::try_from(version).unwrap_or(i64::MAX), "~"),
            AsOf::Time(time) => (i64::MAX, time),
        };
        const QUERY: &str = "SELECT version, last_hash, occurred_at, state FROM stream_snapshots \
            WHERE aggregate_type = $1 AND aggregate_id = $2 AND schema = $3 \
            AND version <= $4 AND occurred_at <= $5 ORDER BY version DESC LIMIT 1";
        let row: Option<(i64, String, String, String)> = crate::backend::with_pool!(&self.backend, pool => sqlx::query_as(QUERY)
                .bind(A::TYPE)
                .bind(id)
                .bind(schema::<A>())
                .bind(version)
                .bind(time)
                .fetch_optional(pool)
                .await?);
        Ok(row.map(|(version, last_hash, occurred_at, state)| Row {
            version,
            last_hash,
            occurred_at,
            state,
        }))
    }

    /// Keeps `loaded` as a snapshot, and drops the stream's snapshots of other schemas.
    /// Best effort: a snapshot that cannot be written only means a longer replay later.
    pub(crate) async fn save_snapshot<A: Snapshotted>(&self, id: &str, loaded: &Loaded<A>) {
        if !self.snapshots_kept() || loaded.version == 0 {
            return;
        }
        if let Err(error) = self.write_snapshot(id, loaded).await {
            tracing::warn!(aggregate = A::TYPE, id, %error, "snapshot not written");
        }
    }

    async fn write_snapshot<A: Snapshotted>(
        &self,
        id: &str,
        loaded: &Loaded<A>,
    ) -> Result<(), StoreError> {
        let state = serde_json::to_string(&loaded.aggregate)?;
        let schema = schema::<A>();
        const UPSERT: &str = "INSERT INTO stream_snapshots \
            (aggregate_type, aggregate_id, version, last_hash, occurred_at, schema, state) \
            VALUES ($1, $2, $3, $4, $5, $6, $7) \
            ON CONFLICT (aggregate_type, aggregate_id, version) DO UPDATE SET \
            last_hash = excluded.last_hash, occurred_at = excluded.occurred_at, \
            schema = excluded.schema, state = excluded.state";
        const RETIRE: &str = "DELETE FROM stream_snapshots \
            WHERE aggregate_type = $1 AND aggregate_id = $2 AND schema <> $3";
        macro_rules! write {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await?;
                sqlx::query(UPSERT)
                    .bind(A::TYPE)
                    .bind(id)
                    .bind(loaded.version as i64)
                    .bind(&loaded.last_hash)
                    .bind(&loaded.latest_time)
                    .bind(&schema)
                    .bind(&state)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(RETIRE)
                    .bind(A::TYPE)
                    .bind(id)
                    .bind(&schema)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }};
        }
        match &self.backend {
            // A cache needs no fsync of its own: the pool without one.
            Backend::Sqlite { idempotency, .. } => write!(idempotency),
            Backend::Postgres { pool, .. } => write!(pool),
            #[cfg(feature = "dynamo")]
            Backend::Dynamo { .. } => {}
        }
        Ok(())
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
