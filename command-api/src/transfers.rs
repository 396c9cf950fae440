//! Transfers between accounts over HTTP: the request records the transfer and waits
//! for the process manager (`transfer_manager`) to settle it; the view shows where it
//! stands.

use api_kit::{ApiError, AppJson, Caller};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::account::Account;
use domain::policy::Action;
use domain::transfer::{Transfer, TransferCommand, TransferStatus};
use domain::{AccountId, Money, TransferId, ValidationErrors};
use event_store::Expected;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::context::CommandContext;
use crate::input::{path_id, MoneyInput};
use crate::owners;
use crate::reply::Reply;
use crate::transfer_manager::Outcome;
use crate::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransferRequest {
    pub from_account_id: String,
    pub to_account_id: String,
    pub amount: MoneyInput,
    /// The payer's words for the payee (up to 140 characters), shown in both accounts'
    /// histories.
    pub reference: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TransferView {
    pub id: String,
    pub status: TransferStatus,
    pub from_account_id: String,
    pub to_account_id: String,
    pub amount: Option<Money>,
    /// Why a failed transfer failed (a problem code such as `insufficient-funds`).
    pub failure_reason: Option<String>,
    pub reference: Option<String>,
    pub version: u64,
}

fn view(id: TransferId, transfer: &Transfer, version: u64) -> TransferView {
    TransferView {
        id: id.to_string(),
        status: transfer.status,
        from_account_id: transfer.from_account.to_string(),
        to_account_id: transfer.to_account.to_string(),
        amount: transfer.amount,
        failure_reason: transfer.failure_reason.clone(),
        reference: transfer.reference.clone(),
        version,
    }
}

/// Move money between two accounts in the same currency.
#[utoipa::path(post, path = "/v1/transfers", tag = "transfers", request_body = TransferRequest,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = TransferView, description = "Completed"),
        (status = 202, body = TransferView, description = "Still under way after 10 s (the store is slow); it will complete or fail by itself: follow Location"),
        (status = 403),
        (status = 404, description = "Source account unknown"),
        (status = 409, description = "Refused (insufficient funds, frozen, closed); the failed transfer is recorded"),
        (status = 422, description = "Invalid fields or currency mismatch")),
    security(("bearer" = [])))]
pub(crate) async fn request(
    State(state): State<AppState>,
    context: CommandContext,
    AppJson(request): AppJson<TransferRequest>,
) -> Result<Reply<TransferView>, ApiError> {
    let mut errors = ValidationErrors::new();
    let from: Option<AccountId> = errors.check(
        "from_account_id",
        request.from_account_id.parse::<AccountId>(),
    );
    let to: Option<AccountId> =
        errors.check("to_account_id", request.to_account_id.parse::<AccountId>());
    let amount = request.amount.positive("amount", &mut errors);
    // 140 characters, as a SEPA remittance line, so it reaches the core system whole.
    let reference = request
        .reference
        .as_deref()
        .and_then(|text| errors.check("reference", domain::contact::bounded_text(text, 140)));
    if from.is_some() && from == to {
        errors.add("to_account_id", "must differ from from_account_id");
    }
    let (from, to, amount) = match (errors.finish(|| ())?, from, to, amount) {
        ((), Some(from), Some(to), Some(amount)) => (from, to, amount),
        _ => return Err(ApiError::validation("body", "incomplete transfer")),
    };
    let (source, owner) = owners::account(&state.store, from).await?;
    context
        .caller
        .authorize(Action::MoveMoney { agent: owner })?;
    let destination = state.store.load::<Account>(&to.to_string()).await?;
    if !destination.exists() {
        return Err(ApiError::validation("to_account_id", "no such account"));
    }
    for (field, currency) in [
        ("from_account_id", source.currency()),
        ("to_account_id", destination.aggregate.currency()),
    ] {
        if currency != amount.currency() {
            return Err(ApiError::Refused {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "currency-mismatch",
                detail: format!(
                    "{field} holds {currency}, the amount is in {}",
                    amount.currency()
                ),
            });
        }
    }
    let id = context.new_id(TransferId::from_uuid);
    state
        .store
        .execute::<Transfer>(
            &id.to_string(),
            Expected::Any,
            &context.metadata,
            TransferCommand::Request {
                transfer_id: id,
                from_account: from,
                to_account: to,
                amount,
                reference,
            },
        )
        .await?;
    let location = format!("/v1/transfers/{id}");
    let patience = state.transfers.request_patience();
    match state.transfers.settle(id, patience).await {
        Some(Outcome::Settled(transfer, version)) => match transfer.status {
            TransferStatus::Completed => Ok(Reply::created(
                location,
                version,
                view(id, &transfer, version),
            )),
            _ => {
                let code = failure_code(transfer.failure_reason.as_deref());
                Err(ApiError::Refused {
                    status: StatusCode::CONFLICT,
                    code,
                    detail: format!("transfer {id} failed: {code}; no money moved"),
                })
            }
        },
        // Still under way (the store is slow or failing): the manager finishes it.
        Some(Outcome::Stalled(_)) | None => {
            let loaded = state.store.load::<Transfer>(&id.to_string()).await?;
            Ok(Reply::accepted(
                location,
                loaded.version,
                view(id, &loaded.aggregate, loaded.version),
            ))
        }
    }
}

/// The stable problem code for a recorded failure reason.
fn failure_code(reason: Option<&str>) -> &'static str {
    const KNOWN: [&str; 6] = [
        "insufficient-funds",
        "account-frozen",
        "account-closed",
        "currency-mismatch",
        "balance-limit",
        "account-not-found",
    ];
    reason
        .and_then(|r| KNOWN.iter().find(|known| **known == r).copied())
        .unwrap_or("transfer-failed")
}

/// A transfer and where it stands.
#[utoipa::path(get, path = "/v1/transfers/{id}", tag = "transfers", params(("id" = String, Path)),
    responses((status = 200, body = TransferView), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Reply<TransferView>, ApiError> {
    let id: TransferId = path_id(&id, "transfer")?;
    let loaded = state.store.load::<Transfer>(&id.to_string()).await?;
    if !loaded.exists() {
        return Err(ApiError::NotFound(format!("no transfer with id {id}")));
    }
    let (_, owner) = owners::account(&state.store, loaded.aggregate.from_account).await?;
    caller.authorize(Action::ReadAccount { agent: owner })?;
    Ok(Reply::ok(
        loaded.version,
        view(id, &loaded.aggregate, loaded.version),
    ))
}
