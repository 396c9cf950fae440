//! The read side's part of the OpenAPI document (merged with the commands' in `crm`).

use utoipa::OpenApi;

use crate::{audit, clients, ledger, staff, system_log, verifications};

#[derive(OpenApi)]
#[openapi(paths(
    staff::list,
    staff::get,
    clients::list,
    clients::get,
    clients::accounts,
    clients::communications,
    clients::account,
    clients::transactions,
    clients::payee,
    system_log::list,
    system_log::rebuild,
    audit::events,
    audit::state,
    audit::verify,
    audit::log,
    verifications::start,
    verifications::get,
    verifications::list,
    ledger::latest,
    ledger::list,
    ledger::issue,
    ledger::keys,
    ledger::inclusion,
    ledger::consistency,
    ledger::verify,
))]
pub struct QueryDoc;
