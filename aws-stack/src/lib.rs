//! The AWS topology of DESIGN.md §1 in code: one definition of every resource
//! ([`Topology`]), creating it ([`init()`], `crm aws init`), running the Lambda handlers
//! from their event sources where Lambda is not ([`mapping`]), the whole topology on one
//! machine ([`LocalStack`], `crm aws local`, behind its [`front_door`]), rebuilding the Aurora read models from
//! DynamoDB ([`rebuild()`]) and redriving the dead-letter queue ([`redrive()`]).

pub mod audit_export;
pub mod clients;
pub mod error;
pub mod front_door;
pub mod init;
pub mod local;
pub mod mapping;
pub mod rebuild;
pub mod redrive;
pub mod routes;
pub mod topology;

pub use audit_export::{export_for_audit, Exported};
pub use clients::AwsClients;
pub use error::StackError;
pub use init::{ensure_root, ensure_root_deployed, init, Stack};
pub use local::{LocalOptions, LocalStack};
pub use rebuild::{rebuild, Rebuilt};
pub use redrive::redrive;
pub use topology::{Topology, TopologyDocument, AGGREGATES};
