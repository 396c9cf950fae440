//! Rebuilding the read models from the DynamoDB event store (`crm aws rebuild`): every
//! event is projected into a fresh database, with the same projector the Lambdas run.
//! The services are then pointed at the new database; the old one is left for the
//! operator to drop. The projector's per-stream sequence makes the scan's order
//! irrelevant, and running it twice into the same database applies nothing twice.

use std::sync::Arc;

use event_store::EventStore;
use projections::{Projector, ReadStore, SystemLog};

use crate::error::StackError;

/// What a rebuild did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rebuilt {
    pub events: u64,
    pub applied: u64,
}

/// Projects every event of `store` (a DynamoDB store, opening personal data with its
/// vault if it has one) into the database at `database_url`.
pub async fn rebuild(store: Arc<EventStore>, database_url: &str) -> Result<Rebuilt, StackError> {
    // The scan is DynamoDB's; gaps are filled through the store, as in the Lambdas.
    let event_store::Backend::Dynamo(dynamo) = store.backend() else {
        return Err(StackError::Setup(
            "a rebuild in AWS reads a DynamoDB store".into(),
        ));
    };
    let dynamo = dynamo.clone();
    let read = Arc::new(ReadStore::open(database_url).await?);
    let log = Arc::new(SystemLog::open(database_url).await?);
    let projector = Projector::new(store, read.clone(), log.clone());
    let mut rebuilt = Rebuilt::default();
    let mut cursor = None;
    loop {
        let (events, next) = dynamo.scan(cursor).await?;
        for event in &events {
            rebuilt.events += 1;
            rebuilt.applied += projector.deliver_one(event).await?.applied;
        }
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    read.close().await;
    log.close().await;
    Ok(rebuilt)
}
