//! Running a command against an aggregate: load, decide, append; with optimistic
//! concurrency (`If-Match`), in-process serialisation per stream, and retries when
//! another process appended first, so concurrent writers never lose an update.

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::SerializedEvent;
use cqrs_es::Aggregate;
use domain::metadata::CommandMetadata;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::error::StoreError;
use crate::store::{EventStore, Loaded};

/// How many times a command is re-decided after losing a race with another process.
const MAX_ATTEMPTS: u32 = 8;

/// The version a command expects its aggregate at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    Any,
    /// From `If-Match`: refuse if the aggregate moved on.
    Version(u64),
}

/// The outcome of a command that was accepted.
#[derive(Debug, Clone)]
pub struct Committed<A> {
    /// The aggregate's state after the command.
    pub aggregate: A,
    /// The aggregate's version after the command.
    pub version: u64,
    /// The events appended (empty when the command was already satisfied).
    pub events: Vec<SerializedEvent>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecuteError<E: std::error::Error> {
    #[error(transparent)]
    Refused(E),
    #[error("the aggregate is at version {actual}, not {expected}")]
    VersionMismatch { expected: u64, actual: u64 },
    #[error("too many concurrent writers on this stream; try again")]
    Contention,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One async mutex per stream, so commands on the same aggregate in this process queue
/// instead of racing; entries die with their last user.
#[derive(Default)]
pub(crate) struct StreamLocks(Mutex<HashMap<String, Weak<AsyncMutex<()>>>>);

impl StreamLocks {
    async fn lock(&self, key: String) -> OwnedMutexGuard<()> {
        let mutex = {
            let mut map = self
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if map.len() > 4096 {
                map.retain(|_, weak| weak.strong_count() > 0);
            }
            match map.get(&key).and_then(Weak::upgrade) {
                Some(mutex) => mutex,
                None => {
                    let mutex = Arc::new(AsyncMutex::new(()));
                    map.insert(key, Arc::downgrade(&mutex));
                    mutex
                }
            }
        };
        mutex.lock_owned().await
    }
}

impl EventStore {
    /// Executes `command` on aggregate `id`.
    pub async fn execute<A>(
        &self,
        id: &str,
        expected: Expected,
        metadata: &CommandMetadata,
        command: A::Command,
    ) -> Result<Committed<A>, ExecuteError<A::Error>>
    where
        A: Aggregate<Services = ()> + Clone + 'static,
        A::Command: Clone,
    {
        let _guard = self.locks.lock(format!("{}/{id}", A::TYPE)).await;
        for attempt in 0..MAX_ATTEMPTS {
            let mut loaded = self.load::<A>(id).await?;
            if let Expected::Version(expected) = expected {
                if expected != loaded.version {
                    return Err(ExecuteError::VersionMismatch {
                        expected,
                        actual: loaded.version,
                    });
                }
            }
            let before = loaded.clone();
            let sink = EventSink::<A>::default();
            loaded
                .aggregate
                .handle(command.clone(), &(), &sink)
                .await
                .map_err(ExecuteError::Refused)?;
            let events = sink.collect().await;
            match self.append::<A>(id, &before, &events, metadata).await {
                Ok(sealed) => {
                    let version = loaded.version + sealed.len() as u64;
                    if let Some(last) = sealed.last() {
                        let last_hash = last.metadata[domain::metadata::HASH]
                            .as_str()
                            .unwrap_or_default()
                            .to_string();
                        let after = Loaded {
                            aggregate: loaded.aggregate.clone(),
                            version,
                            last_hash,
                        };
                        self.cache.put(Self::cache_key::<A>(id), after);
                    }
                    return Ok(Committed {
                        version,
                        aggregate: loaded.aggregate,
                        events: sealed,
                    });
                }
                Err(StoreError::Conflict) => {
                    tracing::debug!(
                        aggregate = A::TYPE,
                        id,
                        attempt,
                        "append conflict, retrying"
                    );
                    tokio::time::sleep(Duration::from_millis(2 << attempt.min(6))).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(ExecuteError::Contention)
    }
}
