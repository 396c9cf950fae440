//! Slows password guessing: after too many failed sign-ins for one name within a window,
//! that name is refused for a while, right password or not. The answer stays the same
//! "invalid username or password", so the lock reveals nothing either.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed within `WINDOW` before the name is locked for `LOCK`.
const MAX_FAILURES: u32 = 5;
const WINDOW: Duration = Duration::from_secs(15 * 60);
const LOCK: Duration = Duration::from_secs(15 * 60);
/// Names remembered at most (a flood of made-up names cannot exhaust memory).
const CAPACITY: usize = 100_000;

/// Failures counted, since when, and locked until when.
type Record = (u32, Instant, Option<Instant>);

#[derive(Default)]
pub(crate) struct SignInThrottle {
    failures: Mutex<HashMap<String, Record>>,
}

impl SignInThrottle {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `name` may try now.
    pub(crate) fn allows(&self, name: &str) -> bool {
        let now = Instant::now();
        match self.entries().get(name) {
            Some((_, _, Some(until))) => *until <= now,
            _ => true,
        }
    }

    pub(crate) fn failed(&self, name: &str) {
        let now = Instant::now();
        let mut entries = self.entries();
        if entries.len() >= CAPACITY && !entries.contains_key(name) {
            entries.retain(|_, (_, since, lock)| {
                now.duration_since(*since) < WINDOW || lock.is_some_and(|l| l > now)
            });
        }
        let entry = entries.entry(name.to_string()).or_insert((0, now, None));
        if now.duration_since(entry.1) >= WINDOW || entry.2.is_some_and(|until| until <= now) {
            *entry = (0, now, None);
        }
        entry.0 += 1;
        if entry.0 >= MAX_FAILURES {
            entry.2 = Some(now + LOCK);
        }
    }

    pub(crate) fn succeeded(&self, name: &str) {
        self.entries().remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_a_name_after_repeated_failures_only() {
        let throttle = SignInThrottle::default();
        for _ in 0..MAX_FAILURES - 1 {
            throttle.failed("alice");
        }
        assert!(throttle.allows("alice"));
        throttle.succeeded("alice");
        for _ in 0..MAX_FAILURES {
            throttle.failed("alice");
        }
        assert!(!throttle.allows("alice"));
        assert!(throttle.allows("bob"));
    }
}
