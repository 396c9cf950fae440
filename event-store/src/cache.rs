//! Aggregates kept in memory after they are loaded or changed, so a command on a busy
//! account does not replay its whole stream each time. Correct as long as this process
//! is the stream's only writer (the embedded store); if another writer appends, the
//! optimistic check refuses our stale append, the entry is evicted and the command is
//! decided again on fresh state.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Mutex;

use crate::state::Loaded;

/// Beyond this many streams the cache starts over: simple, and bounded.
const CAPACITY: usize = 100_000;

#[derive(Default)]
pub(crate) struct AggregateCache {
    enabled: bool,
    entries: Mutex<HashMap<String, Box<dyn Any + Send + Sync>>>,
}

impl AggregateCache {
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    pub(crate) fn new(enabled: bool) -> Self {
        AggregateCache {
            enabled,
            entries: Mutex::default(),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Box<dyn Any + Send + Sync>>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn get<A: Clone + 'static>(&self, key: &str) -> Option<Loaded<A>> {
        if !self.enabled {
            return None;
        }
        self.entries()
            .get(key)
            .and_then(|entry| entry.downcast_ref::<Loaded<A>>())
            .cloned()
    }

    pub(crate) fn put<A: Clone + Send + Sync + 'static>(&self, key: String, loaded: Loaded<A>) {
        if !self.enabled {
            return;
        }
        let mut entries = self.entries();
        // A reader that loaded before a commit must not replace the newer state.
        let newer = entries
            .get(&key)
            .and_then(|e| e.downcast_ref::<Loaded<A>>())
            .is_some_and(|e| e.version > loaded.version);
        if newer {
            return;
        }
        if entries.len() >= CAPACITY && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, Box::new(loaded));
    }

    pub(crate) fn evict(&self, key: &str) {
        if self.enabled {
            self.entries().remove(key);
        }
    }

    /// Evicts `key` when the guard is dropped.
    pub(crate) fn evict_on_drop(&self, key: String) -> EvictOnDrop<'_> {
        EvictOnDrop { cache: self, key }
    }
}

/// Held across an append: the cached copy keeps serving readers while the append is in
/// flight (its events are not acknowledged yet, so the state before them is a true
/// answer), and goes once the outcome is known, or once the append is abandoned with
/// its outcome unknown.
pub(crate) struct EvictOnDrop<'a> {
    cache: &'a AggregateCache,
    key: String,
}

impl Drop for EvictOnDrop<'_> {
    fn drop(&mut self) {
        self.cache.evict(&self.key);
    }
}
