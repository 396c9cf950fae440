//! How many payees one member of staff may look up: plenty for a day of transfers, too
//! few to walk the account numbers and collect the names behind them. Per process (in
//! AWS each query task counts its own), which still keeps a walk to a crawl; every
//! lookup is in the system log besides.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct PayeeLimit {
    most: usize,
    window: Duration,
    seen: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Default for PayeeLimit {
    /// 30 lookups in any 10 minutes.
    fn default() -> Self {
        PayeeLimit::new(30, Duration::from_secs(600))
    }
}

impl PayeeLimit {
    pub fn new(most: usize, window: Duration) -> Self {
        PayeeLimit {
            most,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a lookup by `caller` at `now`, or says how long until one is allowed.
    pub fn take(&self, caller: &str, now: Instant) -> Result<(), Duration> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let times = seen.entry(caller.to_string()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() >= self.most {
            let oldest = times.front().copied().unwrap_or(now);
            return Err(self.window.saturating_sub(now.duration_since(oldest)));
        }
        times.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_caller_gets_the_limit_in_any_window() {
        let limit = PayeeLimit::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for n in 0..3 {
            assert_eq!(limit.take("bob", start + Duration::from_secs(n)), Ok(()));
        }
        let wait = limit
            .take("bob", start + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        // Someone else is not held back by bob.
        assert_eq!(limit.take("dora", start + Duration::from_secs(10)), Ok(()));
        // Once the first lookup is a window old, one more is allowed, not two.
        let later = start + Duration::from_secs(60);
        assert_eq!(limit.take("bob", later), Ok(()));
        assert!(limit.take("bob", later).is_err());
    }
}
