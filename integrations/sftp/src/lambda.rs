//! The worker as a Lambda (feature `lambda`): invoked by an EventBridge schedule (read
//! the inbox, write the statements that are due) and by the SQS queue its bus rule fills
//! with the product's events (write the exports they call for, reporting the batch as
//! failed if they could not be written, so SQS delivers it again). Its ledger lives in
//! Aurora; the SSH key and the OAuth client secret come from Secrets Manager.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
use event_store::{EventStore, StoredEvent};
use projections::{LogEntry, SystemLog};
use serde_json::Value;
use std::sync::Arc;

use crate::api::ProductApi;
use crate::inbound::RunError;
use crate::ledger::Ledger;
use crate::remote::{Remote, SftpConfig};

/// What the function was invoked with.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// An EventBridge scheduled event.
    Schedule,
    /// SQS messages carrying the product's events (EventBridge envelopes), with their
    /// message ids.
    Events(Vec<(String, StoredEvent)>),
}

/// Reads an invocation payload; a message that cannot be read is refused by id.
pub fn invocation(payload: &Value) -> Result<Invocation, String> {
    if payload["source"] == "aws.events" && payload["detail-type"] == "Scheduled Event" {
        return Ok(Invocation::Schedule);
    }
    let Some(records) = payload["Records"].as_array() else {
        return Err("neither a scheduled event nor an SQS batch".into());
    };
    records
        .iter()
        .map(|record| {
            let id = record["messageId"].as_str().unwrap_or_default().to_string();
            let body = record["body"].as_str().unwrap_or_default();
            projections::lambda::event_from_message(body)
                .map(|event| (id.clone(), event))
                .map_err(|e| format!("message {id}: {e}"))
        })
        .collect::<Result<_, _>>()
        .map(Invocation::Events)
}

pub struct Worker {
    pub sftp: SftpConfig,
    pub api: ProductApi,
    pub ledger: Ledger,
    pub log: Arc<SystemLog>,
    pub store: Arc<EventStore>,
}

impl Worker {
    /// Handles one invocation; for SQS, the messages to deliver again.
    pub async fn handle(&self, invocation: Invocation) -> Result<SqsBatchResponse, RunError> {
        let today = chrono::Utc::now().date_naive();
        match invocation {
            Invocation::Schedule => {
                crate::inbound::run(&self.sftp, &self.api, &self.ledger, &self.log).await?;
                let remote = Remote::connect(&self.sftp).await?;
                let written = crate::outbound::export_statements(
                    &self.store,
                    &remote,
                    &self.sftp.outbox,
                    &self.ledger,
                    today,
                )
                .await;
                remote.close().await;
                self.logged(written?).await;
                Ok(SqsBatchResponse::default())
            }
            Invocation::Events(messages) => {
                let events: Vec<StoredEvent> = messages.iter().map(|(_, e)| e.clone()).collect();
                let label = match (messages.first(), messages.last()) {
                    (Some((first, _)), Some((last, _))) if first != last => {
                        format!("{first}-{last}")
                    }
                    (Some((only, _)), _) => only.clone(),
                    _ => return Ok(SqsBatchResponse::default()),
                };
                let written = async {
                    let remote = Remote::connect(&self.sftp).await?;
                    let written = crate::outbound::export_events(
                        &self.store,
                        &remote,
                        &self.sftp.outbox,
                        &self.ledger,
                        &events,
                        &label,
                    )
                    .await;
                    remote.close().await;
                    written
                }
                .await;
                let mut response = SqsBatchResponse::default();
                match written {
                    Ok(files) => self.logged(files).await,
                    Err(error) => {
                        tracing::error!(%error, "exports failed; the batch comes back");
                        self.log
                            .record_or_warn(
                                LogEntry::new(
                                    "error",
                                    "sftp",
                                    format!("SFTP export failed: {error}"),
                                )
                                .actor("sftp-worker", None),
                            )
                            .await;
                        for (id, _) in messages {
                            let mut failure = BatchItemFailure::default();
                            failure.item_identifier = id;
                            response.batch_item_failures.push(failure);
                        }
                    }
                }
                Ok(response)
            }
        }
    }

    async fn logged(&self, files: Vec<String>) {
        if files.is_empty() {
            return;
        }
        self.log
            .record_or_warn(
                LogEntry::new(
                    "info",
                    "sftp",
                    format!("SFTP export: {} file(s)", files.len()),
                )
                .actor("sftp-worker", None)
                .details(serde_json::json!({"files": files})),
            )
            .await;
    }
}

/// The secret the Lambda reads from Secrets Manager: `{"private_key": "-----BEGIN
/// OPENSSH PRIVATE KEY-----…", "client_secret": "…"}`. The key is written to a file
/// only this process can read (Lambda's /tmp).
pub async fn secret(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
    key_file: &std::path::Path,
) -> Result<String, String> {
    let value = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string())?;
    let secret: Value = serde_json::from_str(value.secret_string().unwrap_or_default())
        .map_err(|e| format!("the secret is not JSON: {e}"))?;
    let (Some(key), Some(client_secret)) = (
        secret["private_key"].as_str(),
        secret["client_secret"].as_str(),
    ) else {
        return Err("the secret needs private_key and client_secret".into());
    };
    write_private(key_file, key.as_bytes()).map_err(|e| format!("{}: {e}", key_file.display()))?;
    Ok(client_secret.to_string())
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path)?.write_all(bytes)
}
