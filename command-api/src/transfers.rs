//! Transfers between accounts: the request, and the process manager that drives the
//! Transfer saga (debit the source, credit the destination, or reverse the debit when
//! the destination refuses). Every step is idempotent per transfer id, so running the
//! saga again from any point — after a crash, say — never moves money twice.

use api_kit::{ApiError, AppJson, Caller};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::account::{Account, AccountCommand};
use domain::metadata::CommandMetadata;
use domain::policy::{Action, Role};
use domain::transfer::{Transfer, TransferCommand, TransferStatus, TransferStep};
use domain::{AccountId, Money, Refusal, TransactionId, TransferId, ValidationErrors};
use event_store::{EventStore, ExecuteError, Expected};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::context::CommandContext;
use crate::input::{path_id, MoneyInput};
use crate::owners;
use crate::reply::Reply;
use crate::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransferRequest {
    pub from_account_id: String,
    pub to_account_id: String,
    pub amount: MoneyInput,
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
        version,
    }
}

/// Move money between two accounts in the same currency.
#[utoipa::path(post, path = "/v1/transfers", tag = "transfers", request_body = TransferRequest,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = TransferView, description = "Completed"), (status = 403),
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
        if currency != amount.currency {
            return Err(ApiError::Refused {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "currency-mismatch",
                detail: format!(
                    "{field} holds {currency}, the amount is in {}",
                    amount.currency
                ),
            });
        }
    }
    let id = TransferId::new();
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
            },
        )
        .await?;
    let (transfer, version) = run(&state.store, id, &context.metadata).await?;
    match transfer.status {
        TransferStatus::Completed => Ok(Reply::created(
            format!("/v1/transfers/{id}"),
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

/// Drives transfer `id` to completion or failure from wherever it stands.
pub(crate) async fn run(
    store: &EventStore,
    id: TransferId,
    metadata: &CommandMetadata,
) -> Result<(Transfer, u64), ApiError> {
    let key = id.to_string();
    let mut credit_refusal: Option<&'static str> = None;
    loop {
        let loaded = store.load::<Transfer>(&key).await?;
        let transfer = loaded.aggregate;
        let amount = transfer
            .amount
            .ok_or_else(|| ApiError::NotFound(format!("no transfer with id {id}")))?;
        let step = |command| store.execute::<Transfer>(&key, Expected::Any, metadata, command);
        match transfer.next_step(credit_refusal.is_some()) {
            TransferStep::Done => return Ok((transfer, loaded.version)),
            TransferStep::DebitSource => {
                let debit = AccountCommand::DebitForTransfer {
                    transaction_id: TransactionId::new(),
                    transfer_id: id,
                    to_account: transfer.to_account,
                    amount,
                };
                match store
                    .execute::<Account>(
                        &transfer.from_account.to_string(),
                        Expected::Any,
                        metadata,
                        debit,
                    )
                    .await
                {
                    Ok(_) => step(TransferCommand::MarkDebited).await.map(drop)?,
                    Err(ExecuteError::Refused(refusal)) => step(TransferCommand::Fail {
                        reason: refusal.code().into(),
                        compensated: false,
                    })
                    .await
                    .map(drop)?,
                    Err(error) => return Err(error.into()),
                }
            }
            TransferStep::CreditDestination => {
                let credit = AccountCommand::CreditFromTransfer {
                    transaction_id: TransactionId::new(),
                    transfer_id: id,
                    from_account: transfer.from_account,
                    amount,
                };
                match store
                    .execute::<Account>(
                        &transfer.to_account.to_string(),
                        Expected::Any,
                        metadata,
                        credit,
                    )
                    .await
                {
                    Ok(_) => step(TransferCommand::Complete).await.map(drop)?,
                    Err(ExecuteError::Refused(refusal)) => credit_refusal = Some(refusal.code()),
                    Err(error) => return Err(error.into()),
                }
            }
            TransferStep::Compensate => {
                let reverse = AccountCommand::ReverseTransferDebit {
                    transaction_id: TransactionId::new(),
                    transfer_id: id,
                };
                store
                    .execute::<Account>(
                        &transfer.from_account.to_string(),
                        Expected::Any,
                        metadata,
                        reverse,
                    )
                    .await?;
                let reason = credit_refusal.unwrap_or("transfer-failed").to_string();
                step(TransferCommand::Fail {
                    reason,
                    compensated: true,
                })
                .await
                .map(drop)?;
            }
        }
    }
}

/// Resumes every transfer left unfinished (by a crash or an outage); returns how many.
pub async fn resume_pending_transfers(store: &EventStore) -> Result<usize, ApiError> {
    let pending = store
        .open_streams("transfer", &["TransferCompleted", "TransferFailed"])
        .await?;
    for id in &pending {
        let id: TransferId = path_id(id, "transfer")?;
        let metadata = CommandMetadata {
            actor_id: "system".into(),
            actor_role: Role::Worker,
            correlation_id: id.to_string(),
            causation_id: format!("recovery-{}", uuid::Uuid::now_v7()),
            idempotency_key: None,
            occurred_at: chrono::Utc::now(),
        };
        let (transfer, _) = run(store, id, &metadata).await?;
        tracing::info!(transfer = %id, status = ?transfer.status, "resumed an unfinished transfer");
    }
    Ok(pending.len())
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
