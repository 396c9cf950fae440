//! What lets an outside auditor check the ledger without trusting its operators: signed
//! digests of the global Merkle log ([`digest`]), the keys that sign and verify them
//! ([`keys`], [`public_key`]), where they are published ([`digest_file`]), the task that issues them
//! ([`notary`]), the check of a ledger against them ([`ledger_check`]) and the export an
//! auditor verifies offline ([`export`]). docs/audit.md explains the guarantee and its
//! limits.

#[cfg(feature = "aws")]
pub mod aws;
pub mod digest;
pub mod digest_file;
pub mod export;
pub mod keys;
pub mod ledger_check;
pub mod notary;
pub mod public_key;

pub use digest::{Digest, DigestError, DigestSigner, PublicKeys, SignError, Signer};
pub use digest_file::{DigestFile, DigestLog, DigestLogError};
pub use ledger_check::{LedgerCheck, Problem, Report};
pub use notary::{Notary, NotaryError};
pub use public_key::PublicKey;
