//! Where digests are published ([`DigestLog`]), and the embedded product's: the digest
//! file, one signed digest per line (JSON), only ever appended to, each line on disk
//! before the digest is reported issued. Auditors copy it; the chain of `previous`
//! hashes makes a line taken out of it show. (In AWS: an S3 bucket with Object Lock,
//! in `aws-stack`.)

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use crate::digest::Digest;

/// Why the digests could not be read or published.
#[derive(Debug, thiserror::Error)]
pub enum DigestLogError {
    #[error("the digest file {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("the digest file {0}, line {1}: {2}")]
    Line(PathBuf, usize, String),
    /// Another issuer published a digest of this sequence first.
    #[error("digest {0} was published by another issuer first")]
    Taken(u64),
    #[error("the published digests: {0}")]
    Unavailable(String),
}

/// Where digests are published, only ever appended to, in sequence order.
#[async_trait::async_trait]
pub trait DigestLog: Send + Sync {
    /// Publishes `digest` after the last one; [`DigestLogError::Taken`] if a digest of
    /// its sequence is there already.
    async fn append(&self, digest: &Digest) -> Result<(), DigestLogError>;

    /// Every digest published, in order.
    async fn read(&self) -> Result<Vec<Digest>, DigestLogError>;

    /// The last digest published, if any.
    async fn last(&self) -> Result<Option<Digest>, DigestLogError>;
}

/// An append-only file of digests.
#[derive(Debug, Clone)]
pub struct DigestFile {
    path: PathBuf,
}

impl DigestFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DigestFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait::async_trait]
impl DigestLog for DigestFile {
    /// Appends `digest` as one line and syncs it to disk. (One process appends: the
    /// notary's lock puts its digests one after another.)
    async fn append(&self, digest: &Digest) -> Result<(), DigestLogError> {
        let io = |e| DigestLogError::Io(self.path.clone(), e);
        let mut line = serde_json::to_vec(digest).expect("a digest serializes");
        line.push(b'\n');
        let mut file = tokio::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)
            .await
            .map_err(io)?;
        drop_torn_line(&mut file).await.map_err(io)?;
        file.write_all(&line).await.map_err(io)?;
        file.sync_data().await.map_err(io)
    }

    /// Every digest in the file, in order (none if there is no file). A last line cut
    /// short by a crash mid-append (no newline) was never reported issued, and is left
    /// out; any other line that does not parse is an error.
    async fn read(&self) -> Result<Vec<Digest>, DigestLogError> {
        let text = match tokio::fs::read_to_string(&self.path).await {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(DigestLogError::Io(self.path.clone(), e)),
        };
        parse(&self.path, &text)
    }

    async fn last(&self) -> Result<Option<Digest>, DigestLogError> {
        Ok(self.read().await?.pop())
    }
}

/// Cuts off a last line a crash left without its newline (never reported issued), so
/// the next digest starts a line of its own.
async fn drop_torn_line(file: &mut tokio::fs::File) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let len = file.metadata().await?.len();
    if len == 0 {
        return Ok(());
    }
    // A line is well under this; a tail longer than it holds no complete line anyway.
    let from = len.saturating_sub(64 * 1024);
    file.seek(std::io::SeekFrom::Start(from)).await?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).await?;
    if tail.last() == Some(&b'\n') {
        return Ok(());
    }
    let keep = tail
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(from, |at| from + at as u64 + 1);
    file.set_len(keep).await
}

/// The digests of a digest file's text.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Digest>, DigestLogError> {
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .split('\n')
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line)
                .map_err(|e| DigestLogError::Line(path.to_path_buf(), n + 1, e.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::DigestSigner;

    #[tokio::test]
    async fn digests_are_read_back_in_order_and_a_torn_last_line_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let file = DigestFile::new(dir.path().join("digests.jsonl"));
        assert!(file.read().await.unwrap().is_empty());
        let signer = DigestSigner::new(ed25519_dalek::SigningKey::from_bytes(&[3; 32]));
        let first = signer.sign(1, &[1; 32], "2026-12-07T10:00:00.000Z", None);
        let second = signer.sign(2, &[2; 32], "2026-12-07T10:01:00.000Z", Some(&first));
        file.append(&first).await.unwrap();
        file.append(&second).await.unwrap();
        assert_eq!(
            file.read().await.unwrap(),
            vec![first.clone(), second.clone()]
        );
        // A crash in the middle of a third append.
        let mut text = std::fs::read_to_string(file.path()).unwrap();
        text.push_str("{\"format\":\"ledgerline-dig");
        std::fs::write(file.path(), &text).unwrap();
        assert_eq!(file.last().await.unwrap(), Some(second.clone()));
        // The next append starts a line of its own.
        let third = signer.sign(3, &[3; 32], "2026-12-07T10:02:00.000Z", Some(&second));
        file.append(&third).await.unwrap();
        assert_eq!(file.read().await.unwrap(), vec![first, second, third]);
        let text = std::fs::read_to_string(file.path()).unwrap();
        // A damaged line in the middle is an error, not skipped.
        std::fs::write(file.path(), format!("garbage\n{}", text)).unwrap();
        assert!(matches!(
            file.read().await,
            Err(DigestLogError::Line(_, 1, _))
        ));
    }
}
