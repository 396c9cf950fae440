//! The command line: `crm serve`, `crm worker add`, `crm replay`, `crm openapi`, and
//! with the `aws` feature `crm aws …`.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(name = "crm", about = "Ledgerline CRM for bank staff", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole product in one process on SQLite files in the data directory.
    Serve(Box<ServeArgs>),
    /// Manage integration workers (OAuth client-credentials clients).
    #[command(subcommand)]
    Worker(WorkerCommand),
    /// Print the API's OpenAPI document (what `/openapi.json` serves).
    Openapi,
    /// Rebuild every read model from the event store into a fresh copy and swap it in.
    /// With --server, the running server does it while it keeps serving (admin
    /// credentials from CRM_USERNAME / CRM_PASSWORD); without, it is done on the data
    /// directory of a stopped server.
    Replay {
        #[command(flatten)]
        data: DataDir,
        /// The URL of a running `crm serve`.
        #[arg(long)]
        server: Option<String>,
    },
    /// The verifiable ledger: export the store for an outside auditor, and verify an
    /// export against the signed digests.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The AWS deployment: create the stack, run it locally, rebuild, redrive.
    #[cfg(feature = "aws")]
    #[command(subcommand)]
    Aws(crate::aws::AwsCommand),
}

#[derive(Debug, Args)]
struct DataDir {
    /// Where the SQLite files and the signing key are kept.
    #[arg(long, env = "CRM_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The address to listen on.
    #[arg(long, env = "CRM_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    #[command(flatten)]
    data: DataDir,
    /// The URL clients reach this server at (the token issuer); defaults from --addr.
    #[arg(long, env = "CRM_PUBLIC_URL")]
    public_url: Option<String>,
    /// The root admin's username, used when the root admin is first created.
    #[arg(long, env = "CRM_ROOT_USERNAME", default_value = "root")]
    root_username: String,
    /// More redirect URIs the UI's OAuth client may use, comma-separated.
    #[arg(long, env = "CRM_UI_REDIRECT_URIS", value_delimiter = ',')]
    ui_redirect_uri: Vec<String>,
    /// The built web UI to serve at `/` (if the directory exists).
    #[arg(long, env = "CRM_UI_DIR", default_value = "ui/dist")]
    ui_dir: std::path::PathBuf,
    /// Connections open at once; more wait in the listen backlog.
    #[arg(long, env = "CRM_MAX_CONNECTIONS", default_value_t = 1024)]
    max_connections: usize,
    /// Seconds a connection has to send its request headers (and may stay idle).
    #[arg(long, env = "CRM_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    header_timeout_secs: u64,
    /// Seconds within which a request is answered (or gets a 503).
    #[arg(long, env = "CRM_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    request_timeout_secs: u64,
    /// Seconds a transfer request waits for its outcome before answering 202 (the
    /// transfer completes or fails by itself either way).
    #[arg(long, env = "CRM_TRANSFER_WAIT_SECS", default_value_t = 10)]
    transfer_wait_secs: u64,
    /// The Ed25519 key (PKCS#8 PEM) the ledger's digests are signed with, created if
    /// missing; outside the data directory. Default: `<data dir>-ledger/digest-signing-key.pem`.
    #[arg(long, env = "CRM_DIGEST_KEY")]
    digest_key: Option<PathBuf>,
    /// Public keys (PEM) of digest signing keys rotated out, comma-separated.
    #[arg(long, env = "CRM_RETIRED_DIGEST_KEYS", value_delimiter = ',')]
    retired_digest_key: Vec<PathBuf>,
    /// The append-only file signed digests are published to, outside the data directory
    /// (a restored backup must not roll it back). Default: `<data dir>-ledger/digests.jsonl`.
    #[arg(long, env = "CRM_DIGEST_FILE")]
    digest_file: Option<PathBuf>,
    /// Seconds between digests while the ledger grows.
    #[arg(long, env = "CRM_DIGEST_INTERVAL_SECS", default_value_t = 300)]
    digest_interval_secs: u64,
    /// The master key (64 hex digits) clients' personal data keys are wrapped under,
    /// created if missing; outside the data directory, and backed up apart from it.
    /// Default: `<data dir>-ledger/personal-data-master.key`.
    #[arg(long, env = "CRM_MASTER_KEY")]
    master_key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Write every event in commit order and the Merkle log's leaves into a new
    /// directory, for `crm audit verify` (format: docs/audit.md).
    Export {
        #[command(flatten)]
        data: DataDir,
        /// The directory to write (created; must be empty).
        #[arg(long)]
        out: PathBuf,
    },
    /// Check an export against signed digests, trusting nothing but the public keys:
    /// names each event modified, inserted, reordered or deleted, history cut short, and
    /// each digest forged or missing. Exits 1 if anything is wrong.
    Verify {
        /// The directory `crm audit export` wrote.
        #[arg(long)]
        export: PathBuf,
        /// The digest file (one signed digest per line), as the auditor keeps it.
        #[arg(long)]
        digests: PathBuf,
        /// A public key (PEM) digests may be signed with; repeat for rotated keys.
        #[arg(long = "public-key", required = true)]
        public_key: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum WorkerCommand {
    /// Register a worker and print its client id and secret (shown once).
    Add {
        /// A name to recognise the worker by.
        name: String,
        #[command(flatten)]
        data: DataDir,
    },
}

/// On unless set to `0`, `false` or `off`.
fn env_flag(name: &str) -> bool {
    !matches!(std::env::var(name).as_deref(), Ok("0" | "false" | "off"))
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .try_init();
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            init_logging();
            let beside = crate::config::LedgerSettings::beside(&args.data.data_dir);
            let ledger = crate::config::LedgerSettings {
                digest_key: args.digest_key.unwrap_or(beside.digest_key),
                retired_keys: args.retired_digest_key,
                digest_file: args.digest_file.unwrap_or(beside.digest_file),
                digest_interval: std::time::Duration::from_secs(args.digest_interval_secs.max(1)),
                master_key: args.master_key.unwrap_or(beside.master_key),
            };
            let config = Config {
                ledger,
                data_dir: args.data.data_dir,
                public_url: args.public_url,
                root_username: args.root_username,
                // Read from the environment only, so it never shows in `ps`.
                root_password: std::env::var("CRM_ROOT_PASSWORD")
                    .ok()
                    .filter(|p| !p.is_empty()),
                ui_redirect_uris: args.ui_redirect_uri,
                ui_dir: Some(args.ui_dir),
                store: event_store::SqliteOptions {
                    group_commit: env_flag("CRM_GROUP_COMMIT"),
                    aggregate_cache: env_flag("CRM_AGGREGATE_CACHE"),
                },
                mail: mail::MailSettings::from_env(|name| std::env::var(name).ok())
                    .map_err(anyhow::Error::msg)?,
                sftp: sftp_worker::SftpSettings::from_env(|name| std::env::var(name).ok())
                    .map_err(anyhow::Error::msg)?,
                transfer_patience: std::time::Duration::from_secs(args.transfer_wait_secs),
                verification_pace: query_api::verifier::Pace::DEFAULT,
                limits: api_kit::serve::Limits {
                    max_connections: args.max_connections.max(1),
                    header_read_timeout: std::time::Duration::from_secs(
                        args.header_timeout_secs.max(1),
                    ),
                    request_timeout: std::time::Duration::from_secs(
                        args.request_timeout_secs.max(1),
                    ),
                },
            };
            crate::serve::serve(config, args.addr).await
        }
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::openapi_document())?
            );
            Ok(())
        }
        Command::Replay {
            data,
            server: Some(url),
        } => crate::replay::through_server(&url, &data.data_dir).await,
        Command::Replay { data, server: None } => crate::replay::offline(&data.data_dir).await,
        Command::Audit(AuditCommand::Export { data, out }) => {
            crate::audit::export(&data.data_dir, &out).await
        }
        Command::Audit(AuditCommand::Verify {
            export,
            digests,
            public_key,
            json,
        }) => {
            if crate::audit::verify(&export, &digests, &public_key, json)? {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
        #[cfg(feature = "aws")]
        Command::Aws(command) => {
            init_logging();
            crate::aws::run(command).await
        }
        Command::Worker(WorkerCommand::Add { name, data }) => {
            std::fs::create_dir_all(&data.data_dir)?;
            let directory =
                identity::EmbeddedDirectory::open(&data.data_dir.join("identity.db")).await?;
            let worker = directory.register_worker(&name).await?;
            println!(
                "client_id={}\nclient_secret={}",
                worker.client_id, worker.client_secret
            );
            directory.close().await;
            Ok(())
        }
    }
}
