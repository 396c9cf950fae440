//! The connection to the core system's SFTP server: async-ssh2-tokio for SSH (public-key
//! authentication, the server's host key checked against a pinned key or a known_hosts
//! file), russh-sftp on the same connection for listing, reading, writing, renaming.

use async_ssh2_tokio::{AuthMethod, Client, ServerCheckMethod};
use russh_sftp::client::SftpSession;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKey {
    /// The server's public key as an OpenSSH line (`ssh-ed25519 AAAA…`).
    Pinned(String),
    /// An OpenSSH known_hosts file.
    KnownHosts(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpConfig {
    pub host: String,
    pub port: u16,
    pub username: String,
    /// The worker's private key (from configuration; Secrets Manager in AWS).
    pub key_file: PathBuf,
    pub host_key: HostKey,
    /// The remote directories (absolute, or relative to the login directory).
    pub inbox: String,
    pub archive: String,
    pub error: String,
    pub outbox: String,
}

#[derive(Debug, Error)]
pub enum RemoteError {
    #[error("connecting to {0}: {1}")]
    Connect(String, String),
    #[error("SFTP: {0}")]
    Sftp(String),
}

fn sftp_error(error: impl std::fmt::Display) -> RemoteError {
    RemoteError::Sftp(error.to_string())
}

pub struct Remote {
    client: Client,
    pub sftp: SftpSession,
}

impl Remote {
    pub async fn connect(config: &SftpConfig) -> Result<Self, RemoteError> {
        let target = format!("{}:{}", config.host, config.port);
        let check = match &config.host_key {
            // async-ssh2-tokio wants the key's base64 alone.
            HostKey::Pinned(line) => ServerCheckMethod::PublicKey(
                line.split_whitespace()
                    .nth(1)
                    .unwrap_or(line.as_str())
                    .to_string(),
            ),
            HostKey::KnownHosts(path) => {
                ServerCheckMethod::KnownHostsFile(path.display().to_string())
            }
        };
        let client = Client::connect(
            (config.host.as_str(), config.port),
            &config.username,
            AuthMethod::with_key_file(&config.key_file, None),
            check,
        )
        .await
        .map_err(|e| RemoteError::Connect(target.clone(), e.to_string()))?;
        let channel = client
            .get_channel()
            .await
            .map_err(|e| RemoteError::Connect(target.clone(), e.to_string()))?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|e| RemoteError::Connect(target.clone(), e.to_string()))?;
        let sftp = SftpSession::new(channel.into_stream())
            .await
            .map_err(sftp_error)?;
        Ok(Remote { client, sftp })
    }

    /// The names of the regular files in `dir` that end in `suffix`, sorted.
    pub async fn files(&self, dir: &str, suffix: &str) -> Result<Vec<String>, RemoteError> {
        let mut names: Vec<String> = self
            .sftp
            .read_dir(dir)
            .await
            .map_err(sftp_error)?
            .filter(|entry| entry.file_type().is_file())
            .map(|entry| entry.file_name())
            .filter(|name| name.ends_with(suffix) && !name.starts_with('.'))
            .collect();
        names.sort();
        Ok(names)
    }

    pub async fn read(&self, path: &str) -> Result<Vec<u8>, RemoteError> {
        self.sftp.read(path).await.map_err(sftp_error)
    }

    /// Writes `data` under a temporary name in `dir`, then renames it to `name`: readers
    /// see the whole file or nothing.
    pub async fn write_atomically(
        &self,
        dir: &str,
        name: &str,
        data: &[u8],
    ) -> Result<(), RemoteError> {
        use tokio::io::AsyncWriteExt;
        let partial = format!("{dir}/.{name}.part");
        let mut file = self.sftp.create(&partial).await.map_err(sftp_error)?;
        file.write_all(data).await.map_err(sftp_error)?;
        file.shutdown().await.map_err(sftp_error)?;
        self.rename(&partial, &format!("{dir}/{name}")).await
    }

    /// Renames, keeping what is already at `to` (the moved file gets a suffix).
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), RemoteError> {
        let target = if self.sftp.try_exists(to).await.map_err(sftp_error)? {
            format!("{to}.{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f"))
        } else {
            to.to_string()
        };
        self.sftp.rename(from, target).await.map_err(sftp_error)
    }

    pub async fn close(self) {
        let _ = self.sftp.close().await;
        let _ = self.client.disconnect().await;
    }
}
