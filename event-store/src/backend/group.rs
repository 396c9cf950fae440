//! Gathering work for one commit: what the group writers (appends on SQLite and
//! PostgreSQL, idempotency records on SQLite) share.

use tokio::sync::mpsc;

/// `first` and every item already waiting behind it, up to `max` in all: the busier
/// the store, the larger the group.
pub(crate) fn gather<T>(first: T, queue: &mut mpsc::Receiver<T>, max: usize) -> Vec<T> {
    let mut group = vec![first];
    while group.len() < max {
        match queue.try_recv() {
            Ok(next) => group.push(next),
            Err(_) => break,
        }
    }
    group
}
