//! HTTP-level tests of the one-process product: each test spawns the real app on a
//! random loopback port over a fresh data directory and talks to it with an HTTP client.
// The futures of a whole request (extractors, store, snapshots, projector) nest deeper
// than the compiler's default layout depth.
#![recursion_limit = "256"]

mod account_numbers;
mod accounts;
mod audit;
mod auth;
mod clients;
mod contract;
mod erasure;
mod idempotency;
mod ledger;
mod mail;
mod oauth;
mod reads;
mod sftp;
mod staff;
mod support;
mod transfers;
mod validation;
