//! The read side's part of the OpenAPI document (merged with the commands' in `crm`).

use utoipa::OpenApi;

use crate::{audit, clients, staff, system_log, verifications};

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
))]
pub struct QueryDoc;
