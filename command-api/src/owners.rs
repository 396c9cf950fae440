//! Loading the aggregates a command targets, and the agent they belong to, which the
//! authorization policy needs.

use api_kit::ApiError;
use domain::account::Account;
use domain::client::Client;
use domain::{AccountId, ClientId, StaffId};
use event_store::EventStore;

pub(crate) async fn client(store: &EventStore, id: ClientId) -> Result<Client, ApiError> {
    let loaded = store.load::<Client>(&id.to_string()).await?;
    if !loaded.exists() {
        return Err(ApiError::NotFound(format!("no client with id {id}")));
    }
    Ok(loaded.aggregate)
}

/// The account and the agent its client is assigned to.
pub(crate) async fn account(
    store: &EventStore,
    id: AccountId,
) -> Result<(Account, StaffId), ApiError> {
    let loaded = store.load::<Account>(&id.to_string()).await?;
    if !loaded.exists() {
        return Err(ApiError::NotFound(format!("no account with id {id}")));
    }
    let owner = client(store, loaded.aggregate.client_id).await?.agent_id;
    Ok((loaded.aggregate, owner))
}
