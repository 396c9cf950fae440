//! For tests only (a dev-dependency; no production build depends on it): real protocol
//! peers, started on a free loopback port and stopped on drop — DynamoDB Local and moto
//! (started by `local-peers`, which the local AWS mode uses too), an SMTP sink (aiosmtpd,
//! keeping what it receives in a Maildir), OpenSSH's sshd, and Schemathesis's command —
//! all found in the repository's `.tools/`, where `scripts/test` installs them. A
//! missing peer fails the test: tests never skip silently. [`postgres`] makes fresh
//! databases on the machine's PostgreSQL.

#[cfg(feature = "aws")]
pub mod aws;
pub mod postgres;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

pub use local_peers::Peer;

fn tools() -> local_peers::Tools {
    local_peers::Tools::at(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools"))
}

fn free_port() -> u16 {
    local_peers::free_port().expect("a free port")
}

/// Amazon's DynamoDB Local, in memory.
pub async fn dynamodb_local() -> Peer {
    local_peers::dynamodb_local(&tools())
        .await
        .unwrap_or_else(|error| panic!("{error}"))
}

/// DynamoDB Local keeping its tables in files under `dir`.
pub async fn dynamodb_local_in(dir: &std::path::Path) -> Peer {
    local_peers::dynamodb_local_in(&tools(), dir)
        .await
        .unwrap_or_else(|error| panic!("{error}"))
}

/// moto's server (the AWS emulator).
pub async fn moto() -> Peer {
    local_peers::moto(&tools())
        .await
        .unwrap_or_else(|error| panic!("{error}"))
}

/// An SMTP server that keeps every message it receives; `messages` reads them.
pub struct SmtpSink {
    pub peer: Peer,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    /// The raw messages received so far (headers and body), oldest first.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<_> = std::fs::read_dir(self.dir.path().join("maildir/new"))
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort_by_key(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok());
        files
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .collect()
    }
}

/// Schemathesis's command (from PyPI, in `.tools/schemathesis`; `SCHEMATHESIS` points
/// elsewhere).
pub fn schemathesis() -> PathBuf {
    let command = std::env::var("SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| tools().dir().join("schemathesis/bin/schemathesis"));
    assert!(
        command.is_file(),
        "{} not found (scripts/test installs schemathesis into .tools/schemathesis)",
        command.display()
    );
    command
}

/// aiosmtpd (from PyPI, in `.tools/venv`) on a free port, storing mail in a Maildir.
pub async fn smtp_sink() -> SmtpSink {
    let python = std::env::var("CRM_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| tools().dir().join("venv/bin/python"));
    assert!(
        python.is_file(),
        "{} not found (scripts/test installs aiosmtpd into .tools/venv)",
        python.display()
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = free_port();
    let peer = |child| Peer::new(child, format!("smtp://127.0.0.1:{port}"));
    // Wrapped at once: dropping a Peer kills and reaps the process on every path.
    let peer = peer(
        Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("maildir"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd starts"),
    );
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return SmtpSink { peer, port, dir };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("aiosmtpd did not listen on {port}");
}

/// OpenSSH's sshd (Debian's openssh-server) on a free loopback port with its own config,
/// host key and client key, serving SFTP (`internal-sftp`) to the current user, whose
/// files live under `root` (`inbox/`, `archive/`, `error/`, `outbox/`).
pub struct Sshd {
    peer: Option<Peer>,
    pub port: u16,
    pub user: String,
    pub root: PathBuf,
    /// The client's private key file (authorised by this server only).
    pub client_key: PathBuf,
    /// The server's public host key, as an OpenSSH `type base64` line.
    pub host_key: String,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sshd {
    /// Stops the server (connections drop); [`Sshd::start_again`] brings it back.
    pub fn stop(&mut self) {
        self.peer = None;
    }

    pub async fn start_again(&mut self) {
        self.peer = Some(spawn_sshd(&self.config, self.port).await);
    }
}

fn keygen(path: &std::path::Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success(), "ssh-keygen failed");
}

async fn spawn_sshd(config: &std::path::Path, port: u16) -> Peer {
    let sshd = std::env::var("CRM_TEST_SSHD").unwrap_or_else(|_| "/usr/sbin/sshd".into());
    assert!(
        std::path::Path::new(&sshd).is_file(),
        "{sshd} not found (scripts/test installs Debian's openssh-server)"
    );
    let peer = Peer::new(
        Command::new(&sshd)
            .args(["-D", "-e", "-f"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd starts"),
        format!("127.0.0.1:{port}"),
    );
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return peer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("sshd did not listen on {port}");
}

pub async fn sshd() -> Sshd {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path();
    keygen(&path.join("host_ed25519"));
    keygen(&path.join("client_ed25519"));
    std::fs::copy(
        path.join("client_ed25519.pub"),
        path.join("authorized_keys"),
    )
    .unwrap();
    let root = path.join("sftp");
    for sub in ["inbox", "archive", "error", "outbox"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    let user = Command::new("id")
        .arg("-un")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|u| !u.is_empty())
        .expect("the current user's name");
    // sshd started as root needs its privilege separation directory.
    let _ = std::fs::create_dir_all("/run/sshd");
    let port = free_port();
    let config = path.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile none\n\
             AuthorizedKeysFile {keys}\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\n\
             StrictModes no\nAllowUsers {user}\nSubsystem sftp internal-sftp\nLogLevel ERROR\n",
            host = path.join("host_ed25519").display(),
            keys = path.join("authorized_keys").display(),
        ),
    )
    .unwrap();
    let host_key = std::fs::read_to_string(path.join("host_ed25519.pub"))
        .unwrap()
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let peer = spawn_sshd(&config, port).await;
    Sshd {
        peer: Some(peer),
        port,
        user,
        root,
        client_key: path.join("client_ed25519"),
        host_key,
        config,
        _dir: dir,
    }
}
