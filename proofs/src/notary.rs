//! Issuing digests: brings the Merkle log up to the store, checks that it extends the
//! last digest issued (a store rewritten or restored from an older backup is refused,
//! never signed over), signs its root and appends the digest to the digest file. At an
//! interval while the log grows, and on demand.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use event_store::{merkle, EventStore, StoreError};
use tokio::sync::{watch, Mutex};

use crate::digest::{Digest, DigestSigner, PublicKeys};
use crate::digest_file::{DigestFile, DigestFileError};

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
    File(#[from] DigestFileError),
}

/// Signs and publishes digests of one store's log.
pub struct Notary {
    store: Arc<EventStore>,
    signer: DigestSigner,
    /// What the last digest in the file must verify with: the signer's key and those
    /// rotated out.
    keys: PublicKeys,
    file: DigestFile,
    /// Held while issuing, so digests follow one another; the last one issued (read
    /// from the file the first time).
    last: Mutex<Option<Option<Digest>>>,
}

impl Notary {
    /// A notary trusting only its own key for digests already in the file.
    pub fn new(store: Arc<EventStore>, signer: DigestSigner, file: DigestFile) -> Self {
        let keys = [signer.public_key()].into_iter().collect();
        Notary {
            store,
            signer,
            keys,
            file,
            last: Mutex::new(None),
        }
    }

    /// Also trusts `retired` (keys rotated out) for digests already in the file.
    pub fn trusting(mut self, retired: &PublicKeys) -> Self {
        for (_, key) in retired.iter() {
            self.keys.add(*key);
        }
        self
    }

    pub fn signer(&self) -> &DigestSigner {
        &self.signer
    }

    pub fn file(&self) -> &DigestFile {
        &self.file
    }

    /// The last digest issued, if any.
    pub async fn latest(&self) -> Result<Option<Digest>, NotaryError> {
        let mut last = self.last.lock().await;
        Ok(self.last_issued(&mut last).await?)
    }

    async fn last_issued(
        &self,
        last: &mut Option<Option<Digest>>,
    ) -> Result<Option<Digest>, DigestFileError> {
        if last.is_none() {
            *last = Some(self.file.last().await?);
        }
        Ok(last.clone().flatten())
    }

    /// Issues a digest of the whole log now; with `only_if_grown`, only if the log holds
    /// events the last digest does not (`None` otherwise).
    pub async fn issue(&self, only_if_grown: bool) -> Result<Option<Digest>, NotaryError> {
        let log = self.store.backend().merkle().ok_or(NotaryError::NoLog)?;
        let mut last = self.last.lock().await;
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
        let digest = self.signer.sign(size, &root, &issued_at, previous.as_ref());
        // Forgotten before the append: if it fails, or the request that asked hangs up
        // while it writes (this future dropped), the line may be in the file all the
        // same, and the next digest must chain to what the file holds, not to this cache.
        *last = None;
        self.file.append(&digest).await?;
        *last = Some(Some(digest.clone()));
        Ok(Some(digest))
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
