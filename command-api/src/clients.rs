//! Onboarding clients and keeping their contact details; an agent works only on the
//! clients assigned to them.

use api_kit::{ApiError, AppJson};
use axum::body::Bytes;
use axum::extract::{Path, State};
use chrono::Utc;
use domain::client::{Client, ClientCommand, ClientError, ContactChange};
use domain::contact::{bounded_text, Address, Email, PersonalDetails, Phone};
use domain::policy::{Action, Role};
use domain::{ClientId, StaffId, ValidationErrors};
use event_store::ExecuteError;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::context::CommandContext;
use crate::input::{optional_json, path_id};
use crate::owners;
use crate::reply::{CommandResult, Reply};
use crate::AppState;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddressInput {
    pub line1: String,
    pub city: String,
    #[serde(default)]
    pub state: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub postal_code: String,
}

impl AddressInput {
    fn builder(&self) -> domain::contact::AddressBuilder {
        Address::builder()
            .line1(&self.line1)
            .city(&self.city)
            .state(&self.state)
            .country(&self.country)
            .postal_code(&self.postal_code)
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OnboardClientRequest {
    pub first_name: String,
    pub last_name: String,
    /// `YYYY-MM-DD`.
    pub date_of_birth: String,
    /// `female`, `male`, `other` or `unspecified`.
    pub gender: String,
    pub email: String,
    pub phone: String,
    pub address: AddressInput,
    /// Defaults to the calling agent; an agent may only name themselves.
    pub agent_id: Option<String>,
}

/// Onboard a client.
#[utoipa::path(post, path = "/v1/clients", tag = "clients", request_body = OnboardClientRequest,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = CommandResult), (status = 403), (status = 422, description = "Invalid fields, each named")),
    security(("bearer" = [])))]
pub(crate) async fn onboard(
    State(state): State<AppState>,
    context: CommandContext,
    AppJson(request): AppJson<OnboardClientRequest>,
) -> Result<Reply<CommandResult>, ApiError> {
    if context.caller.role != Role::Agent {
        return Err(ApiError::Forbidden("only agents onboard clients".into()));
    }
    let agent: StaffId = match &request.agent_id {
        Some(id) => id
            .parse()
            .map_err(|_| ApiError::validation("agent_id", "is not a staff id"))?,
        None => context
            .caller
            .id
            .parse()
            .map_err(|_| ApiError::Forbidden("the caller is not a member of staff".into()))?,
    };
    context.caller.authorize(Action::OnboardClient { agent })?;
    let details = PersonalDetails::builder()
        .first_name(&request.first_name)
        .last_name(&request.last_name)
        .date_of_birth(&request.date_of_birth)
        .gender(&request.gender)
        .email(&request.email)
        .phone(&request.phone)
        .address(request.address.builder())
        .build(Utc::now().date_naive())?;
    let id = context.new_id(ClientId::from_uuid);
    let committed = state
        .store
        .execute::<Client>(
            &id.to_string(),
            context.expected,
            &context.metadata,
            ClientCommand::Onboard {
                client_id: id,
                agent_id: agent,
                details,
            },
        )
        .await?;
    Ok(Reply::created(
        format!("/v1/clients/{id}"),
        committed.version,
        CommandResult {
            id: id.to_string(),
            version: committed.version,
        },
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateContactRequest {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<AddressInput>,
}

/// Update a client's contact details (only the fields given).
#[utoipa::path(patch, path = "/v1/clients/{id}", tag = "clients", request_body = UpdateContactRequest,
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = CommandResult), (status = 403), (status = 404), (status = 409), (status = 412), (status = 422)),
    security(("bearer" = [])))]
pub(crate) async fn update_contact(
    State(state): State<AppState>,
    context: CommandContext,
    Path(id): Path<String>,
    AppJson(request): AppJson<UpdateContactRequest>,
) -> Result<Reply<CommandResult>, ApiError> {
    let id: ClientId = path_id(&id, "client")?;
    let client = owners::client(&state.store, id).await?;
    context.caller.authorize(Action::UpdateClient {
        agent: client.agent_id,
    })?;
    let mut errors = ValidationErrors::new();
    let change = ContactChange {
        email: request
            .email
            .as_deref()
            .and_then(|e| errors.check("email", Email::parse(e))),
        phone: request
            .phone
            .as_deref()
            .and_then(|p| errors.check("phone", Phone::parse(p))),
        address: request
            .address
            .as_ref()
            .and_then(|a| match a.builder().build() {
                Ok(address) => Some(address),
                Err(nested) => {
                    errors.nest("address", nested);
                    None
                }
            }),
    };
    let change = errors.finish(|| change)?;
    let committed = state
        .store
        .execute::<Client>(
            &id.to_string(),
            context.expected,
            &context.metadata,
            ClientCommand::UpdateContact(change),
        )
        .await?;
    Ok(Reply::ok(
        committed.version,
        CommandResult {
            id: id.to_string(),
            version: committed.version,
        },
    ))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReasonRequest {
    pub reason: Option<String>,
}

impl ReasonRequest {
    pub(crate) fn reason(&self) -> Result<Option<String>, ApiError> {
        self.reason
            .as_deref()
            .map(|r| {
                bounded_text(r, 500).map_err(|e| ApiError::validation("reason", e.to_string()))
            })
            .transpose()
    }
}

/// Deactivate a client. The body (`{"reason": …}`) is optional.
#[utoipa::path(post, path = "/v1/clients/{id}/deactivate", tag = "clients", request_body(content = Option<ReasonRequest>),
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = CommandResult), (status = 403), (status = 404), (status = 409), (status = 412)),
    security(("bearer" = [])))]
pub(crate) async fn deactivate(
    State(state): State<AppState>,
    context: CommandContext,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Reply<CommandResult>, ApiError> {
    let id: ClientId = path_id(&id, "client")?;
    let client = owners::client(&state.store, id).await?;
    context.caller.authorize(Action::UpdateClient {
        agent: client.agent_id,
    })?;
    let reason = optional_json::<ReasonRequest>(&headers, &body)?.reason()?;
    let committed = state
        .store
        .execute::<Client>(
            &id.to_string(),
            context.expected,
            &context.metadata,
            ClientCommand::Deactivate { reason },
        )
        .await?;
    Ok(Reply::ok(
        committed.version,
        CommandResult {
            id: id.to_string(),
            version: committed.version,
        },
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EraseRequest {
    /// Why: the request under the right to be forgotten, its reference. Kept in the
    /// `ClientErased` event, so it must not itself hold the client's personal data.
    pub reason: String,
}

/// Erase a deactivated client's personal data for good (crypto-shredding): the key it
/// was encrypted under in the events is destroyed, `ClientErased` is recorded, and from
/// then on every read model, export and replay shows the client as erased. The events
/// and every hash over them stay as they were. Admins and the root admin, for any
/// agent's client.
#[utoipa::path(post, path = "/v1/clients/{id}/erase", tag = "clients", request_body = EraseRequest,
    params(("id" = String, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = CommandResult), (status = 403), (status = 404),
        (status = 409, description = "The client is still active (deactivate first) or already erased"),
        (status = 412), (status = 422, description = "No reason given, or one too long")),
    security(("bearer" = [])))]
pub(crate) async fn erase(
    State(state): State<AppState>,
    context: CommandContext,
    Path(id): Path<String>,
    AppJson(request): AppJson<EraseRequest>,
) -> Result<Reply<CommandResult>, ApiError> {
    let id: ClientId = path_id(&id, "client")?;
    context.caller.authorize(Action::EraseClient)?;
    let reason = bounded_text(&request.reason, 500)
        .map_err(|e| ApiError::validation("reason", e.to_string()))?;
    let erased = state
        .store
        .execute::<Client>(
            &id.to_string(),
            context.expected,
            &context.metadata,
            ClientCommand::Erase { reason },
        )
        .await;
    // The erasure is recorded; the key follows. Should that fail, or the process stop
    // first, the store's sweep destroys it (`Vault::shred_erased`, at start and every
    // minute); an erasure asked again destroys it at once.
    let shred = || async {
        if let Err(error) = state.store.shred(&id.to_string()).await {
            tracing::error!(client = %id, %error, "the erased client's data key is not destroyed yet; the sweep will");
        }
    };
    let committed = match erased {
        Ok(committed) => committed,
        Err(refused @ ExecuteError::Refused(ClientError::Erased)) => {
            shred().await;
            return Err(refused.into());
        }
        Err(other) => return Err(other.into()),
    };
    shred().await;
    Ok(Reply::ok(
        committed.version,
        CommandResult {
            id: id.to_string(),
            version: committed.version,
        },
    ))
}
