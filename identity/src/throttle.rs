//! Slows password guessing without handing a guesser a way to lock staff out
//! (NIST SP 800-63B §5.2.2). Failures are counted per name *and source address*: after
//! a few, that source must wait before trying that name again, and each further failure
//! doubles the wait (up to 15 minutes). Another source — the member of staff at their
//! own desk — is not affected. A name also has a ceiling across all sources, so a
//! guesser spread over many addresses is slowed too, but only far above what one person
//! mistyping reaches. An admin can lift both (`unlock`). The answer while waiting stays
//! "invalid username or password", so the throttle reveals nothing either.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures from one source for one name before it must wait.
const FREE_FAILURES: u32 = 5;
/// Failures for one name from all sources before every source must wait.
const NAME_CEILING: u32 = 100;
/// The first wait; each further failure doubles it.
const FIRST_WAIT: Duration = Duration::from_secs(1);
const LONGEST_WAIT: Duration = Duration::from_secs(15 * 60);
/// Failures older than this are forgotten.
const WINDOW: Duration = Duration::from_secs(60 * 60);
/// Entries remembered at most (a flood of made-up names cannot exhaust memory).
const CAPACITY: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    first: Instant,
    wait_until: Option<Instant>,
}

impl Record {
    fn new(now: Instant) -> Self {
        Record {
            failures: 0,
            first: now,
            wait_until: None,
        }
    }

    fn fail(&mut self, now: Instant, free: u32) {
        if now.duration_since(self.first) >= WINDOW {
            *self = Record::new(now);
        }
        self.failures += 1;
        if self.failures >= free {
            let doublings = (self.failures - free).min(20);
            let wait = FIRST_WAIT.saturating_mul(1 << doublings).min(LONGEST_WAIT);
            self.wait_until = Some(now + wait);
        }
    }

    fn waiting(&self, now: Instant) -> bool {
        self.wait_until.is_some_and(|until| until > now)
    }
}

#[derive(Default)]
pub(crate) struct SignInThrottle {
    by_source: Mutex<HashMap<(String, String), Record>>,
    by_name: Mutex<HashMap<String, Record>>,
}

fn guard<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn make_room<K: std::hash::Hash + Eq + Clone>(
    entries: &mut HashMap<K, Record>,
    key: &K,
    now: Instant,
) {
    if entries.len() >= CAPACITY && !entries.contains_key(key) {
        entries
            .retain(|_, record| now.duration_since(record.first) < WINDOW || record.waiting(now));
    }
}

impl SignInThrottle {
    /// Whether `source` may try `name` now.
    pub(crate) fn allows(&self, name: &str, source: &str) -> bool {
        let now = Instant::now();
        let pair = (name.to_string(), source.to_string());
        !guard(&self.by_source)
            .get(&pair)
            .is_some_and(|record| record.waiting(now))
            && !guard(&self.by_name)
                .get(name)
                .is_some_and(|record| record.waiting(now))
    }

    pub(crate) fn failed(&self, name: &str, source: &str) {
        let now = Instant::now();
        let pair = (name.to_string(), source.to_string());
        {
            let mut by_source = guard(&self.by_source);
            make_room(&mut by_source, &pair, now);
            by_source
                .entry(pair)
                .or_insert_with(|| Record::new(now))
                .fail(now, FREE_FAILURES);
        }
        let mut by_name = guard(&self.by_name);
        let name = name.to_string();
        make_room(&mut by_name, &name, now);
        by_name
            .entry(name)
            .or_insert_with(|| Record::new(now))
            .fail(now, NAME_CEILING);
    }

    /// A correct password from `source`: its count for `name` starts again.
    pub(crate) fn succeeded(&self, name: &str, source: &str) {
        guard(&self.by_source).remove(&(name.to_string(), source.to_string()));
    }

    /// An admin lifts every wait on `name`.
    pub(crate) fn unlock(&self, name: &str) {
        guard(&self.by_source).retain(|(n, _), _| n != name);
        guard(&self.by_name).remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guesser_waits_for_the_name_it_guesses_and_nobody_else_does() {
        let throttle = SignInThrottle::default();
        for _ in 0..FREE_FAILURES - 1 {
            throttle.failed("root", "203.0.113.9");
        }
        assert!(throttle.allows("root", "203.0.113.9"));
        throttle.failed("root", "203.0.113.9");
        assert!(!throttle.allows("root", "203.0.113.9"));
        // The root admin at their own desk, and other names from the guesser, are free.
        assert!(throttle.allows("root", "10.0.0.5"));
        assert!(throttle.allows("alice", "203.0.113.9"));
        throttle.unlock("root");
        assert!(throttle.allows("root", "203.0.113.9"));
    }

    #[test]
    fn waits_double_up_to_a_ceiling() {
        let now = Instant::now();
        let mut record = Record::new(now);
        let mut waits = Vec::new();
        for _ in 0..30 {
            record.fail(now, FREE_FAILURES);
            waits.push(record.wait_until.map(|until| until - now));
        }
        assert_eq!(waits[3], None);
        assert_eq!(waits[4], Some(FIRST_WAIT));
        assert_eq!(waits[5], Some(FIRST_WAIT * 2));
        assert_eq!(waits[6], Some(FIRST_WAIT * 4));
        assert_eq!(waits[29], Some(LONGEST_WAIT));
    }

    #[test]
    fn many_sources_together_reach_the_names_ceiling() {
        let throttle = SignInThrottle::default();
        for n in 0..NAME_CEILING {
            throttle.failed("root", &format!("198.51.100.{}", n % 250));
        }
        assert!(!throttle.allows("root", "10.0.0.5"));
        throttle.unlock("root");
        assert!(throttle.allows("root", "10.0.0.5"));
    }
}
