//! One module per read model: how events change it, and the queries over it.

pub mod accounts;
pub mod audit_log;
pub(crate) mod client_search;
pub mod clients;
pub mod staff;
pub mod transactions;

/// `%text%` for LIKE, with the wildcards in `text` escaped (use `ESCAPE '\'`).
pub(crate) fn like_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}
