//! Accounts: opening, deposits, withdrawals, external transactions from the core system,
//! freezing, unfreezing and closing.

use api_kit::{ApiError, AppJson};
use axum::body::Bytes;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use domain::account::{Account, AccountCommand, AccountType, Direction};
use domain::policy::Action;
use domain::{AccountId, Amount, ClientId, Currency, Money, TransactionId, ValidationErrors};
use event_store::Committed;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::clients::ReasonRequest;
use crate::context::CommandContext;
use crate::input::{optional_description, optional_json, path_id, MoneyInput};
use crate::owners;
use crate::reply::{CommandResult, MovementResult, Reply};
use crate::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OpenAccountRequest {
    pub account_type: AccountType,
    /// ISO 4217; fixed for the account's life.
    pub currency: String,
    pub initial_deposit: Option<MoneyInput>,
}

/// Open an account for a client.
#[utoipa::path(post, path = "/v1/clients/{id}/accounts", tag = "accounts", request_body = OpenAccountRequest,
    params(("id" = String, Path, description = "The client"), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = CommandResult), (status = 403), (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
pub(crate) async fn open(
    State(state): State<AppState>,
    context: CommandContext,
    Path(client_id): Path<String>,
    AppJson(request): AppJson<OpenAccountRequest>,
) -> Result<Reply<CommandResult>, ApiError> {
    let client_id: ClientId = path_id(&client_id, "client")?;
    let client = owners::client(&state.store, client_id).await?;
    context.caller.authorize(Action::OpenAccount {
        agent: client.agent_id,
    })?;
    let mut errors = ValidationErrors::new();
    let currency = errors.check("currency", Currency::parse(&request.currency));
    let initial_deposit = request
        .initial_deposit
        .as_ref()
        .and_then(|m| m.positive("initial_deposit", &mut errors))
        .map(Money::from);
    let currency = errors.finish(|| currency)?.unwrap_or_default();
    let id = context.new_id(AccountId::from_uuid);
    // A retry carries the same id (from its Idempotency-Key), so it gets the same number.
    let account_number = state.store.allocate_account_number(id).await?;
    let command = AccountCommand::Open {
        account_id: id,
        client_id,
        client: client.standing(),
        account_type: request.account_type,
        currency,
        initial_deposit,
        opening_transaction_id: context.new_id(TransactionId::from_uuid),
        account_number,
    };
    let committed = state
        .store
        .execute::<Account>(
            &id.to_string(),
            context.expected,
            &context.metadata,
            command,
        )
        .await?;
    Ok(Reply::created(
        format!("/v1/accounts/{id}"),
        committed.version,
        CommandResult {
            id: id.to_string(),
            version: committed.version,
        },
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MovementRequest {
    pub amount: MoneyInput,
    pub description: Option<String>,
}

fn movement_reply(
    id: AccountId,
    transaction_id: TransactionId,
    committed: Committed<Account>,
) -> Reply<MovementResult> {
    let recorded = !committed.events.is_empty();
    Reply::created(
        format!("/v1/accounts/{id}/transactions/{transaction_id}"),
        committed.version,
        MovementResult {
            id: id.to_string(),
            version: committed.version,
            balance: committed.aggregate.balance,
            transaction_id: transaction_id.to_string(),
            recorded,
        },
    )
}

async fn move_money(
    state: &AppState,
    context: CommandContext,
    id: &str,
    request: MovementRequest,
    command: fn(TransactionId, Amount, Option<String>) -> AccountCommand,
) -> Result<Reply<MovementResult>, ApiError> {
    let id: AccountId = path_id(id, "account")?;
    let (_, owner) = owners::account(&state.store, id).await?;
    context
        .caller
        .authorize(Action::MoveMoney { agent: owner })?;
    let mut errors = ValidationErrors::new();
    let amount = request.amount.positive("amount", &mut errors);
    let description =
        optional_description(request.description.as_deref(), "description", &mut errors);
    let amount = errors
        .finish(|| amount)?
        .ok_or_else(|| ApiError::validation("amount", "is required"))?;
    let transaction_id = context.new_id(TransactionId::from_uuid);
    let committed = state
        .store
        .execute::<Account>(
            &id.to_string(),
            context.expected,
            &context.metadata,
            command(transaction_id, amount, description),
        )
        .await?;
    Ok(movement_reply(id, transaction_id, committed))
}

/// Deposit money.
#[utoipa::path(post, path = "/v1/accounts/{id}/deposits", tag = "accounts", request_body = MovementRequest,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header), ("If-Match" = Option<String>, Header)),
    responses((status = 201, body = MovementResult), (status = 403), (status = 404), (status = 409, description = "Frozen or closed"),
        (status = 412), (status = 422, description = "Invalid amount or currency mismatch")),
    security(("bearer" = [])))]
pub(crate) async fn deposit(
    State(state): State<AppState>,
    context: CommandContext,
    Path(id): Path<String>,
    AppJson(request): AppJson<MovementRequest>,
) -> Result<Reply<MovementResult>, ApiError> {
    move_money(
        &state,
        context,
        &id,
        request,
        |transaction_id, amount, description| AccountCommand::Deposit {
            transaction_id,
            amount,
            description,
        },
    )
    .await
}

/// Withdraw money; never beyond the balance.
#[utoipa::path(post, path = "/v1/accounts/{id}/withdrawals", tag = "accounts", request_body = MovementRequest,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header), ("If-Match" = Option<String>, Header)),
    responses((status = 201, body = MovementResult), (status = 403), (status = 404),
        (status = 409, description = "Insufficient funds (type /problems/insufficient-funds), frozen or closed"),
        (status = 412), (status = 422)),
    security(("bearer" = [])))]
pub(crate) async fn withdraw(
    State(state): State<AppState>,
    context: CommandContext,
    Path(id): Path<String>,
    AppJson(request): AppJson<MovementRequest>,
) -> Result<Reply<MovementResult>, ApiError> {
    move_money(
        &state,
        context,
        &id,
        request,
        |transaction_id, amount, description| AccountCommand::Withdraw {
            transaction_id,
            amount,
            description,
        },
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExternalTransactionRequest {
    /// The core system's id; unique per account, a repeat changes nothing.
    pub external_id: String,
    pub direction: Direction,
    pub amount: MoneyInput,
    pub booked_at: DateTime<Utc>,
    pub description: Option<String>,
}

/// Record a transaction booked by the external core system (integration workers).
#[utoipa::path(post, path = "/v1/accounts/{id}/external-transactions", tag = "accounts", request_body = ExternalTransactionRequest,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = MovementResult, description = "Recorded, or already recorded (`recorded: false`)"),
        (status = 403), (status = 404), (status = 409), (status = 422)),
    security(("bearer" = [])))]
pub(crate) async fn record_external(
    State(state): State<AppState>,
    context: CommandContext,
    Path(id): Path<String>,
    AppJson(request): AppJson<ExternalTransactionRequest>,
) -> Result<Reply<MovementResult>, ApiError> {
    context
        .caller
        .authorize(Action::RecordExternalTransaction)?;
    let id: AccountId = path_id(&id, "account")?;
    owners::account(&state.store, id).await?;
    let mut errors = ValidationErrors::new();
    let amount = request.amount.positive("amount", &mut errors);
    let description =
        optional_description(request.description.as_deref(), "description", &mut errors);
    let amount = errors
        .finish(|| amount)?
        .ok_or_else(|| ApiError::validation("amount", "is required"))?;
    let transaction_id = context.new_id(TransactionId::from_uuid);
    let command = AccountCommand::RecordExternal {
        transaction_id,
        external_id: request.external_id,
        direction: request.direction,
        amount,
        booked_at: request.booked_at,
        description,
    };
    let committed = state
        .store
        .execute::<Account>(
            &id.to_string(),
            context.expected,
            &context.metadata,
            command,
        )
        .await?;
    Ok(movement_reply(id, transaction_id, committed))
}

async fn manage(
    state: &AppState,
    context: CommandContext,
    id: &str,
    command: AccountCommand,
) -> Result<Reply<CommandResult>, ApiError> {
    let id: AccountId = path_id(id, "account")?;
    let (_, owner) = owners::account(&state.store, id).await?;
    context
        .caller
        .authorize(Action::ManageAccount { agent: owner })?;
    let committed = state
        .store
        .execute::<Account>(
            &id.to_string(),
            context.expected,
            &context.metadata,
            command,
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

/// Freeze an account: no movement until unfrozen. The body (`{"reason": …}`) is optional.
#[utoipa::path(post, path = "/v1/accounts/{id}/freeze", tag = "accounts", request_body(content = Option<ReasonRequest>),
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = CommandResult), (status = 403), (status = 404), (status = 409), (status = 412)),
    security(("bearer" = [])))]
pub(crate) async fn freeze(
    State(state): State<AppState>,
    context: CommandContext,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Reply<CommandResult>, ApiError> {
    let reason = optional_json::<ReasonRequest>(&headers, &body)?.reason()?;
    manage(&state, context, &id, AccountCommand::Freeze { reason }).await
}

/// Unfreeze a frozen account.
#[utoipa::path(post, path = "/v1/accounts/{id}/unfreeze", tag = "accounts",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = CommandResult), (status = 403), (status = 404), (status = 409), (status = 412)),
    security(("bearer" = [])))]
pub(crate) async fn unfreeze(
    State(state): State<AppState>,
    context: CommandContext,
    Path(id): Path<String>,
) -> Result<Reply<CommandResult>, ApiError> {
    manage(&state, context, &id, AccountCommand::Unfreeze).await
}

/// Close an account; only at a zero balance.
#[utoipa::path(post, path = "/v1/accounts/{id}/close", tag = "accounts",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = CommandResult), (status = 403), (status = 404), (status = 409, description = "Balance not zero"), (status = 412)),
    security(("bearer" = [])))]
pub(crate) async fn close(
    State(state): State<AppState>,
    context: CommandContext,
    Path(id): Path<String>,
) -> Result<Reply<CommandResult>, ApiError> {
    manage(&state, context, &id, AccountCommand::Close).await
}
