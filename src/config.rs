//! The one-process product's configuration: command-line flags with environment
//! fallbacks.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the SQLite files and the signing key live.
    pub data_dir: PathBuf,
    /// The address clients use to reach us; the token issuer. Defaults from the bound
    /// address.
    pub public_url: Option<String>,
    pub root_username: String,
    /// `None`: generate one on first start and print it once.
    pub root_password: Option<String>,
    /// Extra redirect URIs the UI client may use (the UI's own is always allowed).
    pub ui_redirect_uris: Vec<String>,
    /// The built web UI, served at `/` when the directory exists.
    pub ui_dir: Option<PathBuf>,
    /// Group commit and the aggregate cache (both on unless measuring without them).
    pub store: event_store::SqliteOptions,
    /// The mail service's model and transport (none: drafting and sending answer 503).
    pub mail: mail::MailSettings,
    /// The SFTP worker (none: not run).
    pub sftp: Option<sftp_worker::SftpSettings>,
    /// What one client may hold of the server (connections, timeouts).
    pub limits: api_kit::serve::Limits,
    /// How long a transfer request waits for the outcome before answering 202.
    pub transfer_patience: std::time::Duration,
    /// How the auditors' whole-store verification runs are paced (steps, lease).
    pub verification_pace: query_api::verifier::Pace,
    /// The signed digests of the ledger's Merkle log.
    pub ledger: LedgerSettings,
}

/// Where digests of the ledger's Merkle log are signed and published, and the key
/// clients' personal data is encrypted under (docs/audit.md).
#[derive(Debug, Clone)]
pub struct LedgerSettings {
    /// The Ed25519 key digests are signed with, created on first start if missing;
    /// refused inside the data directory.
    pub digest_key: PathBuf,
    /// Public keys (PEM) of signing keys rotated out, whose digests stay verifiable.
    pub retired_keys: Vec<PathBuf>,
    /// The append-only file digests are published to.
    pub digest_file: PathBuf,
    /// How often a digest is signed while the ledger grows.
    pub digest_interval: Duration,
    /// The master key clients' data keys are wrapped under (event_store::personal),
    /// created on first start if missing; refused inside the data directory.
    pub master_key: PathBuf,
}

impl LedgerSettings {
    /// A digest every five minutes.
    pub const INTERVAL: Duration = Duration::from_secs(300);

    /// The defaults for `data_dir`: the key and the digest file in the directory
    /// beside it named `<data dir>-ledger`. Not inside it: whoever can write or restore
    /// the data (a database administrator, an old backup put back) must neither read
    /// the key nor roll the digests back with the history.
    pub fn beside(data_dir: &Path) -> Self {
        let ledger = ledger_dir(data_dir);
        LedgerSettings {
            digest_key: ledger.join("digest-signing-key.pem"),
            retired_keys: Vec::new(),
            digest_file: ledger.join("digests.jsonl"),
            digest_interval: Self::INTERVAL,
            master_key: ledger.join("personal-data-master.key"),
        }
    }
}

/// The event store over `sqlite`, encrypting clients' personal data under data keys
/// wrapped by the master key at `master_key` (created if missing, refused inside
/// `data_dir`), and its feed in commit order, which opens that data for the projector.
/// Refuses to start under a master key the store's data keys were not wrapped under,
/// and to make a new one when the store already holds keys (a lost or misplaced file):
/// either would leave every client unreadable.
pub async fn vaulted(
    sqlite: event_store::SqliteStore,
    master_key: &Path,
    data_dir: &Path,
) -> anyhow::Result<(
    std::sync::Arc<event_store::EventStore>,
    event_store::SqliteFeed,
)> {
    use anyhow::Context;
    let feed = sqlite.feed();
    let store = event_store::EventStore::new(sqlite.into());
    if !master_key.exists() {
        let keys = store
            .backend()
            .data_keys()
            .context("SQLite keeps data keys")?;
        if keys.any_live_key().await?.is_some() {
            anyhow::bail!(
                "the personal data master key {} is missing, but the store holds data keys wrapped under one: restore it from its backup (or point CRM_MASTER_KEY at it)",
                master_key.display()
            );
        }
    }
    let master = proofs::keys::load_or_create_master(master_key, data_dir)
        .context("loading the personal data master key")?;
    let store = store.with_master_key(&master)?;
    let vault = store.vault().context("a vault was just set")?;
    vault.check_master().await.with_context(|| {
        format!(
            "the personal data master key {} is not the one this store's data keys are wrapped under",
            master_key.display()
        )
    })?;
    // An erasure a stop interrupted between its event and its key is finished first.
    vault
        .shred_erased()
        .await
        .context("destroying the data keys of erased clients")?;
    let feed = feed.opened(Some(vault));
    Ok((std::sync::Arc::new(store), feed))
}

/// `<data dir>-ledger`, beside the data directory.
fn ledger_dir(data_dir: &Path) -> PathBuf {
    let absolute = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let name = absolute.file_name().map_or("ledgerline".into(), |name| {
        name.to_string_lossy().into_owned()
    });
    absolute
        .parent()
        .unwrap_or(Path::new("/"))
        .join(format!("{name}-ledger"))
}

impl Config {
    /// The issuer URL for a server bound at `addr`.
    pub fn public_url_for(&self, addr: SocketAddr) -> String {
        if let Some(url) = &self.public_url {
            return url.trim_end_matches('/').to_string();
        }
        let host = if addr.ip().is_unspecified() {
            "localhost".to_string()
        } else {
            addr.ip().to_string()
        };
        format!("http://{host}:{}", addr.port())
    }
}
