//! The keys the store's operators must not hold, as files kept outside the data
//! directory, so that whoever can rewrite or read the store (its files, a backup) does
//! not also hold them; created on first start if missing, readable by their owner only:
//!
//! - the digest signing key: Ed25519, PKCS#8 PEM, with its public half beside it for
//!   auditors;
//! - the master key clients' data keys are wrapped under (`event_store::personal`):
//!   32 random bytes, in hex.

use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::RngCore;

/// Why a key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the {what} {key} is inside the data directory {data}: keep it where the store's operators cannot read it")]
    InsideDataDir {
        what: &'static str,
        key: PathBuf,
        data: PathBuf,
    },
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0} is not a key of the expected kind: {1}")]
    Format(PathBuf, String),
}

/// Where the public half of the key at `path` is written: `….pub.pem`.
pub fn public_key_path(path: &Path) -> PathBuf {
    path.with_extension("pub.pem")
}

/// The key at `path`, created (with its public half) if there is none. Refuses a path
/// inside `data_dir`; warns when an existing key is readable by others.
pub fn load_or_create(path: &Path, data_dir: &Path) -> Result<SigningKey, KeyError> {
    refuse_inside(DIGEST_KEY, path, data_dir)?;
    match std::fs::read_to_string(path) {
        Ok(pem) => {
            warn_if_shared(DIGEST_KEY, path);
            let key = SigningKey::from_pkcs8_pem(&pem)
                .map_err(|e| KeyError::Format(path.to_path_buf(), e.to_string()))?;
            // The public half, if it went missing (it is only ever derived).
            let public = public_key_path(path);
            if !public.exists() {
                std::fs::write(&public, public_pem(&key.verifying_key()))
                    .map_err(|e| KeyError::Io(public, e))?;
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(e) => Err(KeyError::Io(path.to_path_buf(), e)),
    }
}

const DIGEST_KEY: &str = "digest signing key";
const MASTER_KEY: &str = "personal data master key";

/// The master key at `path` (64 hex digits), created if there is none. Refuses a path
/// inside `data_dir`; warns when an existing key is readable by others. Losing it
/// loses every client's personal data: it is backed up apart from the data.
pub fn load_or_create_master(path: &Path, data_dir: &Path) -> Result<[u8; 32], KeyError> {
    refuse_inside(MASTER_KEY, path, data_dir)?;
    let format = |why: &str| KeyError::Format(path.to_path_buf(), why.to_string());
    match std::fs::read_to_string(path) {
        Ok(text) => {
            warn_if_shared(MASTER_KEY, path);
            let bytes = hex::decode(text.trim()).map_err(|_| format("not hexadecimal"))?;
            bytes.try_into().map_err(|_| format("not 32 bytes"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut key);
            let dir = parent_of(path);
            let io = |e| KeyError::Io(path.to_path_buf(), e);
            std::fs::create_dir_all(dir).map_err(io)?;
            match write_private(dir, path, format!("{}\n", hex::encode(key)).as_bytes()) {
                Ok(()) => {
                    tracing::warn!(key = %path.display(), "created the personal data master key; back it up apart from the data: without it no client's personal data can be read");
                    Ok(key)
                }
                // Another process linked its key first: that one is the key.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    load_or_create_master(path, data_dir)
                }
                Err(e) => Err(io(e)),
            }
        }
        Err(e) => Err(KeyError::Io(path.to_path_buf(), e)),
    }
}

#[cfg(unix)]
fn warn_if_shared(what: &str, path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(key = %path.display(), "the {what} is readable by others than its owner: chmod 600 it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_what: &str, _path: &Path) {}

fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn create(path: &Path) -> Result<SigningKey, KeyError> {
    let io = |e| KeyError::Io(path.to_path_buf(), e);
    let dir = parent_of(path);
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::Format(path.to_path_buf(), e.to_string()))?;
    write_private(dir, path, pem.as_bytes()).map_err(io)?;
    let public = public_pem(&key.verifying_key());
    std::fs::write(public_key_path(path), public).map_err(io)?;
    tracing::warn!(key = %path.display(), "created a digest signing key; keep it, and give auditors its public half");
    Ok(key)
}

/// Written whole or not at all, owner-only, never over an existing key: a temporary
/// file, synced, then linked into place (which fails if a key appeared meanwhile), and
/// the directory synced. A crash leaves either no key or the whole key.
fn write_private(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let temporary = dir.join(format!(".key-{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = (|| {
        let mut file = options.open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::hard_link(&temporary, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    let _ = std::fs::remove_file(&temporary);
    written
}

/// A public key in PEM (SubjectPublicKeyInfo).
pub fn public_pem(key: &VerifyingKey) -> String {
    crate::PublicKey::from(*key).to_pem()
}

/// Reads a public key (Ed25519 or P-256) from a PEM file.
pub fn load_public(path: &Path) -> Result<crate::PublicKey, KeyError> {
    let pem = std::fs::read_to_string(path).map_err(|e| KeyError::Io(path.to_path_buf(), e))?;
    crate::PublicKey::from_pem(&pem).map_err(|e| KeyError::Format(path.to_path_buf(), e))
}

fn refuse_inside(what: &'static str, key: &Path, data_dir: &Path) -> Result<(), KeyError> {
    let (Some(key_abs), Some(data_abs)) = (resolved(key), resolved(data_dir)) else {
        return Ok(());
    };
    if key_abs.starts_with(&data_abs) {
        return Err(KeyError::InsideDataDir {
            what,
            key: key.to_path_buf(),
            data: data_dir.to_path_buf(),
        });
    }
    Ok(())
}

/// `path` absolute, with symbolic links resolved as far as it exists and `.` and `..`
/// taken away in what follows (so a part that does not exist yet cannot hide a `..`).
fn resolved(path: &Path) -> Option<std::path::PathBuf> {
    use std::path::Component;
    let absolute = std::path::absolute(path).ok()?;
    let (base, rest) = absolute.ancestors().find_map(|a| {
        let rest = absolute.strip_prefix(a).ok()?;
        a.canonicalize().ok().map(|c| (c, rest.to_path_buf()))
    })?;
    let mut out = base;
    for part in rest.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_once_then_read_back_and_its_public_half_matches() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let path = dir.path().join("keys/digest.pem");
        let made = load_or_create(&path, &data).unwrap();
        let again = load_or_create(&path, &data).unwrap();
        assert_eq!(made.to_bytes(), again.to_bytes());
        assert_eq!(
            load_public(&public_key_path(&path)).unwrap(),
            made.verifying_key().into()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_key_inside_the_data_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let inside = data.join("sub/../digest.pem");
        assert!(matches!(
            load_or_create(&inside, &data),
            Err(KeyError::InsideDataDir { .. })
        ));
        assert!(!data.join("digest.pem").exists());
        // A part that does not exist yet, then `..` back into the data directory.
        let around = dir.path().join("nowhere/../data/digest.pem");
        assert!(matches!(
            load_or_create(&around, &data),
            Err(KeyError::InsideDataDir { .. })
        ));
        // Beside it is fine.
        load_or_create(&dir.path().join("data-ledger/k.pem"), &data).unwrap();
    }

    #[test]
    fn the_master_key_is_made_once_owner_only_and_refused_inside_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let path = dir.path().join("data-ledger/master.key");
        let made = load_or_create_master(&path, &data).unwrap();
        assert_eq!(load_or_create_master(&path, &data).unwrap(), made);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            load_or_create_master(&data.join("master.key"), &data),
            Err(KeyError::InsideDataDir { .. })
        ));
        std::fs::write(&path, "not a key").unwrap();
        assert!(matches!(
            load_or_create_master(&path, &data),
            Err(KeyError::Format(..))
        ));
    }
}
