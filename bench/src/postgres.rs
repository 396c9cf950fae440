//! `postgres`: the event store on PostgreSQL against what the server itself allows. At
//! each concurrency, the store's deposits (`EventStore::execute`: load, decide, append
//! one sealed event) and `pgbench` inserting one event-shaped row per transaction into
//! a table of the same shape, on the same server, one after the other; then the ratio.

use anyhow::{bail, Context};
use event_store::capabilities::EventLog;
use event_store::{Backend, EventStore, PostgresStore};
use std::process::Command;
use std::sync::Arc;

use crate::deposits;

/// An event row as the store writes one (a deposit), for pgbench to insert.
const PGBENCH_SCRIPT: &str = r#"INSERT INTO bench_events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES ('account', gen_random_uuid()::text, 1, 'MoneyDeposited', '1.0', '{"MoneyDeposited":{"amount":{"amount_minor":1,"currency":"EUR"},"balance_after":{"amount_minor":1042,"currency":"EUR"},"description":null,"transaction_id":"0193b3c4-6a7e-7d0e-9f1a-2b3c4d5e6f70"}}', '{"actor_id":"bench","actor_role":"agent","causation_id":"bench","correlation_id":"bench","hash":"6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b","occurred_at":"2026-11-28T04:00:00.000000Z","previous_hash":"d4735e3a265e16eee03f59718b9b5d03019c07d8b6c51f90da3a666eec13ab35"}');
"#;

pub(crate) async fn postgres(
    url: &str,
    writers: Vec<usize>,
    seconds: u64,
    pool: Option<u32>,
    rounds: usize,
) -> anyhow::Result<()> {
    let database = format!("ledgerline_bench_{}", std::process::id());
    let admin = sqlx::PgPool::connect(&format!("{url}/postgres")).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {database}"))
        .execute(&admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&admin)
        .await?;
    let target = format!("{url}/{database}");
    let outcome = compare(
        &target,
        &database,
        url,
        writers,
        seconds,
        pool,
        rounds.max(1),
    )
    .await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    outcome
}

async fn compare(
    target: &str,
    database: &str,
    url: &str,
    writers: Vec<usize>,
    seconds: u64,
    connections: Option<u32>,
    rounds: usize,
) -> anyhow::Result<()> {
    // The store's schema first, for pgbench's table to copy.
    PostgresStore::connect_with(target, 1).await?.close().await;
    let pool = sqlx::PgPool::connect(target).await?;
    sqlx::query("CREATE TABLE bench_events (LIKE events INCLUDING ALL)")
        .execute(&pool)
        .await?;
    let script = tempfile::NamedTempFile::new()?;
    std::fs::write(script.path(), PGBENCH_SCRIPT)?;
    let (host, port, user) = parts(url)?;
    for n in writers {
        // A store per round, with its own pool: as many connections as pgbench's clients.
        let connections = connections.unwrap_or(n as u32);
        let mut ratios = Vec::with_capacity(rounds);
        // One pair of runs spreads by a fifth either way on this machine (the server's
        // checkpoints and autovacuum land on whichever runs next); the median of
        // several rounds, each the store then pgbench, much less.
        for round in 1..=rounds {
            let store = Arc::new(EventStore::new(
                Backend::connect_postgres_with(target, connections).await?,
            ));
            // 64 accounts per writer, so writers seldom queue for one stream's lock, as
            // pgbench's independent inserts never do.
            let run = deposits(store.clone(), n, 64 * n, seconds).await?;
            store.close().await;
            let (tps, failed) = pgbench(n, seconds, script.path(), &host, &port, &user, database)?;
            let ratio = 100.0 * run.per_second / tps;
            ratios.push(ratio);
            println!("{n} writers, round {round}: store ({connections} connections) {run}");
            println!("{n} writers, round {round}: pgbench {tps:.0} inserts/s ({failed})");
            println!("{n} writers, round {round}: store / pgbench = {ratio:.0} %");
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "{n} writers: store / pgbench = {:.0} % (median of {rounds} rounds; {:.0}–{:.0} %)",
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1],
        );
    }
    pool.close().await;
    Ok(())
}

/// pgbench's inserts/s and its failure line, `n` clients for `seconds`.
fn pgbench(
    n: usize,
    seconds: u64,
    script: &std::path::Path,
    host: &str,
    port: &str,
    user: &str,
    database: &str,
) -> anyhow::Result<(f64, String)> {
    let output = Command::new("pgbench")
        .args([
            "-n",
            "-c",
            &n.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(script)
        .args(["-h", host, "-p", port, "-U", user, database])
        .output()
        .context("running pgbench (Debian's postgresql-client)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "pgbench failed: {}{}",
            text,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let tps: f64 = text
        .lines()
        .find(|line| line.starts_with("tps = "))
        .and_then(|line| line.split_whitespace().nth(2))
        .and_then(|value| value.parse().ok())
        .with_context(|| format!("no tps in pgbench's output: {text}"))?;
    let failed = text
        .lines()
        .find(|line| line.starts_with("number of failed transactions"))
        .unwrap_or("number of failed transactions: unknown")
        .to_string();
    Ok((tps, failed))
}

/// Host, port and user of a `postgres://user@host:port` URL.
fn parts(url: &str) -> anyhow::Result<(String, String, String)> {
    let rest = url
        .strip_prefix("postgres://")
        .context("a postgres:// URL")?;
    let (user, address) = rest.split_once('@').unwrap_or(("postgres", rest));
    let (host, port) = address.split_once(':').unwrap_or((address, "5432"));
    Ok((
        host.to_string(),
        port.trim_end_matches('/').to_string(),
        user.to_string(),
    ))
}
