//! Issuing digests: brings the Merkle log up to the store, checks that it extends the
//! last digest published (a store rewritten or restored from an older backup is
//! refused, never signed over), signs its root and publishes the digest (the digest
//! file, or S3 in AWS). At an interval while the log grows, and on demand.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use event_store::{merkle, EventStore, StoreError};
use tokio::sync::{watch, Mutex};

use crate::digest::{Digest, PublicKeys, SignError, Signer};
use crate::digest_file::{DigestLog, DigestLogError};

/// Why no digest was issued.
#[derive(Debug, thiserror::Error)]
pub enum NotaryError {
    #[error("this event store keeps no Merkle log")]
    NoLog,
    #[error("the event store holds no events yet: there is nothing to sign")]
    Empty,
    #[error("the Merkle log holds {log} events, fewer than the {digest} of digest {sequence}: history was cut short; no digest will be signed over it")]
    Truncated {
        log: u64,
        digest: u64,
        sequence: u64,
    },
    #[error("the Merkle log no longer gives digest {sequence}'s root at {size} events: history was rewritten; no digest will be signed over it")]
    Rewritten { size: u64, sequence: u64 },
    #[error("the last digest in the file ({sequence}) does not verify with this server's keys ({detail}): the file was altered; no digest will be chained to it")]
    Untrusted { sequence: u64, detail: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Published(#[from] DigestLogError),
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// Times a digest is signed again after another issuer published one of its sequence
/// first (several services issue in AWS).
const RACES: u32 = 3;

/// Signs and publishes digests of one store's log.
pub struct Notary {
    store: Arc<EventStore>,
    signer: Arc<dyn Signer>,
    /// What the last digest published must verify with: the signer's key and those
    /// rotated out.
    keys: PublicKeys,
    published: Arc<dyn DigestLog>,
    /// Held while issuing, so digests follow one another; the last one issued (read
    /// from the file the first time).
    last: Mutex<Option<Option<Digest>>>,
}

impl Notary {
    /// A notary trusting only its own key for digests already published.
    pub fn new(
        store: Arc<EventStore>,
        signer: Arc<dyn Signer>,
        published: Arc<dyn DigestLog>,
    ) -> Self {
        let keys = [signer.public_key()].into_iter().collect();
        Notary {
            store,
            signer,
            keys,
            published,
            last: Mutex::new(None),
        }
    }

    /// Also trusts `retired` (keys rotated out) for digests already in the file.
    pub fn trusting(mut self, retired: &PublicKeys) -> Self {
        for (_, key) in retired.iter() {
            self.keys.add(key.clone());
        }
        self
    }

    pub fn signer(&self) -> &dyn Signer {
        self.signer.as_ref()
    }

    /// Where its digests are published.
    pub fn published(&self) -> &dyn DigestLog {
        self.published.as_ref()
    }

    /// The last digest issued, if any.
    pub async fn latest(&self) -> Result<Option<Digest>, NotaryError> {
        let mut last = self.last.lock().await;
        Ok(self.last_issued(&mut last).await?)
    }

    async fn last_issued(
        &self,
        last: &mut Option<Option<Digest>>,
    ) -> Result<Option<Digest>, DigestLogError> {
        if last.is_none() {
            *last = Some(self.published.last().await?);
        }
        Ok(last.clone().flatten())
    }

    /// Issues a digest of the whole log now; with `only_if_grown`, only if the log holds
    /// events the last digest does not (`None` otherwise).
    pub async fn issue(&self, only_if_grown: bool) -> Result<Option<Digest>, NotaryError> {
        let log = self.store.backend().merkle().ok_or(NotaryError::NoLog)?;
        let mut last = self.last.lock().await;
        let mut races = 0;
        loop {
            let previous = self.last_issued(&mut last).await?;
            let size = merkle::catch_up(log).await?;
            if let Some(previous) = &previous {
                if let Err(error) = previous.verify(&self.keys) {
                    return Err(NotaryError::Untrusted {
                        sequence: previous.sequence,
                        detail: error.to_string(),
                    });
                }
                if size < previous.tree_size {
                    return Err(NotaryError::Truncated {
                        log: size,
                        digest: previous.tree_size,
                        sequence: previous.sequence,
                    });
                }
                let root = merkle::root(log, previous.tree_size).await?;
                if hex::encode(root) != previous.root_hash {
                    return Err(NotaryError::Rewritten {
                        size: previous.tree_size,
                        sequence: previous.sequence,
                    });
                }
                if only_if_grown && size == previous.tree_size {
                    return Ok(None);
                }
            }
            if size == 0 {
                return if only_if_grown {
                    Ok(None)
                } else {
                    Err(NotaryError::Empty)
                };
            }
            let root = merkle::root(log, size).await?;
            let issued_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let digest = crate::digest::sign(
                self.signer.as_ref(),
                size,
                &root,
                &issued_at,
                previous.as_ref(),
            )
            .await?;
            // Forgotten before the append: if it fails, or the request that asked hangs up
            // while it writes (this future dropped), the digest may be published all the
            // same, and the next must chain to what is published, not to this cache.
            *last = None;
            match self.published.append(&digest).await {
                Ok(()) => {
                    *last = Some(Some(digest.clone()));
                    return Ok(Some(digest));
                }
                // Another issuer got this sequence first: chain to its digest instead.
                Err(DigestLogError::Taken(_)) if races < RACES => races += 1,
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Issues a digest every `every` while the log grows, until `stop`; each issued
    /// digest, and each refusal, is handed to `report`.
    pub async fn run<F, Fut>(
        self: Arc<Self>,
        every: Duration,
        mut stop: watch::Receiver<bool>,
        report: F,
    ) where
        F: Fn(Result<Digest, NotaryError>) -> Fut,
        Fut: Future<Output = ()>,
    {
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                () = tokio::time::sleep(every) => {}
            }
            match self.issue(true).await {
                Ok(Some(digest)) => report(Ok(digest)).await,
                Ok(None) => {}
                Err(error) => report(Err(error)).await,
            }
        }
    }
}
