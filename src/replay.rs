//! `crm replay`: rebuild the read models from the event store, offline or through a
//! running server.

use anyhow::{bail, Context};
use event_store::SqliteStore;
use projections::{current_read_db, rebuild_sqlite, sqlite_url, ReadStore, SystemLog};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Written by `crm serve` into its data directory while it runs: its public URL.
pub const SERVER_FILE: &str = "serve.url";

/// Rebuilds on a data directory no server is using. Returns events replayed per second.
pub async fn offline(data_dir: &Path) -> anyhow::Result<()> {
    if let Ok(url) = std::fs::read_to_string(data_dir.join(SERVER_FILE)) {
        let url = url.trim();
        let live = reqwest::get(format!("{url}/health/live"))
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        if live {
            bail!("a server is running on this data directory at {url}: run `crm replay --server {url}` (with CRM_USERNAME and CRM_PASSWORD of an admin)");
        }
    }
    let started = Instant::now();
    let position = rebuild(data_dir).await?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "rebuilt the read models up to event {position} in {seconds:.1} s ({:.0} events/s)",
        position as f64 / seconds.max(1e-9)
    );
    Ok(())
}

/// The rebuild itself, on a data directory.
pub async fn rebuild(data_dir: &Path) -> anyhow::Result<i64> {
    let sqlite = SqliteStore::open(&data_dir.join("ledger.db"))
        .await
        .context("opening the event store")?;
    let master_key = std::env::var_os("CRM_MASTER_KEY").map_or_else(
        || crate::config::LedgerSettings::beside(data_dir).master_key,
        std::path::PathBuf::from,
    );
    let (store, feed) = crate::config::vaulted(sqlite, &master_key, data_dir).await?;
    let read = Arc::new(ReadStore::open(&sqlite_url(&current_read_db(data_dir))).await?);
    let log = Arc::new(SystemLog::open(&sqlite_url(&data_dir.join("system-log.db"))).await?);
    let position = rebuild_sqlite(store.clone(), feed, read.clone(), log.clone(), data_dir).await?;
    read.close().await;
    log.close().await;
    store.close().await;
    Ok(position)
}

/// Asks the running server to rebuild while it keeps serving.
pub async fn through_server(url: &str, _data_dir: &Path) -> anyhow::Result<()> {
    let username = std::env::var("CRM_USERNAME")
        .context("CRM_USERNAME (an admin) is required with --server")?;
    let password =
        std::env::var("CRM_PASSWORD").context("CRM_PASSWORD is required with --server")?;
    let http = reqwest::Client::new();
    let url = url.trim_end_matches('/');
    let login: Value = http
        .post(format!("{url}/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await?
        .error_for_status()
        .context("signing in")?
        .json()
        .await?;
    let token = login["access_token"]
        .as_str()
        .context("no access token in the sign-in answer")?;
    let started = Instant::now();
    let answer: Value = http
        .post(format!("{url}/v1/admin/rebuild"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()
        .context("rebuilding")?
        .json()
        .await?;
    println!(
        "rebuilt up to event {} in {:.1} s while serving",
        answer["position"],
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
