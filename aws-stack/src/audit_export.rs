//! What a bank hands an outside auditor from AWS (`crm aws export`): the DynamoDB store
//! in the export format the offline verifier reads (`proofs::export`), and the digests
//! published to S3 as a digest file. The auditor checks both with `crm audit verify`
//! and the digest key's public half alone.

use std::path::Path;

use proofs::DigestLog;

use crate::clients::AwsClients;
use crate::error::StackError;
use crate::topology::Topology;

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub events: u64,
    pub log_size: u64,
    /// Digests written to `digests.jsonl`, if a bucket was given.
    pub digests: Option<usize>,
}

/// Exports the store of `topology` into the empty directory `out`, and, with a digest
/// bucket, every digest published there as `out/digests.jsonl`, oldest first.
pub async fn export_for_audit(
    clients: &AwsClients,
    topology: &Topology,
    out: &Path,
    digest_bucket: Option<&str>,
) -> Result<Exported, StackError> {
    let store = event_store::DynamoStore::new(clients.dynamo.clone(), topology.tables());
    let manifest = proofs::export::export(&store, out)
        .await
        .map_err(|e| StackError::Setup(format!("exporting the store: {e:#}")))?;
    let digests = match digest_bucket {
        None => None,
        Some(bucket) => {
            let published = proofs::aws::S3Digests::new(clients.digests.s3.clone(), bucket);
            let digests = published
                .read()
                .await
                .map_err(|e| StackError::Setup(e.to_string()))?;
            let mut text = String::new();
            for digest in &digests {
                text.push_str(&serde_json::to_string(digest).expect("a digest serializes"));
                text.push('\n');
            }
            let path = out.join("digests.jsonl");
            std::fs::write(&path, text)
                .map_err(|e| StackError::Setup(format!("{}: {e}", path.display())))?;
            Some(digests.len())
        }
    };
    Ok(Exported {
        events: manifest.events,
        log_size: manifest.log_size,
        digests,
    })
}
