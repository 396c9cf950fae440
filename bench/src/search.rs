//! `search`: client search over HTTP on a seeded data directory (`seed`), as an agent
//! and as an auditor, once its read models have caught up.

use anyhow::Context;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::{ms, percentile, Server, Staff};

pub(crate) async fn search(crm: PathBuf, dir: PathBuf, samples: usize) -> anyhow::Result<()> {
    let (server, base) = Server::start(&crm, &dir).await?;
    let http = reqwest::Client::new();
    let waited = Instant::now();
    caught_up(&http, &base).await?;
    println!(
        "read models caught up after {:.1} s",
        waited.elapsed().as_secs_f64()
    );
    let staff = Staff::signed_in(&http, &base).await?;
    let names = surnames(&http, &base, &staff.auditor).await?;
    let [agent, auditor] = crate::scale::searches(&http, &base, &names, &staff, samples).await?;
    for (who, times) in [("bench.agent", &agent), ("bench.auditor", &auditor)] {
        println!(
            "{who}: {samples} searches, p50 {} / p99 {} / max {}",
            ms(percentile(times, 0.5)),
            ms(percentile(times, 0.99)),
            ms(times.last().copied().unwrap_or_default())
        );
    }
    drop(server);
    Ok(())
}

/// Waits until the projector has applied every committed event (`/metrics`).
async fn caught_up(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let metrics = http
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        let lag = metrics
            .lines()
            .find_map(|line| line.strip_prefix("ledgerline_projection_lag_events "))
            .context("no projection lag in /metrics")?;
        if lag.trim() == "0" {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "no catch-up in an hour"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The surnames of the newest 2,000 clients, as the auditor lists them.
async fn surnames(
    http: &reqwest::Client,
    base: &str,
    auditor: &str,
) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut request = http
            .get(format!("{base}/v1/clients"))
            .query(&[("limit", "200")])
            .bearer_auth(auditor);
        if let Some(cursor) = &cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        let page: Value = request.send().await?.error_for_status()?.json().await?;
        names.extend(
            page["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|client| client["last_name"].as_str().map(String::from)),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    Ok(names)
}
