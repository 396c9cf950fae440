//! The worker as `crm serve` runs it: an inbound run on a timer (an EventBridge schedule
//! in AWS), and exports whenever events are committed (debounced) and after each inbound
//! run. Configuration from the environment; none → no worker.
//!
//! - `CRM_SFTP_HOST`, `CRM_SFTP_PORT` (22), `CRM_SFTP_USER`, `CRM_SFTP_KEY_FILE` (the
//!   worker's private key);
//! - `CRM_SFTP_HOST_KEY` (the server's public key line, pinned) or
//!   `CRM_SFTP_KNOWN_HOSTS` (a known_hosts file) — one is required;
//! - `CRM_SFTP_INBOX`, `CRM_SFTP_ARCHIVE`, `CRM_SFTP_ERROR`, `CRM_SFTP_OUTBOX`
//!   (`inbox`, `archive`, `error`, `outbox` under the login directory);
//! - `CRM_SFTP_INTERVAL_SECS` (300): how often the inbox is read;
//! - `CRM_SFTP_CLIENT_ID`, `CRM_SFTP_CLIENT_SECRET`: the worker's OAuth client
//!   (`crm worker add sftp`).

use event_store::{CommitFeed, EventStore};
use projections::{LogEntry, SystemLog};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

use crate::api::ProductApi;
use crate::ledger::Ledger;
use crate::remote::{HostKey, Remote, SftpConfig};

/// Events are exported this long after the last commit of a burst.
const DEBOUNCE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpSettings {
    pub sftp: SftpConfig,
    pub client_id: String,
    pub client_secret: String,
    pub interval: Duration,
}

impl SftpSettings {
    /// `None` when `CRM_SFTP_HOST` is unset; an error naming what else is missing.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let Some(host) = get("CRM_SFTP_HOST") else {
            return Ok(None);
        };
        let mut missing = Vec::new();
        let mut required = |name: &'static str| {
            get(name).unwrap_or_else(|| {
                missing.push(name);
                String::new()
            })
        };
        let (user, key_file, client_id, client_secret) = (
            required("CRM_SFTP_USER"),
            required("CRM_SFTP_KEY_FILE"),
            required("CRM_SFTP_CLIENT_ID"),
            required("CRM_SFTP_CLIENT_SECRET"),
        );
        let host_key = match (get("CRM_SFTP_HOST_KEY"), get("CRM_SFTP_KNOWN_HOSTS")) {
            (Some(line), _) => Some(HostKey::Pinned(line)),
            (None, Some(path)) => Some(HostKey::KnownHosts(PathBuf::from(path))),
            (None, None) => {
                missing.push("CRM_SFTP_HOST_KEY or CRM_SFTP_KNOWN_HOSTS");
                None
            }
        };
        let (Some(host_key), true) = (host_key, missing.is_empty()) else {
            return Err(format!(
                "missing SFTP configuration: {}",
                missing.join(", ")
            ));
        };
        let number = |name: &str, default: u64| match get(name) {
            Some(value) => value
                .parse::<u64>()
                .map_err(|_| format!("{name} `{value}` is not a number")),
            None => Ok(default),
        };
        let dir = |name: &str, default: &str| get(name).unwrap_or_else(|| default.to_string());
        Ok(Some(SftpSettings {
            sftp: SftpConfig {
                host,
                port: u16::try_from(number("CRM_SFTP_PORT", 22)?)
                    .map_err(|_| "CRM_SFTP_PORT is not a port".to_string())?,
                username: user,
                key_file: PathBuf::from(key_file),
                host_key,
                inbox: dir("CRM_SFTP_INBOX", "inbox"),
                archive: dir("CRM_SFTP_ARCHIVE", "archive"),
                error: dir("CRM_SFTP_ERROR", "error"),
                outbox: dir("CRM_SFTP_OUTBOX", "outbox"),
            },
            client_id,
            client_secret,
            interval: Duration::from_secs(number("CRM_SFTP_INTERVAL_SECS", 300)?.max(1)),
        }))
    }
}

/// Runs until `shutdown` turns true. `api_base` is where this process serves the API.
pub async fn run(
    settings: SftpSettings,
    api_base: String,
    store: Arc<EventStore>,
    feed: impl CommitFeed,
    log: Arc<SystemLog>,
    ledger_path: &Path,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), sqlx::Error> {
    let ledger = Ledger::open(ledger_path).await?;
    let api = ProductApi::new(
        &api_base,
        &format!("{}/oauth2/token", api_base.trim_end_matches('/')),
        &settings.client_id,
        &settings.client_secret,
    );
    let commits = store.commits();
    let mut next_inbound = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            () = tokio::time::sleep_until(next_inbound) => {
                let _ = crate::inbound::run(&settings.sftp, &api, &ledger, &log).await;
                export(&settings.sftp, &store, &feed, &ledger, &log).await;
                next_inbound = tokio::time::Instant::now() + settings.interval;
            }
            () = commits.notified() => {
                tokio::time::sleep(DEBOUNCE).await;
                export(&settings.sftp, &store, &feed, &ledger, &log).await;
            }
        }
    }
    ledger.close().await;
    Ok(())
}

/// One export run; what it wrote, or why it failed, goes to the system log.
async fn export(
    config: &SftpConfig,
    store: &EventStore,
    feed: &impl CommitFeed,
    ledger: &Ledger,
    log: &SystemLog,
) {
    let today = chrono::Utc::now().date_naive();
    let result = match Remote::connect(config).await {
        Ok(remote) => {
            let result =
                crate::outbound::run(store, feed, &remote, &config.outbox, ledger, today).await;
            remote.close().await;
            result.map_err(|e| e.to_string())
        }
        Err(error) => Err(error.to_string()),
    };
    let entry = match result {
        Ok(exported) if exported.files.is_empty() => return,
        Ok(exported) => LogEntry::new(
            "info",
            "sftp",
            format!("SFTP export: {} file(s)", exported.files.len()),
        )
        .details(serde_json::json!({"files": exported.files})),
        Err(error) => LogEntry::new("error", "sftp", format!("SFTP export failed: {error}")),
    };
    log.record_or_warn(entry.actor("sftp-worker", None)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Option<SftpSettings>, String> {
        SftpSettings::from_env(|name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn no_host_no_worker_and_missing_settings_are_named() {
        assert_eq!(settings(&[]).unwrap(), None);
        let error = settings(&[("CRM_SFTP_HOST", "core.bank.example")]).unwrap_err();
        for name in [
            "CRM_SFTP_USER",
            "CRM_SFTP_KEY_FILE",
            "CRM_SFTP_CLIENT_ID",
            "CRM_SFTP_HOST_KEY",
        ] {
            assert!(error.contains(name), "{error}");
        }
        let full = settings(&[
            ("CRM_SFTP_HOST", "core.bank.example"),
            ("CRM_SFTP_USER", "ledgerline"),
            ("CRM_SFTP_KEY_FILE", "/etc/ledgerline/sftp_key"),
            ("CRM_SFTP_KNOWN_HOSTS", "/etc/ledgerline/known_hosts"),
            ("CRM_SFTP_CLIENT_ID", "id"),
            ("CRM_SFTP_CLIENT_SECRET", "secret"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(full.sftp.port, 22);
        assert_eq!(full.sftp.inbox, "inbox");
        assert_eq!(full.interval, Duration::from_secs(300));
    }
}
