//! Clients, their accounts and transaction histories. Agents see their own clients only;
//! auditors see everyone's.

use api_kit::{ApiError, AppQuery, Caller};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use domain::policy::{Action, Role};
use domain::{AccountNumber, StaffId};
use projections::models::accounts::{self, AccountView, PayeeView};
use projections::models::clients::{self, ClientFilter, ClientSort, ClientView, CommunicationView};
use projections::models::transactions::{self, TransactionFilter, TransactionView};
use projections::page::Page;
use serde::Deserialize;

use crate::params::{detail, read_error, sort, time_bound, PageParams};
use crate::QueryState;

/// The agent a read-model row belongs to, as the policy wants it.
fn owner(agent_id: &str) -> StaffId {
    agent_id.parse().unwrap_or_default()
}

async fn client_for(state: &QueryState, caller: &Caller, id: &str) -> Result<ClientView, ApiError> {
    let client = clients::get(&state.read.pool(), id)
        .await
        .map_err(read_error)?;
    let client = client.ok_or_else(|| ApiError::NotFound(format!("no client with id {id}")))?;
    caller.authorize(Action::ReadClient {
        agent: owner(&client.agent_id),
    })?;
    Ok(client)
}

async fn account_for(
    state: &QueryState,
    caller: &Caller,
    id: &str,
    action: fn(StaffId) -> Action,
) -> Result<AccountView, ApiError> {
    let account = accounts::get(&state.read.pool(), id)
        .await
        .map_err(read_error)?;
    let account = account.ok_or_else(|| ApiError::NotFound(format!("no account with id {id}")))?;
    caller.authorize(action(owner(&account.agent_id)))?;
    Ok(account)
}

#[derive(Debug, Deserialize)]
pub(crate) struct ClientParams {
    /// Searches first name, last name and email.
    q: Option<String>,
    status: Option<String>,
    sort: Option<String>,
    #[serde(flatten)]
    page: PageParams,
}

/// Clients (newest first unless sorted otherwise), with the total; an agent sees their
/// own, an auditor everyone's.
#[utoipa::path(get, path = "/v1/clients", tag = "clients",
    params(("q" = Option<String>, Query, description = "Searches names and email, or finds the holder of an account number"), ("status" = Option<String>, Query),
        ("sort" = Option<String>, Query, description = "newest (default), oldest or name"), ("limit" = Option<i64>, Query, description = "1 to 200, default 50"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = Page<ClientView>), (status = 400, description = "Unknown sort, a cursor of another sort, or a search of every client (not an agent's own) shorter than 3 characters"), (status = 403)), security(("bearer" = [])))]
pub(crate) async fn list(
    State(state): State<QueryState>,
    caller: Caller,
    AppQuery(params): AppQuery<ClientParams>,
) -> Result<Json<Page<ClientView>>, ApiError> {
    caller.authorize(Action::ListClients)?;
    let sort = sort(
        params.sort.as_deref(),
        ClientSort::parse,
        "newest, oldest or name",
    )?;
    let mine = caller.role == Role::Agent;
    if !mine && !clients::searchable_among_all(params.q.as_deref().unwrap_or_default()) {
        return Err(ApiError::BadRequest {
            code: "invalid-query",
            detail: format!(
                "a search of every client needs at least {} characters, or an account number",
                clients::SHORTEST_SEARCH_OF_ALL
            ),
        });
    }
    let filter = ClientFilter {
        sort,
        agent: mine.then(|| caller.id.clone()),
        q: params.q,
        status: params.status,
        limit: params.page.limit(),
        cursor: params.page.cursor,
    };
    Ok(Json(
        clients::list(&state.read.pool(), filter)
            .await
            .map_err(read_error)?,
    ))
}

/// One client.
#[utoipa::path(get, path = "/v1/clients/{id}", tag = "clients", params(("id" = String, Path)),
    responses((status = 200, body = ClientView), (status = 403), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn get(
    State(state): State<QueryState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let client = client_for(&state, &caller, &id).await?;
    Ok(detail(client.version, client))
}

/// A client's accounts.
#[utoipa::path(get, path = "/v1/clients/{id}/accounts", tag = "accounts", params(("id" = String, Path), ("limit" = Option<i64>, Query, description = "1 to 200, default 50"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = Page<AccountView>), (status = 403), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn accounts(
    State(state): State<QueryState>,
    caller: Caller,
    Path(id): Path<String>,
    AppQuery(params): AppQuery<PageParams>,
) -> Result<Json<Page<AccountView>>, ApiError> {
    client_for(&state, &caller, &id).await?;
    let page = accounts::of_client(
        &state.read.pool(),
        &id,
        params.cursor.as_deref(),
        params.limit(),
    )
    .await
    .map_err(read_error)?;
    Ok(Json(page))
}

/// The mail sent to a client, newest first (whoever may read the client).
#[utoipa::path(get, path = "/v1/clients/{id}/communications", tag = "clients", params(("id" = String, Path), ("limit" = Option<i64>, Query, description = "1 to 200, default 50"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = Page<CommunicationView>), (status = 403), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn communications(
    State(state): State<QueryState>,
    caller: Caller,
    Path(id): Path<String>,
    AppQuery(params): AppQuery<PageParams>,
) -> Result<Json<Page<CommunicationView>>, ApiError> {
    client_for(&state, &caller, &id).await?;
    let page = clients::communications(
        &state.read.pool(),
        &id,
        params.cursor.as_deref(),
        params.limit(),
    )
    .await
    .map_err(read_error)?;
    Ok(Json(page))
}

/// One account with its balance.
#[utoipa::path(get, path = "/v1/accounts/{id}", tag = "accounts", params(("id" = String, Path)),
    responses((status = 200, body = AccountView), (status = 403), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn account(
    State(state): State<QueryState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let account = account_for(&state, &caller, &id, |agent| Action::ReadAccount { agent }).await?;
    Ok(detail(account.version, account))
}

#[derive(Debug, Deserialize)]
pub(crate) struct HistoryParams {
    from: Option<String>,
    to: Option<String>,
    sort: Option<String>,
    #[serde(flatten)]
    page: PageParams,
}

/// An account's transaction history, newest first unless sorted oldest first, with the total.
#[utoipa::path(get, path = "/v1/accounts/{id}/transactions", tag = "accounts",
    params(("id" = String, Path), ("from" = Option<String>, Query, description = "RFC 3339, inclusive"), ("to" = Option<String>, Query, description = "RFC 3339, exclusive"),
        ("sort" = Option<String>, Query, description = "newest (default) or oldest"), ("limit" = Option<i64>, Query, description = "1 to 200, default 50"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = Page<TransactionView>), (status = 400), (status = 403), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn transactions(
    State(state): State<QueryState>,
    caller: Caller,
    Path(id): Path<String>,
    AppQuery(params): AppQuery<HistoryParams>,
) -> Result<Json<Page<TransactionView>>, ApiError> {
    account_for(&state, &caller, &id, |agent| Action::ReadTransactions {
        agent,
    })
    .await?;
    let filter = TransactionFilter {
        account_id: id,
        from: time_bound(params.from.as_deref(), "from")?,
        to: time_bound(params.to.as_deref(), "to")?,
        oldest_first: sort(
            params.sort.as_deref(),
            |text| match text {
                "newest" => Some(false),
                "oldest" => Some(true),
                _ => None,
            },
            "newest or oldest",
        )?,
        limit: params.page.limit(),
        cursor: params.page.cursor,
    };
    Ok(Json(
        transactions::list(&state.read.pool(), filter)
            .await
            .map_err(read_error)?,
    ))
}

/// Whom a transfer to account `number` goes to (agents, before confirming a transfer).
/// Each lookup is in the system log, and a caller gets 30 in any 10 minutes: a payee's
/// name is for the payer about to pay, not for walking the account numbers.
#[utoipa::path(get, path = "/v1/payees/{number}", tag = "accounts",
    params(("number" = String, Path, description = "An account number, with or without spaces")),
    responses((status = 200, body = PayeeView), (status = 403), (status = 404),
        (status = 422, description = "Not an account number, or its check digits do not match"),
        (status = 429, description = "Too many lookups lately; the detail says when to try again")),
    security(("bearer" = [])))]
pub(crate) async fn payee(
    State(state): State<QueryState>,
    caller: Caller,
    Path(number): Path<String>,
) -> Result<Json<PayeeView>, ApiError> {
    caller.authorize(Action::LookUpPayee)?;
    if let Err(wait) = state
        .payee_limit
        .take(&caller.id, std::time::Instant::now())
    {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        record_lookup(
            &state,
            &caller,
            &number,
            "refused: too many lookups",
            "warn",
        )
        .await;
        return Err(ApiError::Refused {
            status: axum::http::StatusCode::TOO_MANY_REQUESTS,
            code: "too-many-lookups",
            detail: format!(
                "too many payee lookups in the last 10 minutes; try again in {minutes} min"
            ),
        });
    }
    let parsed = match number.parse::<AccountNumber>() {
        Ok(parsed) => parsed,
        Err(error) => {
            record_lookup(&state, &caller, &number, "not an account number", "info").await;
            return Err(ApiError::validation("number", error.to_string()));
        }
    };
    let found = accounts::payee(&state.read.pool(), parsed)
        .await
        .map_err(read_error)?;
    let outcome = if found.is_some() {
        "found"
    } else {
        "no such account"
    };
    record_lookup(&state, &caller, &parsed.compact(), outcome, "info").await;
    found
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no account with number {parsed}")))
}

/// "Payee looked up: LL70… (found)" in the system log, with who asked.
async fn record_lookup(
    state: &QueryState,
    caller: &Caller,
    number: &str,
    outcome: &str,
    level: &str,
) {
    let number: String = number
        .chars()
        .filter(|c| !c.is_control())
        .take(40)
        .collect();
    state
        .log
        .record_or_warn(
            projections::LogEntry::new(
                level,
                "payee-lookup",
                format!("Payee looked up: {number} ({outcome})"),
            )
            .actor(caller.id.clone(), Some(caller.role.as_str())),
        )
        .await;
}
