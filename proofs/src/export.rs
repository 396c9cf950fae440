//! The export an outside auditor verifies offline (`crm audit export`, then `crm audit
//! verify`): a directory of plain files another language can read (docs/audit.md):
//!
//! - `manifest.json`: `{"format": "ledgerline-export-v1", "exported_at", "events",
//!   "log_size"}`;
//! - `events.jsonl`: every event in commit order, one JSON object per line: `position`
//!   (its place in commit order, from 0: its leaf), `aggregate_type`, `aggregate_id`,
//!   `sequence`, `event_type`, `event_version`, `payload` (the payload's JSON text as
//!   stored) and `metadata` (an object, with `previous_hash` and `hash`);
//! - `leaves.txt`: line `i` is the leaf hash the store's Merkle log holds for place `i`
//!   (hex), for each of its `log_size` places.
//!
//! Nothing in it is trusted: the verifier recomputes every leaf and root from the events
//! and holds them against the signed digests, using the logged leaves only to name which
//! event changed.

use std::io::{BufRead, BufWriter, Write};
use std::path::Path;

use domain::chain::RawEvent;
use domain::merkle::{self, Hash};
use event_store::MerkleStorage;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::{Digest, PublicKeys};
use crate::ledger_check::{LedgerCheck, Report};

pub const FORMAT: &str = "ledgerline-export-v1";

/// How many events the export reads at a time.
const PAGE: u64 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub exported_at: String,
    pub events: u64,
    pub log_size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ExportedEvent {
    position: u64,
    aggregate_type: String,
    aggregate_id: String,
    sequence: usize,
    event_type: String,
    event_version: String,
    payload: String,
    metadata: Value,
}

/// Writes the export of the store behind `log` into `dir` (created; must be empty).
pub async fn export(log: &dyn MerkleStorage, dir: &Path) -> anyhow::Result<Manifest> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    anyhow::ensure!(
        std::fs::read_dir(dir)?.next().is_none(),
        "{} is not empty",
        dir.display()
    );
    // The log first: every event it covers is then in the events read after.
    let log_size = event_store::merkle::catch_up(log).await?;
    let mut leaves = BufWriter::new(std::fs::File::create(dir.join("leaves.txt"))?);
    let mut from = 0;
    while from < log_size {
        let to = (from + PAGE).min(log_size);
        let indices: Vec<u64> = (from..to)
            .map(|leaf| merkle::perfect_index(leaf, 0))
            .collect();
        let nodes = log.log_nodes(&indices).await?;
        for index in indices {
            // A leaf the log lacks is written as an empty line: the verifier names it.
            let line = nodes.get(&index).map(hex::encode).unwrap_or_default();
            writeln!(leaves, "{line}")?;
        }
        from = to;
    }
    leaves.into_inner()?.sync_all()?;

    let mut events = BufWriter::new(std::fs::File::create(dir.join("events.jsonl"))?);
    let (mut next, mut count) = (0, 0);
    loop {
        let page = log.leaf_events(next, PAGE).await?;
        let Some(&(last, _)) = page.last() else {
            break;
        };
        for (position, event) in page {
            let line = ExportedEvent {
                position,
                aggregate_type: event.aggregate_type,
                aggregate_id: event.aggregate_id,
                sequence: event.sequence,
                event_type: event.event_type,
                event_version: event.event_version,
                payload: event.payload_json,
                metadata: event.metadata,
            };
            serde_json::to_writer(&mut events, &line)?;
            events.write_all(b"\n")?;
            count += 1;
        }
        next = last + 1;
    }
    events.into_inner()?.sync_all()?;
    let manifest = Manifest {
        format: FORMAT.into(),
        exported_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        events: count,
        log_size,
    };
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    Ok(manifest)
}

/// Verifies the export in `dir` against `digests` and `keys`: every chain, every leaf,
/// every digest (see [`crate::ledger_check`]).
pub fn verify(dir: &Path, digests: &[Digest], keys: &PublicKeys) -> anyhow::Result<Report> {
    use anyhow::Context;
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(dir.join("manifest.json")).context("reading manifest.json")?,
    )
    .context("manifest.json")?;
    anyhow::ensure!(
        manifest.format == FORMAT,
        "the export's format is {:?}, not {FORMAT}",
        manifest.format
    );
    let leaves = read_leaves(&dir.join("leaves.txt"))?;
    let events = std::io::BufReader::new(
        std::fs::File::open(dir.join("events.jsonl")).context("opening events.jsonl")?,
    );
    let mut check = LedgerCheck::new(digests, keys, true);
    let mut places = leaves.len() as u64;
    let mut last: Option<u64> = None;
    for (n, line) in events.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let event: ExportedEvent =
            serde_json::from_str(&line).with_context(|| format!("events.jsonl, line {}", n + 1))?;
        anyhow::ensure!(
            last.is_none_or(|last| event.position > last),
            "events.jsonl, line {}: position {} is not after the one before: the export is not in commit order",
            n + 1,
            event.position
        );
        last = Some(event.position);
        places = places.max(event.position + 1);
        let logged = leaves.get(event.position as usize).copied().flatten();
        let position = event.position;
        check.event(position, &raw(event), logged);
    }
    Ok(check.finish(places))
}

fn raw(event: ExportedEvent) -> RawEvent {
    RawEvent {
        aggregate_type: event.aggregate_type,
        aggregate_id: event.aggregate_id,
        sequence: event.sequence,
        event_type: event.event_type,
        event_version: event.event_version,
        payload_json: event.payload,
        metadata: event.metadata,
    }
}

/// The logged leaves, `None` where a line is empty or not a hash.
fn read_leaves(path: &Path) -> anyhow::Result<Vec<Option<Hash>>> {
    use anyhow::Context;
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    std::io::BufReader::new(file)
        .lines()
        .map(|line| {
            let mut hash = [0; 32];
            Ok(hex::decode_to_slice(line?.trim(), &mut hash)
                .ok()
                .map(|()| hash))
        })
        .collect()
}
