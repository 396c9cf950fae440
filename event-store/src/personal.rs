//! Personal data encrypted in the events, and erased by destroying its key
//! (crypto-shredding).
//!
//! Each client has a data key of its own (AES-256-GCM), kept by the store wrapped under a
//! master key the store's operators do not hold (a file outside the data directory).
//! On append, the personal fields of a client event ([`domain::personal::place`]) are
//! replaced by `{"sealed_v1": "<base64 of nonce ‖ ciphertext ‖ tag>"}`, bound to their
//! stream, sequence, event type and field, before the event is hashed into its chain and
//! the Merkle log: both cover the ciphertext. Readers that fold events (commands,
//! projections, an auditor's state as of a version) get them opened; readers of events
//! as stored (verification, the audit trail, exports) get the ciphertext.
//!
//! Erasing a client destroys its data key: the wrapped key is overwritten and its row
//! left as a tombstone, so no key is ever made for that client again. From then on its
//! personal fields open as `null` ([`domain::personal::Personal::Shredded`]), and the
//! events, their hashes and every signed digest stay exactly as they were.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use cqrs_es::persist::SerializedEvent;
use domain::chain::RawEvent;
use domain::personal::{place, Place};
use rand::RngCore;
use serde_json::Value;

use crate::capabilities::{DataKey, DataKeys};
use crate::error::StoreError;

/// The one field of a sealed value.
pub const SEALED: &str = "sealed_v1";
const NONCE: usize = 12;
/// A wrapped data key: nonce, the 32-byte key, tag.
pub const WRAPPED_LEN: usize = NONCE + 32 + 16;
/// Unwrapped keys kept in memory at most; beyond, the cache starts again.
const CACHED_KEYS: usize = 10_000;

/// What clients' data keys are wrapped under: a key file's AES-256-GCM key embedded
/// ([`LocalMaster`]), a KMS key in AWS. Each wrapping is bound to its owner.
#[async_trait::async_trait]
pub trait MasterKey: Send + Sync {
    async fn wrap(&self, owner: &str, key: &[u8; 32]) -> Result<Vec<u8>, StoreError>;

    /// [`StoreError::Corrupt`] when `wrapped` is not `owner`'s key under this master.
    async fn unwrap(&self, owner: &str, wrapped: &[u8]) -> Result<[u8; 32], StoreError>;
}

/// The error of a wrapped key that does not open.
pub fn not_opened(owner: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "the data key of {owner} does not open under this master key"
    ))
}

/// A 32-byte master key held in memory (read from a file outside the data directory).
pub struct LocalMaster(Aes256Gcm);

impl LocalMaster {
    pub fn new(master: &[u8; 32]) -> Self {
        LocalMaster(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(master)))
    }
}

#[async_trait::async_trait]
impl MasterKey for LocalMaster {
    async fn wrap(&self, owner: &str, key: &[u8; 32]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = wrap_binding(owner);
        let mut out = nonce.to_vec();
        out.extend(
            self.0
                .encrypt(
                    Nonce::from_slice(&nonce),
                    Payload {
                        msg: key,
                        aad: aad.as_bytes(),
                    },
                )
                .expect("AES-GCM encrypts any key"),
        );
        Ok(out)
    }

    async fn unwrap(&self, owner: &str, wrapped: &[u8]) -> Result<[u8; 32], StoreError> {
        if wrapped.len() != WRAPPED_LEN {
            return Err(not_opened(owner));
        }
        let (nonce, sealed) = wrapped.split_at(NONCE);
        let aad = wrap_binding(owner);
        let key = self
            .0
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| not_opened(owner))?;
        key.try_into().map_err(|_| not_opened(owner))
    }
}

/// The master key and, in memory, the data keys unwrapped so far.
pub struct Vault {
    master: Arc<dyn MasterKey>,
    keys: Arc<dyn DataKeys>,
    /// `None` on a store other processes share, where another may destroy a key.
    cache: Option<Mutex<Memory>>,
}

/// The keys unwrapped so far, and the owners whose keys this process destroyed: a
/// reader that read a key just before its destruction must not put it back.
#[derive(Default)]
struct Memory {
    keys: HashMap<String, [u8; 32]>,
    shredded: std::collections::HashSet<String>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(..)")
    }
}

impl Vault {
    /// A vault over `keys` and the master key they are wrapped under; `shared` when
    /// other processes write the store.
    pub fn new(master: Arc<dyn MasterKey>, keys: Arc<dyn DataKeys>, shared: bool) -> Self {
        Vault {
            master,
            keys,
            cache: (!shared).then(Default::default),
        }
    }

    /// A new random master key.
    pub fn generate_master() -> [u8; 32] {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        key
    }

    /// Encrypts the personal fields of `event` (a client event about to be sealed into
    /// its chain) under its client's key, making the key if the client has none yet.
    pub async fn seal(&self, event: &mut SerializedEvent) -> Result<(), StoreError> {
        let Some(at) = place(&event.aggregate_type, &event.event_type) else {
            return Ok(());
        };
        let aad = Head::of(event).binding(at);
        let Some(value) = at.value_mut(&mut event.payload, &event.event_type) else {
            return Ok(());
        };
        let key = self.key_for_writing(&event.aggregate_id).await?;
        let plain = serde_json::to_vec(value)?;
        *value = sealed(&key, &aad, &plain);
        Ok(())
    }

    /// Decrypts the personal fields of `event` as read from the store; a field whose
    /// key was destroyed becomes `null`. Events with nothing sealed are left alone.
    pub async fn open(&self, event: &mut SerializedEvent) -> Result<(), StoreError> {
        let head = Head {
            aggregate_type: &event.aggregate_type,
            aggregate_id: &event.aggregate_id,
            sequence: event.sequence,
            event_type: &event.event_type,
        };
        self.open_payload(&head, &mut event.payload).await
    }

    /// As [`Vault::open`], for an event read with its payload as text: re-encoded only
    /// when it holds something sealed.
    pub async fn open_raw(&self, event: &mut RawEvent) -> Result<(), StoreError> {
        if place(&event.aggregate_type, &event.event_type).is_none()
            || !event.payload_json.contains(SEALED)
        {
            return Ok(());
        }
        let head = Head {
            aggregate_type: &event.aggregate_type,
            aggregate_id: &event.aggregate_id,
            sequence: event.sequence,
            event_type: &event.event_type,
        };
        let mut payload: Value = serde_json::from_str(&event.payload_json)?;
        self.open_payload(&head, &mut payload).await?;
        event.payload_json = payload.to_string();
        Ok(())
    }

    async fn open_payload(&self, head: &Head<'_>, payload: &mut Value) -> Result<(), StoreError> {
        let Some(at) = place(head.aggregate_type, head.event_type) else {
            return Ok(());
        };
        let aad = head.binding(at);
        let Some(value) = at.value_mut(payload, head.event_type) else {
            return Ok(());
        };
        let Some(ciphertext) = sealed_text(value) else {
            // Written before encryption, or by a store without a vault.
            return Ok(());
        };
        let ciphertext = base64::engine::general_purpose::STANDARD
            .decode(ciphertext)
            .map_err(|_| head.corrupt())?;
        let Some(key) = self.key_for_reading(head.aggregate_id).await? else {
            *value = Value::Null;
            return Ok(());
        };
        let plain = open_with(&key, &aad, &ciphertext).ok_or_else(|| head.corrupt())?;
        *value = serde_json::from_slice(&plain)?;
        Ok(())
    }

    /// Whether the master key is the one the store's data keys are wrapped under: a
    /// store served under another would read every client as corrupt. `Ok` when no
    /// live key exists yet.
    pub async fn check_master(&self) -> Result<(), StoreError> {
        match self.keys.any_live_key().await? {
            Some((owner, wrapped)) => self.master.unwrap(&owner, &wrapped).await.map(|_| ()),
            None => Ok(()),
        }
    }

    /// Completes erasures a crash interrupted: destroys the key of every client whose
    /// stream records an erasure. How many it destroyed.
    pub async fn shred_erased(&self) -> Result<usize, StoreError> {
        let owners = self.keys.erased_with_live_keys().await?;
        for owner in &owners {
            self.destroy(owner).await?;
        }
        if !owners.is_empty() {
            tracing::warn!(
                clients = owners.len(),
                "destroyed the data keys of erased clients that an interruption had left"
            );
        }
        Ok(owners.len())
    }

    /// Destroys `owner`'s data key (it may have none yet: the tombstone still stops one
    /// being made), here and in the store.
    pub async fn destroy(&self, owner: &str) -> Result<(), StoreError> {
        if let Some(cache) = &self.cache {
            let mut memory = cache.lock().expect("the key cache is never poisoned");
            memory.keys.remove(owner);
            memory.shredded.insert(owner.to_string());
        }
        let destroyed = self
            .keys
            .destroy_data_key(owner, &chrono::Utc::now().to_rfc3339())
            .await;
        if destroyed.is_err() {
            if let Some(cache) = &self.cache {
                let mut memory = cache.lock().expect("the key cache is never poisoned");
                memory.shredded.remove(owner);
            }
        }
        destroyed
    }

    async fn key_for_writing(&self, owner: &str) -> Result<[u8; 32], StoreError> {
        if let Some(key) = self.cached(owner) {
            return Ok(key);
        }
        let stored = match self.keys.data_key(owner).await? {
            Some(stored) => stored,
            None => {
                let mut key = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                let wrapped = self.master.wrap(owner, &key).await?;
                self.keys.create_data_key(owner, &wrapped).await?
            }
        };
        match stored {
            DataKey::Live(wrapped) => self.unwrap_and_cache(owner, &wrapped).await,
            // The client was erased after this command was decided (on a state another
            // process had outdated): decided again on the store's state, it is refused.
            DataKey::Destroyed => Err(StoreError::Conflict),
        }
    }

    /// `None` when the key was destroyed, or is missing (deleted from the store behind
    /// its back: the data is as unreadable either way).
    async fn key_for_reading(&self, owner: &str) -> Result<Option<[u8; 32]>, StoreError> {
        if let Some(key) = self.cached(owner) {
            return Ok(Some(key));
        }
        let stored = self.keys.data_key(owner).await?;
        // Read before a destruction this process has begun since: already gone.
        if self.shredded(owner) {
            return Ok(None);
        }
        match stored {
            Some(DataKey::Live(wrapped)) => self.unwrap_and_cache(owner, &wrapped).await.map(Some),
            Some(DataKey::Destroyed) => Ok(None),
            None => {
                tracing::warn!(
                    owner,
                    "sealed personal data without a data key: read as erased"
                );
                Ok(None)
            }
        }
    }

    fn cached(&self, owner: &str) -> Option<[u8; 32]> {
        let cache = self.cache.as_ref()?;
        cache
            .lock()
            .expect("the key cache is never poisoned")
            .keys
            .get(owner)
            .copied()
    }

    /// Whether this process destroyed `owner`'s key (the store says so too, or will).
    fn shredded(&self, owner: &str) -> bool {
        self.cache.as_ref().is_some_and(|cache| {
            cache
                .lock()
                .expect("the key cache is never poisoned")
                .shredded
                .contains(owner)
        })
    }

    async fn unwrap_and_cache(&self, owner: &str, wrapped: &[u8]) -> Result<[u8; 32], StoreError> {
        let key = self.master.unwrap(owner, wrapped).await?;
        if let Some(cache) = &self.cache {
            let mut memory = cache.lock().expect("the key cache is never poisoned");
            if !memory.shredded.contains(owner) {
                if memory.keys.len() >= CACHED_KEYS {
                    memory.keys.clear();
                }
                memory.keys.insert(owner.to_string(), key);
            }
        }
        Ok(key)
    }
}

/// The fields of an event a personal field's ciphertext is bound to.
struct Head<'a> {
    aggregate_type: &'a str,
    aggregate_id: &'a str,
    sequence: usize,
    event_type: &'a str,
}

impl<'a> Head<'a> {
    fn of(event: &'a SerializedEvent) -> Self {
        Head {
            aggregate_type: &event.aggregate_type,
            aggregate_id: &event.aggregate_id,
            sequence: event.sequence,
            event_type: &event.event_type,
        }
    }

    /// What the ciphertext is bound to: moved to another client, event or field, it no
    /// longer opens.
    fn binding(&self, at: Place) -> String {
        format!(
            "ledgerline-personal-v1|{}|{}|{}|{}|{}",
            self.aggregate_type,
            self.aggregate_id,
            self.sequence,
            self.event_type,
            at.name()
        )
    }

    fn corrupt(&self) -> StoreError {
        StoreError::Corrupt(format!(
            "the personal data of {}/{} #{} does not open under its key",
            self.aggregate_type, self.aggregate_id, self.sequence
        ))
    }
}

fn wrap_binding(owner: &str) -> String {
    format!("ledgerline-data-key-v1|{owner}")
}

fn sealed(key: &[u8; 32], aad: &str, plain: &[u8]) -> Value {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    let mut nonce = [0u8; NONCE];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let mut out = nonce.to_vec();
    out.extend(
        cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: aad.as_bytes(),
                },
            )
            .expect("AES-GCM encrypts any field"),
    );
    serde_json::json!({ SEALED: base64::engine::general_purpose::STANDARD.encode(out) })
}

fn open_with(key: &[u8; 32], aad: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE);
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key))
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: aad.as_bytes(),
            },
        )
        .ok()
}

/// The ciphertext of a sealed value: an object whose only field is [`SEALED`].
fn sealed_text(value: &Value) -> Option<&str> {
    let object = value.as_object()?;
    (object.len() == 1)
        .then(|| object.get(SEALED)?.as_str())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use serde_json::json;

    fn local() -> Arc<dyn MasterKey> {
        Arc::new(LocalMaster::new(&Vault::generate_master()))
    }

    /// Keys in memory, as a store keeps them.
    #[derive(Default)]
    struct Keys(Mutex<HashMap<String, Option<Vec<u8>>>>);

    #[async_trait]
    impl DataKeys for Keys {
        async fn data_key(&self, owner: &str) -> Result<Option<DataKey>, StoreError> {
            Ok(self.0.lock().unwrap().get(owner).map(|key| match key {
                Some(wrapped) => DataKey::Live(wrapped.clone()),
                None => DataKey::Destroyed,
            }))
        }
        async fn create_data_key(
            &self,
            owner: &str,
            wrapped: &[u8],
        ) -> Result<DataKey, StoreError> {
            self.0
                .lock()
                .unwrap()
                .entry(owner.into())
                .or_insert_with(|| Some(wrapped.to_vec()));
            Ok(self.data_key(owner).await?.unwrap())
        }
        async fn destroy_data_key(&self, owner: &str, _at: &str) -> Result<(), StoreError> {
            self.0.lock().unwrap().insert(owner.into(), None);
            Ok(())
        }
        async fn erased_with_live_keys(&self) -> Result<Vec<String>, StoreError> {
            Ok(vec![])
        }
        async fn any_live_key(&self) -> Result<Option<(String, Vec<u8>)>, StoreError> {
            let keys = self.0.lock().unwrap();
            Ok(keys
                .iter()
                .find_map(|(owner, key)| Some((owner.clone(), key.clone()?))))
        }
    }

    fn onboarded(sequence: usize) -> SerializedEvent {
        SerializedEvent::new(
            "c1".into(),
            sequence,
            "client".into(),
            "ClientOnboarded".into(),
            "1".into(),
            json!({"ClientOnboarded": {"client_id": "c1", "details": {"first_name": "Grace"}}}),
            json!({}),
        )
    }

    #[tokio::test]
    async fn sealed_fields_open_until_the_key_is_destroyed() {
        let keys = Arc::new(Keys::default());
        let vault = Vault::new(local(), keys.clone(), false);
        let mut event = onboarded(1);
        vault.seal(&mut event).await.unwrap();
        let stored = event.payload.to_string();
        assert!(!stored.contains("Grace"), "{stored}");
        assert_eq!(event.payload["ClientOnboarded"]["client_id"], "c1");

        let mut read = event.clone();
        vault.open(&mut read).await.unwrap();
        assert_eq!(read.payload, onboarded(1).payload);
        // Another vault over the same keys and master (a restart) opens it too.
        let master = vault.master.clone();
        let restarted = Vault {
            master,
            keys: keys.clone(),
            cache: None,
        };
        let mut read = event.clone();
        restarted.open(&mut read).await.unwrap();
        assert_eq!(read.payload, onboarded(1).payload);

        vault.destroy("nobody").await.unwrap();
        vault.destroy("c1").await.unwrap();
        let mut read = event.clone();
        vault.open(&mut read).await.unwrap();
        assert_eq!(read.payload["ClientOnboarded"]["details"], Value::Null);
        assert_eq!(read.payload["ClientOnboarded"]["client_id"], "c1");

        // Nothing personal is written about them again.
        let mut later = onboarded(2);
        assert!(matches!(
            vault.seal(&mut later).await,
            Err(StoreError::Conflict)
        ));
    }

    #[tokio::test]
    async fn a_key_read_just_before_its_destruction_is_not_kept_after_it() {
        let keys = Arc::new(Keys::default());
        let vault = Vault::new(local(), keys.clone(), false);
        let mut event = onboarded(1);
        vault.seal(&mut event).await.unwrap();
        let Some(DataKey::Live(wrapped)) = keys.data_key("c1").await.unwrap() else {
            panic!("a live key");
        };
        vault.destroy("c1").await.unwrap();
        // A reader that fetched the wrapped key before the destruction caches it now.
        vault.unwrap_and_cache("c1", &wrapped).await.unwrap();
        assert_eq!(vault.cached("c1"), None);
        let mut read = event.clone();
        vault.open(&mut read).await.unwrap();
        assert_eq!(read.payload["ClientOnboarded"]["details"], Value::Null);
    }

    #[tokio::test]
    async fn a_ciphertext_moved_or_under_another_master_does_not_open() {
        let keys = Arc::new(Keys::default());
        let vault = Vault::new(local(), keys.clone(), false);
        let mut event = onboarded(1);
        vault.seal(&mut event).await.unwrap();

        let mut moved = event.clone();
        moved.sequence = 2;
        assert!(matches!(
            vault.open(&mut moved).await,
            Err(StoreError::Corrupt(_))
        ));

        let stranger = Vault::new(local(), keys, false);
        assert!(matches!(
            stranger.open(&mut event.clone()).await,
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            stranger.check_master().await,
            Err(StoreError::Corrupt(_))
        ));
        vault.check_master().await.unwrap();

        // Plain events (written before encryption) read as they are.
        let mut plain = onboarded(3);
        vault.open(&mut plain).await.unwrap();
        assert_eq!(plain.payload, onboarded(3).payload);
    }
}
