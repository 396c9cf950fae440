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
use crate::state::Loaded;
use crate::store::EventStore;

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

tokio::task_local! {
    /// Set while a request runs again after its idempotency claim's holder died.
    static RECOVERING: ();
}

/// Runs `work` as the recovery of a request whose first run may have appended events:
/// every command in it whose events are already in its stream under the same
/// idempotency key and actor answers from them instead of deciding again.
pub async fn recovering<F: std::future::Future>(work: F) -> F::Output {
    RECOVERING.scope((), work).await
}

/// Whether the current task is such a recovery.
pub fn is_recovering() -> bool {
    RECOVERING.try_with(|()| ()).is_ok()
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
        A: domain::snapshot::Snapshotted<Services = ()> + Clone + 'static,
        A::Command: Clone,
    {
        let _guard = self.locks.lock(format!("{}/{id}", A::TYPE)).await;
        if is_recovering() {
            if let Some(done) = self.already_done::<A>(id, metadata).await? {
                return Ok(done);
            }
        }
        // On a shared store a cached copy may be behind another process's appends. A
        // decision that writes events is checked by the append itself (its sequence
        // would be taken); a refusal, a command with nothing to do or a wrong version
        // writes nothing, so before answering one of those the command is decided again
        // on the store's state.
        let mut fresh = !self.shared;
        for attempt in 0..MAX_ATTEMPTS {
            let mut loaded = self.load_for_command::<A>(id).await?;
            let must_recheck = |fresh: &mut bool| {
                let recheck = !*fresh;
                if recheck {
                    self.cache.evict(&Self::cache_key::<A>(id));
                    *fresh = true;
                }
                recheck
            };
            if let Expected::Version(expected) = expected {
                if expected != loaded.version {
                    if must_recheck(&mut fresh) {
                        continue;
                    }
                    return Err(ExecuteError::VersionMismatch {
                        expected,
                        actual: loaded.version,
                    });
                }
            }
            let before = loaded.clone();
            let sink = EventSink::<A>::default();
            if let Err(refusal) = loaded.aggregate.handle(command.clone(), &(), &sink).await {
                if must_recheck(&mut fresh) {
                    continue;
                }
                return Err(ExecuteError::Refused(refusal));
            }
            let events = sink.collect().await;
            if events.is_empty() && must_recheck(&mut fresh) {
                continue;
            }
            match self.append::<A>(id, &before, &events, metadata).await {
                Ok(sealed) => {
                    let version = loaded.version + sealed.len() as u64;
                    if !sealed.is_empty() {
                        // The decided state, at the sealed events' version, hash and time.
                        let after = Loaded {
                            aggregate: loaded.aggregate.clone(),
                            ..before.clone().advanced(Vec::new(), &sealed)
                        };
                        // Put back before anything else awaits, so readers find it.
                        let key = Self::cache_key::<A>(id);
                        if self.snapshot_due(before.version, version) {
                            self.cache.put(key, after.clone());
                            self.save_snapshot(id, &after).await;
                        } else {
                            self.cache.put(key, after);
                        }
                    }
                    return Ok(Committed {
                        version,
                        aggregate: loaded.aggregate,
                        events: sealed,
                    });
                }
                Err(StoreError::Conflict) => {
                    // The append evicted the copy: the next attempt reads the store.
                    fresh = true;
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

    /// The outcome of this command if its events are already in the stream: the events
    /// appended under the metadata's idempotency key by the same actor, and the state
    /// right after the last of them.
    async fn already_done<A: Aggregate>(
        &self,
        id: &str,
        metadata: &CommandMetadata,
    ) -> Result<Option<Committed<A>>, StoreError> {
        let Some(key) = metadata.idempotency_key.as_deref() else {
            return Ok(None);
        };
        let stream = self.stream(A::TYPE, id).await?;
        let field = |event: &SerializedEvent, name: &str| {
            event
                .metadata
                .get(name)
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        };
        let ours = |event: &SerializedEvent| {
            field(event, domain::metadata::IDEMPOTENCY_KEY).as_deref() == Some(key)
                && field(event, domain::metadata::ACTOR_ID).as_deref()
                    == Some(metadata.actor_id.as_str())
        };
        let Some(last) = stream.iter().rposition(ours) else {
            return Ok(None);
        };
        let mut aggregate = A::default();
        for event in &self.opened(stream[..=last].to_vec()).await? {
            aggregate.apply(domain::upcast::decode(event)?);
        }
        let events: Vec<SerializedEvent> = stream[..=last]
            .iter()
            .filter(|event| ours(event))
            .cloned()
            .collect();
        Ok(Some(Committed {
            aggregate,
            version: stream[last].sequence as u64,
            events,
        }))
    }
}
