//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{accounts, clients, input, reply, staff, transfers};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Ledgerline CRM API", version = "1", description = "Commands for staff, clients, accounts and transfers. Errors are RFC 9457 problem+json."),
    paths(
        staff::create, staff::disable, staff::enable, staff::unlock, staff::delete, staff::change, staff::reset_password,
        clients::onboard, clients::update_contact, clients::deactivate, clients::erase,
        accounts::open, accounts::deposit, accounts::withdraw, accounts::record_external,
        accounts::freeze, accounts::unfreeze, accounts::close,
        transfers::request, transfers::get,
    ),
    components(schemas(reply::CommandResult, reply::MovementResult, input::MoneyInput, domain::Money)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;
