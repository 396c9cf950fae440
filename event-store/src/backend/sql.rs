//! What the two SQL stores share: statements both dialects accept, and the capabilities
//! built on them (idempotency records, account numbers, snapshots, the parts of the
//! event log that do not decode rows). sqlx types each query by its pool, so the shared
//! code is written once here and expanded for each store by [`sql_capabilities!`].

pub(crate) const READ_STREAM: &str =
    "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, \
     payload, metadata FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
     AND sequence >= $3 AND sequence <= $4 ORDER BY sequence LIMIT $5";
/// As [`READ_STREAM`], payload and metadata as text (PostgreSQL's `json` keeps the text
/// it was given).
pub(crate) const READ_STREAM_RAW: &str =
    "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, \
     CAST(payload AS TEXT), CAST(metadata AS TEXT) FROM events WHERE aggregate_type = $1 \
     AND aggregate_id = $2 AND sequence >= $3 AND sequence <= $4 ORDER BY sequence LIMIT $5";
/// One type's events after a (stream, sequence) key, in key order: the primary key.
pub(crate) const READ_KEY_ORDER: &str =
    "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, \
     CAST(payload AS TEXT), CAST(metadata AS TEXT) FROM events WHERE aggregate_type = $1 \
     AND (aggregate_id, sequence) > ($2, $3) ORDER BY aggregate_id, sequence LIMIT $4";
pub(crate) type RawRow = (String, String, i64, String, String, String, String);
/// A position, then a [`RawRow`].
pub(crate) type PositionedRow = (i64, String, String, i64, String, String, String, String);

pub(crate) fn raw_event(row: RawRow) -> Result<domain::chain::RawEvent, crate::StoreError> {
    let metadata = serde_json::from_str(&row.6)?;
    Ok(event_of(row, metadata))
}

/// As [`raw_event`], keeping metadata that is not JSON as its text: the Merkle log and
/// its checks must take in (and name) a row altered into garbage, not stop at it.
pub(crate) fn raw_event_lenient(row: RawRow) -> domain::chain::RawEvent {
    let metadata =
        serde_json::from_str(&row.6).unwrap_or_else(|_| serde_json::Value::String(row.6.clone()));
    event_of(row, metadata)
}

fn event_of((t, i, s, e, v, p, _): RawRow, metadata: serde_json::Value) -> domain::chain::RawEvent {
    domain::chain::RawEvent {
        aggregate_type: t,
        aggregate_id: i,
        sequence: s as usize,
        event_type: e,
        event_version: v,
        payload_json: p,
        metadata,
    }
}

pub(crate) const STREAM_LENGTH: &str =
    "SELECT MAX(sequence) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2";

pub(crate) const CLAIM: &str =
    "INSERT INTO idempotency (caller, key, request_hash, created_at, lease_until) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (caller, key) DO NOTHING";
pub(crate) const RECORD: &str =
    "SELECT request_hash, status, response_headers, response_body, created_at FROM idempotency \
     WHERE caller = $1 AND key = $2";
/// Takes over a claim whose lease ran out (rows claimed before leases existed have none).
pub(crate) const TAKE_OVER: &str =
    "UPDATE idempotency SET lease_until = $1 WHERE caller = $2 AND key = $3 \
     AND status IS NULL AND (lease_until IS NULL OR lease_until < $4)";
pub(crate) const RENEW: &str =
    "UPDATE idempotency SET lease_until = $1 WHERE caller = $2 AND key = $3 AND status IS NULL";
pub(crate) const COMPLETE: &str =
    "UPDATE idempotency SET status = $1, response_headers = $2, response_body = $3 \
     WHERE caller = $4 AND key = $5";
pub(crate) const RELEASE: &str =
    "DELETE FROM idempotency WHERE caller = $1 AND key = $2 AND status IS NULL";
/// An idempotency row: request hash, status, headers, body, created at.
pub(crate) type RecordRow = (String, Option<i32>, Option<String>, Option<Vec<u8>>, String);

/// One write to the idempotency records ([`crate::capabilities::IdempotencyRecords`]),
/// owned, so that a writer task can make it for its caller.
#[derive(Debug)]
pub(crate) enum RecordWrite {
    Claim {
        caller: String,
        key: String,
        request_hash: String,
        lease: std::time::Duration,
    },
    Renew {
        caller: String,
        key: String,
        lease: std::time::Duration,
    },
    Complete {
        caller: String,
        key: String,
        status: u16,
        /// As JSON text.
        headers: String,
        body: Vec<u8>,
    },
    Release {
        caller: String,
        key: String,
    },
    /// A client's new data key (see [`crate::personal`]), kept unless it has one.
    DataKey {
        owner: String,
        wrapped: Vec<u8>,
    },
}

/// What a [`RecordWrite::DataKey`] is keyed by in a group: no caller's idempotency key.
const DATA_KEY_CALLER: &str = "\u{0}data-key";

impl RecordWrite {
    /// The caller and key the write is for.
    pub(crate) fn key(&self) -> (&str, &str) {
        match self {
            RecordWrite::Claim { caller, key, .. }
            | RecordWrite::Renew { caller, key, .. }
            | RecordWrite::Complete { caller, key, .. }
            | RecordWrite::Release { caller, key } => (caller, key),
            RecordWrite::DataKey { owner, .. } => (DATA_KEY_CALLER, owner),
        }
    }
}

/// A client's data key, unless it has (or had) one.
pub(crate) const CREATE_DATA_KEY: &str =
    "INSERT INTO data_keys (owner, wrapped) VALUES ($1, $2) ON CONFLICT (owner) DO NOTHING";

/// Insert, or find the row a retry inserted before: one statement.
pub(crate) const ALLOCATE: &str = "INSERT INTO account_numbers (account_id) VALUES ($1) \
     ON CONFLICT (account_id) DO UPDATE SET account_id = excluded.account_id \
     RETURNING number";

pub(crate) const NEAREST_SNAPSHOT: &str =
    "SELECT version, last_hash, occurred_at, schema, state FROM stream_snapshots \
     WHERE aggregate_type = $1 AND aggregate_id = $2 AND schema = $3 \
     AND version <= $4 AND occurred_at <= $5 ORDER BY version DESC LIMIT 1";
pub(crate) const SAVE_SNAPSHOT: &str = "INSERT INTO stream_snapshots \
     (aggregate_type, aggregate_id, version, last_hash, occurred_at, schema, state) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (aggregate_type, aggregate_id, version) DO UPDATE SET \
     last_hash = excluded.last_hash, occurred_at = excluded.occurred_at, \
     schema = excluded.schema, state = excluded.state";
pub(crate) const RETIRE_SNAPSHOTS: &str = "DELETE FROM stream_snapshots \
     WHERE aggregate_type = $1 AND aggregate_id = $2 AND schema <> $3";

/// A database integer from a sequence or limit (saturating: `u64::MAX` means no bound).
pub(crate) fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The query listing streams without any of `terminal_events` (our own constants, never
/// caller input).
pub(crate) fn open_streams_query(terminal_events: &[&str]) -> String {
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
    format!(
        "SELECT aggregate_id FROM events WHERE aggregate_type = $1 GROUP BY aggregate_id HAVING {finished} = 0"
    )
}

/// Implements, for a SQL store type named `$name`, every capability whose SQL both
/// dialects share: `$events` is the field holding the durable pool, `$records` the pool
/// snapshots (a cache, which needs no fsync of its own) go to, `$connection` the
/// dialect's connection. The store has a cqrs-es `repository` for appends, an
/// `event_from_row` reading its dialect's event rows, an `exclusive()` the writes here
/// hold (see `SqliteStore`'s), and a `record(RecordWrite)` making an idempotency write
/// with `write_record`, defined here (on SQLite, in a group, under the same gate).
macro_rules! sql_capabilities {
    ($store:ty, $name:literal, events: $events:ident, records: $records:ident, connection: $connection:ty) => {
        impl $crate::capabilities::EventLog for $store {
            fn name(&self) -> &'static str {
                $name
            }

            async fn append<A: cqrs_es::Aggregate>(
                &self,
                sealed: &[cqrs_es::persist::SerializedEvent],
            ) -> Result<(), $crate::StoreError> {
                use cqrs_es::persist::PersistedEventRepository;
                Ok(self.repository.persist::<A>(sealed, None).await?)
            }

            async fn read_stream(
                &self,
                aggregate_type: &str,
                id: &str,
                from: u64,
                to: u64,
                limit: u64,
            ) -> Result<Vec<cqrs_es::persist::SerializedEvent>, $crate::StoreError> {
                use $crate::backend::sql::int;
                let rows = sqlx::query_as($crate::backend::sql::READ_STREAM)
                    .bind(aggregate_type)
                    .bind(id)
                    .bind(int(from))
                    .bind(int(to))
                    .bind(int(limit))
                    .fetch_all(&self.$events)
                    .await?;
                rows.into_iter().map(Self::event_from_row).collect()
            }

            async fn read_stream_raw(
                &self,
                aggregate_type: &str,
                id: &str,
                from: u64,
                to: u64,
                limit: u64,
            ) -> Result<Vec<domain::chain::RawEvent>, $crate::StoreError> {
                use $crate::backend::sql::int;
                let rows: Vec<$crate::backend::sql::RawRow> =
                    sqlx::query_as($crate::backend::sql::READ_STREAM_RAW)
                        .bind(aggregate_type)
                        .bind(id)
                        .bind(int(from))
                        .bind(int(to))
                        .bind(int(limit))
                        .fetch_all(&self.$events)
                        .await?;
                rows.into_iter()
                    .map($crate::backend::sql::raw_event)
                    .collect()
            }

            async fn stream_length(
                &self,
                aggregate_type: &str,
                id: &str,
            ) -> Result<u64, $crate::StoreError> {
                let (last,): (Option<i64>,) = sqlx::query_as($crate::backend::sql::STREAM_LENGTH)
                    .bind(aggregate_type)
                    .bind(id)
                    .fetch_one(&self.$events)
                    .await?;
                Ok(last.unwrap_or(0) as u64)
            }

            async fn open_streams(
                &self,
                aggregate_type: &str,
                terminal_events: &[&str],
            ) -> Result<Vec<String>, $crate::StoreError> {
                let query = $crate::backend::sql::open_streams_query(terminal_events);
                let ids: Vec<(String,)> = sqlx::query_as(&query)
                    .bind(aggregate_type)
                    .fetch_all(&self.$events)
                    .await?;
                Ok(ids.into_iter().map(|(id,)| id).collect())
            }

            async fn ping(&self) -> Result<(), $crate::StoreError> {
                sqlx::query("SELECT 1").execute(&self.$events).await?;
                Ok(())
            }

            async fn close(&self) {
                self.$records.close().await;
                self.$events.close().await;
            }
        }

        impl $store {
            /// Makes one write to the idempotency records on `connection` (in the
            /// caller's transaction, if it opened one): `Some` claim for a claim.
            pub(crate) async fn write_record(
                connection: &mut $connection,
                write: &$crate::backend::sql::RecordWrite,
            ) -> Result<Option<$crate::idempotency::Claim>, $crate::StoreError> {
                use $crate::backend::sql::{self, RecordWrite};
                use $crate::idempotency::lease_end;
                let statement = match write {
                    RecordWrite::Claim {
                        caller,
                        key,
                        request_hash,
                        lease,
                    } => {
                        return Self::claim_on(connection, caller, key, request_hash, *lease)
                            .await
                            .map(Some)
                    }
                    RecordWrite::Renew { caller, key, lease } => sqlx::query(sql::RENEW)
                        .bind(lease_end(*lease))
                        .bind(caller)
                        .bind(key),
                    RecordWrite::Complete {
                        caller,
                        key,
                        status,
                        headers,
                        body,
                    } => sqlx::query(sql::COMPLETE)
                        .bind(i32::from(*status))
                        .bind(headers)
                        .bind(body)
                        .bind(caller)
                        .bind(key),
                    RecordWrite::Release { caller, key } => {
                        sqlx::query(sql::RELEASE).bind(caller).bind(key)
                    }
                    RecordWrite::DataKey { owner, wrapped } => {
                        sqlx::query(sql::CREATE_DATA_KEY).bind(owner).bind(wrapped)
                    }
                };
                statement.execute(&mut *connection).await?;
                Ok(None)
            }

            /// Claims `key`: inserts its row, or finds who has it: this request before
            /// (a replay), another request (a mismatch), or a holder at work or gone
            /// (a lease run out is taken over).
            async fn claim_on(
                connection: &mut $connection,
                caller: &str,
                key: &str,
                request_hash: &str,
                lease: std::time::Duration,
            ) -> Result<$crate::idempotency::Claim, $crate::StoreError> {
                use $crate::backend::sql;
                use $crate::idempotency::{lease_end, millis_of, now_ms, Claim, StoredResponse};
                let now = chrono::Utc::now();
                let created_at = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                let inserted = sqlx::query(sql::CLAIM)
                    .bind(caller)
                    .bind(key)
                    .bind(request_hash)
                    .bind(&created_at)
                    .bind(lease_end(lease))
                    .execute(&mut *connection)
                    .await?;
                if inserted.rows_affected() == 1 {
                    return Ok(Claim::New {
                        claimed_at_ms: now.timestamp_millis(),
                        recovering: false,
                    });
                }
                let row: Option<sql::RecordRow> = sqlx::query_as(sql::RECORD)
                    .bind(caller)
                    .bind(key)
                    .fetch_optional(&mut *connection)
                    .await?;
                let Some((stored_hash, status, headers, body, created_at)) = row else {
                    // Released between our insert attempt and the read: the caller may retry.
                    return Ok(Claim::InProgress);
                };
                if stored_hash != request_hash {
                    return Ok(Claim::Mismatch);
                }
                if let Some(status) = status {
                    return Ok(Claim::Replay(StoredResponse {
                        status: u16::try_from(status)
                            .map_err(|e| $crate::StoreError::Corrupt(e.to_string()))?,
                        headers: serde_json::from_str(headers.as_deref().unwrap_or("[]"))?,
                        body: body.unwrap_or_default(),
                    }));
                }
                let taken = sqlx::query(sql::TAKE_OVER)
                    .bind(lease_end(lease))
                    .bind(caller)
                    .bind(key)
                    .bind(now_ms())
                    .execute(&mut *connection)
                    .await?;
                if taken.rows_affected() == 1 {
                    return Ok(Claim::New {
                        claimed_at_ms: millis_of(&created_at)?,
                        recovering: true,
                    });
                }
                Ok(Claim::InProgress)
            }
        }

        #[async_trait::async_trait]
        impl $crate::capabilities::IdempotencyRecords for $store {
            async fn claim(
                &self,
                caller: &str,
                key: &str,
                request_hash: &str,
                lease: std::time::Duration,
            ) -> Result<$crate::idempotency::Claim, $crate::StoreError> {
                let write = $crate::backend::sql::RecordWrite::Claim {
                    caller: caller.to_owned(),
                    key: key.to_owned(),
                    request_hash: request_hash.to_owned(),
                    lease,
                };
                self.record(write).await?.ok_or_else(|| {
                    $crate::StoreError::Corrupt("a claim was answered without its outcome".into())
                })
            }

            async fn renew(
                &self,
                caller: &str,
                key: &str,
                lease: std::time::Duration,
            ) -> Result<(), $crate::StoreError> {
                let write = $crate::backend::sql::RecordWrite::Renew {
                    caller: caller.to_owned(),
                    key: key.to_owned(),
                    lease,
                };
                self.record(write).await.map(drop)
            }

            async fn complete(
                &self,
                caller: &str,
                key: &str,
                response: &$crate::idempotency::StoredResponse,
            ) -> Result<(), $crate::StoreError> {
                let write = $crate::backend::sql::RecordWrite::Complete {
                    caller: caller.to_owned(),
                    key: key.to_owned(),
                    status: response.status,
                    headers: serde_json::to_string(&response.headers)?,
                    body: response.body.clone(),
                };
                self.record(write).await.map(drop)
            }

            async fn release(&self, caller: &str, key: &str) -> Result<(), $crate::StoreError> {
                let write = $crate::backend::sql::RecordWrite::Release {
                    caller: caller.to_owned(),
                    key: key.to_owned(),
                };
                self.record(write).await.map(drop)
            }
        }

        #[async_trait::async_trait]
        impl $crate::capabilities::KeyOrderScan for $store {
            async fn read_key_order(
                &self,
                aggregate_type: &str,
                after_id: &str,
                after_sequence: i64,
                limit: u64,
            ) -> Result<Vec<domain::chain::RawEvent>, $crate::StoreError> {
                let rows: Vec<$crate::backend::sql::RawRow> =
                    sqlx::query_as($crate::backend::sql::READ_KEY_ORDER)
                        .bind(aggregate_type)
                        .bind(after_id)
                        .bind(after_sequence)
                        .bind($crate::backend::sql::int(limit))
                        .fetch_all(&self.$events)
                        .await?;
                rows.into_iter()
                    .map($crate::backend::sql::raw_event)
                    .collect()
            }
        }

        #[async_trait::async_trait]
        impl $crate::capabilities::NumberSequence for $store {
            async fn allocate(&self, key: &str) -> Result<i64, $crate::StoreError> {
                // The durable pool: the number is on disk before what uses it is.
                let _exclusive = self.exclusive().await;
                Ok(sqlx::query_scalar($crate::backend::sql::ALLOCATE)
                    .bind(key)
                    .fetch_one(&self.$events)
                    .await?)
            }
        }

        #[async_trait::async_trait]
        impl $crate::capabilities::SnapshotStore for $store {
            async fn nearest(
                &self,
                aggregate_type: &str,
                id: &str,
                schema: &str,
                version: u64,
                time: &str,
            ) -> Result<Option<$crate::capabilities::SnapshotRow>, $crate::StoreError> {
                let row: Option<(i64, String, String, String, String)> =
                    sqlx::query_as($crate::backend::sql::NEAREST_SNAPSHOT)
                        .bind(aggregate_type)
                        .bind(id)
                        .bind(schema)
                        .bind($crate::backend::sql::int(version))
                        .bind(time)
                        .fetch_optional(&self.$events)
                        .await?;
                Ok(row.map(|(version, last_hash, occurred_at, schema, state)| {
                    $crate::capabilities::SnapshotRow {
                        version: version.max(0) as u64,
                        last_hash,
                        occurred_at,
                        schema,
                        state,
                    }
                }))
            }

            async fn save(
                &self,
                aggregate_type: &str,
                id: &str,
                row: &$crate::capabilities::SnapshotRow,
            ) -> Result<(), $crate::StoreError> {
                // A cache needs no fsync of its own.
                let _exclusive = self.exclusive().await;
                let mut tx = self.$records.begin().await?;
                sqlx::query($crate::backend::sql::SAVE_SNAPSHOT)
                    .bind(aggregate_type)
                    .bind(id)
                    .bind($crate::backend::sql::int(row.version))
                    .bind(&row.last_hash)
                    .bind(&row.occurred_at)
                    .bind(&row.schema)
                    .bind(&row.state)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query($crate::backend::sql::RETIRE_SNAPSHOTS)
                    .bind(aggregate_type)
                    .bind(id)
                    .bind(&row.schema)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}
pub(crate) use sql_capabilities;
