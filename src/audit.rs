//! `crm audit export` and `crm audit verify`: what an outside auditor runs. The export
//! is taken from a data directory; the verification needs nothing of ours but the
//! export, the digest file and the public keys (docs/audit.md).

use std::path::Path;

use anyhow::Context;
use event_store::SqliteStore;

/// Writes the export of the store in `data_dir` into `out`.
pub(crate) async fn export(data_dir: &Path, out: &Path) -> anyhow::Result<()> {
    let path = data_dir.join("ledger.db");
    anyhow::ensure!(path.is_file(), "no event store at {}", path.display());
    let store = SqliteStore::open(&path)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    let manifest = proofs::export::export(&store, out).await;
    store.pool().close().await;
    let manifest = manifest?;
    println!(
        "exported {} events ({} in the Merkle log) to {}",
        manifest.events,
        manifest.log_size,
        out.display()
    );
    Ok(())
}

/// Verifies the export in `export` against the digests in `digests`, trusting only
/// `public_keys`; prints what it found. Returns whether all was well.
pub(crate) fn verify(
    export: &Path,
    digests: &Path,
    public_keys: &[std::path::PathBuf],
    json: bool,
) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(digests)
        .with_context(|| format!("reading the digests {}", digests.display()))?;
    let digests = proofs::digest_file::parse(digests, &text)?;
    let mut keys = proofs::PublicKeys::default();
    for path in public_keys {
        keys.add(proofs::keys::load_public(path)?);
    }
    let report = proofs::export::verify(export, &digests, &keys)?;
    // Without a digest that verifies, nothing in the export is vouched for.
    let ok = report.ok && report.digests > 0;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ok);
    }
    for problem in &report.problems {
        println!("FAIL  {problem}");
    }
    if report.more_problems > 0 {
        println!("FAIL  and {} more problems", report.more_problems);
    }
    let verdict = if ok { "OK" } else { "FAILED" };
    match report.latest_digest {
        Some((size, sequence)) if report.digests > 0 => println!(
            "{verdict}  {} events, {} digest{} checked (the latest, {sequence}, over {size} events)",
            report.events,
            report.digests,
            if report.digests == 1 { "" } else { "s" }
        ),
        _ => println!(
            "{verdict}  {} events; no digest verified with the keys given: nothing here is vouched for",
            report.events
        ),
    }
    Ok(ok)
}
