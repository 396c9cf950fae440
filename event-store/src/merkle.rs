//! The global Merkle log kept with the store (RFC 6962 structure, see
//! [`domain::merkle`]): roots and proofs computed from its stored nodes, and the task
//! that keeps it up with the store. (Checking the events against it and against signed
//! digests is the `proofs` crate's.)

use std::collections::HashMap;

use domain::merkle::{Hash, Plan};

use crate::capabilities::MerkleStorage;
use crate::error::StoreError;

async fn compute(storage: &dyn MerkleStorage, plan: Plan) -> Result<Vec<Hash>, StoreError> {
    let nodes = storage.log_nodes(&plan.nodes()).await?;
    plan.hashes(|index| nodes.get(&index).copied())
        .map_err(|missing| StoreError::Corrupt(missing.to_string()))
}

/// Refuses a tree size beyond what the log holds.
async fn within(storage: &dyn MerkleStorage, size: u64) -> Result<(), StoreError> {
    let logged = storage.log_size().await?;
    if size == 0 || size > logged {
        return Err(StoreError::OutOfRange(format!(
            "tree size {size} is not between 1 and the {logged} events logged"
        )));
    }
    Ok(())
}

/// The root of the tree of the first `size` events.
pub async fn root(storage: &dyn MerkleStorage, size: u64) -> Result<Hash, StoreError> {
    within(storage, size).await?;
    Ok(compute(storage, Plan::root(size)).await?[0])
}

/// The inclusion proof of leaf `leaf` in the tree of `size` events.
pub async fn inclusion(
    storage: &dyn MerkleStorage,
    size: u64,
    leaf: u64,
) -> Result<Vec<Hash>, StoreError> {
    within(storage, size).await?;
    if leaf >= size {
        return Err(StoreError::OutOfRange(format!(
            "leaf {leaf} is not in a tree of {size} events"
        )));
    }
    compute(storage, Plan::inclusion(size, leaf)).await
}

/// The consistency proof from the tree of `old` events to that of `new`.
pub async fn consistency(
    storage: &dyn MerkleStorage,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, StoreError> {
    within(storage, new).await?;
    if old == 0 || old > new {
        return Err(StoreError::OutOfRange(format!(
            "tree size {old} is not between 1 and {new}"
        )));
    }
    compute(storage, Plan::consistency(old, new)).await
}

/// The leaf hashes of `events`, computed on a blocking thread: ten thousand events take
/// tens of milliseconds to hash, which on a runtime thread would hold up requests (and
/// the leases other tasks renew).
pub(crate) async fn leaf_hashes<T: domain::chain::Verifiable + Send + 'static>(
    events: Vec<T>,
) -> Result<(Vec<T>, Vec<Hash>), StoreError> {
    tokio::task::spawn_blocking(move || {
        let hashes = events
            .iter()
            .map(|event| domain::merkle::leaf_hash(&domain::merkle::event_leaf(event)))
            .collect();
        (events, hashes)
    })
    .await
    .map_err(|e| StoreError::Unavailable(format!("hashing the log's leaves: {e}")))
}

/// The stored nodes of `indices` from rows of (index, hash), refusing a hash of the
/// wrong length.
pub(crate) fn nodes_from_rows(rows: Vec<(i64, Vec<u8>)>) -> Result<HashMap<u64, Hash>, StoreError> {
    rows.into_iter()
        .map(|(index, hash)| {
            let hash: Hash = hash
                .try_into()
                .map_err(|_| StoreError::Corrupt(format!("Merkle node {index} is not 32 bytes")))?;
            Ok((index as u64, hash))
        })
        .collect()
}

/// How many events one extension of the log takes at most.
const EXTEND: u64 = 10_000;

/// Keeps the store's Merkle log up with its events until `stop`: at start, then after
/// appends (gathered for `pause`, so that a busy store pays for one log write per
/// pause, not per commit), and every few seconds whatever happens (an append this
/// process did not see, a failure to try again). Returns at once on a backend without
/// a log.
pub async fn follow(
    store: std::sync::Arc<crate::EventStore>,
    pause: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use std::time::Duration;
    let Some(log) = store.backend().merkle() else {
        return;
    };
    let mut appended = store.subscribe();
    loop {
        if let Err(error) = catch_up(log).await {
            tracing::error!(%error, "the Merkle log could not be extended");
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = appended.recv() => {}
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(pause) => {}
        }
        while appended.try_recv().is_ok() {}
    }
}

/// Extends the log until it holds every event committed before the call; returns its
/// size. It stops only when an extension found nothing after the size it read: one
/// that lost the race to another extender (which may have read fewer events) goes round
/// again.
pub async fn catch_up(log: &dyn MerkleStorage) -> Result<u64, StoreError> {
    let mut size = log.log_size().await?;
    loop {
        let grown = log.extend_log(EXTEND).await?;
        if grown == size {
            return Ok(grown);
        }
        size = grown;
    }
}
