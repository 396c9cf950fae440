//! What the verifiable ledger costs: commands with the Merkle log followed against
//! without (the same store, rounds alternated), then on a store of `events` events the
//! log built from nothing, a digest, inclusion and consistency proofs, the whole-ledger
//! check, and the export verified offline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use event_store::{merkle, EventStore, MerkleStorage, SqliteStore};
use rand::{Rng, SeedableRng};

use crate::{deposits, ms, percentile, write_streams};

async fn sqlite_store(dir: &std::path::Path) -> anyhow::Result<Arc<EventStore>> {
    Ok(Arc::new(EventStore::new(
        SqliteStore::open(&dir.join("ledger.db")).await?.into(),
    )))
}

pub(crate) async fn ledger(
    events: usize,
    rounds: usize,
    seconds: u64,
    writers: usize,
) -> anyhow::Result<()> {
    writes(rounds, seconds, writers).await?;
    personal(rounds, seconds, writers).await?;
    at_size(events).await
}

/// Onboardings (each carrying a client's personal data) with personal data encrypted
/// or in the clear, and the log followed or off: the four alternated in each round.
async fn personal(rounds: usize, seconds: u64, writers: usize) -> anyhow::Result<()> {
    for round in 1..=rounds {
        for (encrypted, logged) in [(false, false), (true, false), (false, true), (true, true)] {
            let dir = tempfile::tempdir()?;
            let mut store = EventStore::new(
                SqliteStore::open(&dir.path().join("ledger.db"))
                    .await?
                    .into(),
            );
            if encrypted {
                store = store.with_master_key(&event_store::personal::Vault::generate_master())?;
            }
            let store = Arc::new(store);
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let follower = logged.then(|| {
                tokio::spawn(merkle::follow(
                    store.clone(),
                    Duration::from_millis(200),
                    stopped,
                ))
            });
            let run = onboardings(store.clone(), writers, seconds).await?;
            let _ = stop.send(true);
            if let Some(follower) = follower {
                follower.await?;
            }
            println!(
                "round {round}, {writers} writers, onboardings, personal data {}, log {}: {run}",
                if encrypted {
                    "encrypted"
                } else {
                    "in the clear"
                },
                if logged { "followed" } else { "off" }
            );
            store.close().await;
        }
    }
    Ok(())
}

/// `tasks` writers onboarding new clients for `seconds`.
async fn onboardings(
    store: Arc<EventStore>,
    tasks: usize,
    seconds: u64,
) -> anyhow::Result<crate::Run> {
    let metadata = crate::seed_metadata();
    let agent = domain::StaffId::new();
    crate::drive(tasks, seconds, move |_, _| {
        let (store, metadata) = (store.clone(), metadata.clone());
        async move { crate::seed::onboard(&store, &metadata, agent, "Grace", "Hopper").await }
    })
    .await
}

/// Commands with and without the log's follower, alternated.
async fn writes(rounds: usize, seconds: u64, writers: usize) -> anyhow::Result<()> {
    for round in 1..=rounds {
        for logged in [false, true] {
            let dir = tempfile::tempdir()?;
            let store = sqlite_store(dir.path()).await?;
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let follower = logged.then(|| {
                tokio::spawn(merkle::follow(
                    store.clone(),
                    Duration::from_millis(200),
                    stopped,
                ))
            });
            let run = deposits(store.clone(), writers, 1_000, seconds).await?;
            let _ = stop.send(true);
            if let Some(follower) = follower {
                follower.await?;
            }
            let log = store.backend().merkle().expect("SQLite keeps the log");
            let behind = if logged {
                let size = log.log_size().await?;
                let total = merkle::catch_up(log).await?;
                format!(", log {} events behind at the end", total - size)
            } else {
                String::new()
            };
            println!(
                "round {round}, {writers} writers, log {}: {run}{behind}",
                if logged { "followed" } else { "off" }
            );
            store.close().await;
        }
    }
    Ok(())
}

fn file_bytes(dir: &std::path::Path) -> u64 {
    ["ledger.db", "ledger.db-wal"]
        .iter()
        .filter_map(|name| std::fs::metadata(dir.join(name)).ok())
        .map(|m| m.len())
        .sum()
}

/// Proof, digest and check costs on a store of `events` events.
async fn at_size(events: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data)?;
    let store = sqlite_store(&data).await?;
    write_streams(&store, events).await?;
    let log: &dyn MerkleStorage = store.backend().merkle().expect("SQLite keeps the log");
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(match store.backend() {
            event_store::Backend::Sqlite(sqlite) => sqlite.pool(),
            _ => unreachable!("SQLite"),
        })
        .await?;
    let before = file_bytes(&data);

    let started = Instant::now();
    let size = merkle::catch_up(log).await?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "log built:       {size} events in {seconds:.1} s, {:.0} events/s",
        size as f64 / seconds
    );
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(match store.backend() {
            event_store::Backend::Sqlite(sqlite) => sqlite.pool(),
            _ => unreachable!("SQLite"),
        })
        .await?;
    println!(
        "log on disk:     {:.0} bytes/event (the store grew from {:.0} to {:.0} MiB)",
        (file_bytes(&data) as f64 - before as f64) / size as f64,
        before as f64 / 1048576.0,
        file_bytes(&data) as f64 / 1048576.0
    );

    let key = proofs::keys::load_or_create(&dir.path().join("keys/digest.pem"), &data)?;
    let notary = proofs::Notary::new(
        store.clone(),
        Arc::new(proofs::DigestSigner::new(key)),
        Arc::new(proofs::DigestFile::new(data.join("digests.jsonl"))),
    );
    let mut signing = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        notary.issue(false).await?;
        signing.push(started.elapsed());
    }
    signing.sort();
    println!(
        "digest:          p50 {}  p99 {}  (root at {size} events, signed, appended and synced)",
        ms(percentile(&signing, 0.5)),
        ms(percentile(&signing, 0.99))
    );

    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut inclusion = Vec::new();
    for _ in 0..1_000 {
        let leaf = rng.gen_range(0..size);
        let started = Instant::now();
        merkle::inclusion(log, size, leaf).await?;
        inclusion.push(started.elapsed());
    }
    inclusion.sort();
    let mut consistency = Vec::new();
    for _ in 0..1_000 {
        let old = rng.gen_range(1..size);
        let started = Instant::now();
        merkle::consistency(log, old, size).await?;
        consistency.push(started.elapsed());
    }
    consistency.sort();
    println!(
        "inclusion proof: p50 {}  p99 {}   consistency proof: p50 {}  p99 {}  (1,000 each, at {size} events)",
        ms(percentile(&inclusion, 0.5)),
        ms(percentile(&inclusion, 0.99)),
        ms(percentile(&consistency, 0.5)),
        ms(percentile(&consistency, 0.99))
    );

    let digests = notary.published().read().await?;
    let keys: proofs::PublicKeys = [notary.signer().public_key()].into_iter().collect();
    let started = Instant::now();
    let report = proofs::ledger_check::check_store(log, &digests, &keys).await?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.ok,
        "the ledger check failed: {:?}",
        report.problems.first()
    );
    println!(
        "ledger check:    {} events, {} digests in {seconds:.1} s, {:.0} events/s",
        report.events,
        report.digests,
        report.events as f64 / seconds
    );

    let out = dir.path().join("export");
    let started = Instant::now();
    proofs::export::export(log, &out).await?;
    let exported = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let report = tokio::task::spawn_blocking({
        let out = out.clone();
        move || proofs::export::verify(&out, &digests, &keys)
    })
    .await??;
    let verified = started.elapsed().as_secs_f64();
    anyhow::ensure!(report.ok, "the offline check failed");
    println!(
        "export:          {:.0} events/s; offline verify {:.0} events/s",
        size as f64 / exported,
        size as f64 / verified
    );
    store.close().await;
    Ok(())
}
