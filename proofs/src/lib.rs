//! What lets an outside auditor check the ledger without trusting its operators: signed
//! digests of the global Merkle log ([`digest`]), the key that signs them ([`keys`]), the
//! append-only file they are published to ([`digest_file`]), the task that issues them
//! ([`notary`]), the check of a ledger against them ([`ledger_check`]) and the export an
//! auditor verifies offline ([`export`]). docs/audit.md explains the guarantee and its
//! limits.

pub mod digest;
pub mod digest_file;
pub mod export;
pub mod keys;
pub mod ledger_check;
pub mod notary;

pub use digest::{Digest, DigestError, DigestSigner, PublicKeys};
pub use digest_file::{DigestFile, DigestFileError};
pub use ledger_check::{LedgerCheck, Problem, Report};
pub use notary::{Notary, NotaryError};
