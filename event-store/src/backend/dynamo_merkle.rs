//! The global Merkle log on DynamoDB, in the ledger table. DynamoDB has no commit order
//! across streams, so the log gives events their places as they reach it: the relay
//! hands it each Streams batch's new events in order (one stream's items live in one
//! shard, whose records come in order, so a stream's events are placed in sequence
//! order). Whoever appends reads the log's size and frontier and writes, in one
//! transaction, the places of a few dozen events, the nodes they complete and the new
//! size, on condition that the size is still the one read and that none of those events
//! has a place yet. So concurrent relays (one per shard) go one after another, and an
//! event delivered twice (a retried batch) is logged once.
//!
//! Items, by their partition key `Key`:
//! - `size`: `Size`, how many events the log holds;
//! - `node#<index>`: `Hash`, a perfect subtree's hash (numbered as [`domain::merkle`]);
//! - `leaf#<leaf>`: `AggregateType`, `AggregateId`, `Sequence`: the event at that place;
//! - `event#<type>:<id>#<sequence>`: `Leaf`, that event's place.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};
use cqrs_es::persist::SerializedEvent;
use domain::chain::RawEvent;
use domain::merkle::{Frontier, Hash};

use super::dynamo::{raw_event, DynamoStore};
use crate::capabilities::MerkleStorage;
use crate::error::StoreError;
use crate::merkle::leaf_hashes;

/// DynamoDB's limit on the items of one transaction.
const TRANSACTION_ITEMS: usize = 100;
/// DynamoDB's limit on the keys of one BatchGetItem.
const BATCH_KEYS: usize = 100;
/// Transactions lost to another appender before giving up (the relay's batch is then
/// retried whole by Lambda).
const ATTEMPTS: u32 = 30;

type Item = HashMap<String, AttributeValue>;

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// An SDK error with what the service said (its code and message).
fn refused<E: std::error::Error>(error: E) -> StoreError {
    StoreError::Unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string())
}

fn keyed(key: String) -> Item {
    HashMap::from([("Key".to_string(), AttributeValue::S(key))])
}

fn node_key(index: u64) -> String {
    format!("node#{index}")
}

fn leaf_key(leaf: u64) -> String {
    format!("leaf#{leaf}")
}

fn event_key(aggregate_type: &str, id: &str, sequence: u64) -> String {
    format!("event#{aggregate_type}:{id}#{sequence}")
}

fn number(item: &Item, name: &str) -> Result<u64, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("ledger item: attribute {name} missing")))
}

fn string<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt(format!("ledger item: attribute {name} missing")))
}

fn put(table: &str, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
    let mut put = Put::builder().table_name(table).set_item(Some(item));
    if let Some(condition) = condition {
        put = put
            .condition_expression(condition)
            .expression_attribute_names("#key", "Key");
    }
    Ok(TransactWriteItem::builder()
        .put(put.build().map_err(unavailable)?)
        .build())
}

/// What one transaction writes: the items, and how many of the pending events it logs.
struct Step {
    writes: Vec<TransactWriteItem>,
    taken: usize,
}

impl DynamoStore {
    /// Reads `keys` from `table` (strongly consistent), whatever DynamoDB leaves
    /// unprocessed at first; in no particular order.
    async fn batch_get(&self, table: &str, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        for chunk in keys.chunks(BATCH_KEYS) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .build()
                    .map_err(unavailable)?,
            );
            let mut round = 0u32;
            while let Some(request) = pending.take() {
                if round > 0 {
                    tokio::time::sleep(Duration::from_millis(20 << round.min(5))).await;
                }
                round += 1;
                let output = self
                    .client()
                    .batch_get_item()
                    .request_items(table, request)
                    .send()
                    .await
                    .map_err(refused)?;
                if let Some(items) = output.responses().and_then(|r| r.get(table)) {
                    found.extend(items.iter().cloned());
                }
                pending = output
                    .unprocessed_keys()
                    .and_then(|u| u.get(table))
                    .filter(|k| !k.keys().is_empty())
                    .cloned();
            }
        }
        Ok(found)
    }

    fn ledger(&self) -> &str {
        &self.tables().ledger
    }

    async fn size(&self) -> Result<u64, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.ledger())
            .set_key(Some(keyed("size".into())))
            .consistent_read(true)
            .send()
            .await
            .map_err(refused)?;
        output.item().map_or(Ok(0), |item| number(item, "Size"))
    }

    async fn nodes(&self, indices: &[u64]) -> Result<HashMap<u64, Hash>, StoreError> {
        let keys = indices.iter().map(|&i| keyed(node_key(i))).collect();
        self.batch_get(self.ledger(), keys)
            .await?
            .iter()
            .map(|item| {
                let index = string(item, "Key")?
                    .strip_prefix("node#")
                    .and_then(|i| i.parse().ok())
                    .ok_or_else(|| StoreError::Corrupt("ledger node key".into()))?;
                let hash = item
                    .get("Hash")
                    .and_then(|v| v.as_b().ok())
                    .and_then(|b| Hash::try_from(b.as_ref()).ok())
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!("Merkle node {index} is not 32 bytes"))
                    })?;
                Ok((index, hash))
            })
            .collect()
    }

    /// Which of `events` already have a place in the log.
    async fn placed(&self, events: &[(RawEvent, Hash)]) -> Result<HashSet<String>, StoreError> {
        let keys = events
            .iter()
            .map(|(e, _)| {
                keyed(event_key(
                    &e.aggregate_type,
                    &e.aggregate_id,
                    e.sequence as u64,
                ))
            })
            .collect();
        self.batch_get(self.ledger(), keys)
            .await?
            .iter()
            .map(|item| string(item, "Key").map(str::to_string))
            .collect()
    }

    /// The writes that place as many of `pending` as one transaction holds after a log
    /// of `size` events whose frontier is `frontier`.
    fn step(
        &self,
        size: u64,
        mut frontier: Frontier,
        pending: &[(RawEvent, Hash)],
    ) -> Result<Step, StoreError> {
        let table = self.ledger();
        let mut writes = Vec::new();
        let mut taken = 0;
        for (event, hash) in pending {
            let mut grown = frontier.clone();
            let nodes = grown.push(*hash);
            // Two items for the event, its nodes, and the size item at the end.
            if writes.len() + 2 + nodes.len() + 1 > TRANSACTION_ITEMS {
                break;
            }
            let leaf = frontier.size();
            let sequence = event.sequence as u64;
            let mut placed = keyed(leaf_key(leaf));
            placed.insert(
                "AggregateType".into(),
                AttributeValue::S(event.aggregate_type.clone()),
            );
            placed.insert(
                "AggregateId".into(),
                AttributeValue::S(event.aggregate_id.clone()),
            );
            placed.insert("Sequence".into(), AttributeValue::N(sequence.to_string()));
            writes.push(put(table, placed, None)?);
            let mut place = keyed(event_key(
                &event.aggregate_type,
                &event.aggregate_id,
                sequence,
            ));
            place.insert("Leaf".into(), AttributeValue::N(leaf.to_string()));
            writes.push(put(table, place, Some("attribute_not_exists(#key)"))?);
            for (index, hash) in nodes {
                let mut node = keyed(node_key(index));
                node.insert("Hash".into(), AttributeValue::B(Blob::new(hash.to_vec())));
                writes.push(put(table, node, None)?);
            }
            frontier = grown;
            taken += 1;
        }
        let mut sized = keyed("size".into());
        sized.insert(
            "Size".into(),
            AttributeValue::N(frontier.size().to_string()),
        );
        // The size item does not exist until the first events are placed.
        let condition = if size == 0 {
            "attribute_not_exists(Size) OR Size = :size"
        } else {
            "Size = :size"
        };
        let put = Put::builder()
            .table_name(table)
            .set_item(Some(sized))
            .condition_expression(condition)
            .expression_attribute_values(":size", AttributeValue::N(size.to_string()))
            .build()
            .map_err(unavailable)?;
        writes.push(TransactWriteItem::builder().put(put).build());
        Ok(Step { writes, taken })
    }

    /// Logs `events` in the order given, each once: those already logged (a batch
    /// delivered again) are skipped. Returns the log's size after them.
    pub async fn log_events(&self, events: Vec<SerializedEvent>) -> Result<u64, StoreError> {
        let mut seen = HashSet::new();
        let events: Vec<RawEvent> = events
            .into_iter()
            .filter(|e| seen.insert((e.aggregate_type.clone(), e.aggregate_id.clone(), e.sequence)))
            .map(raw_event)
            .collect();
        let (events, hashes) = leaf_hashes(events).await?;
        let mut pending: Vec<(RawEvent, Hash)> = events.into_iter().zip(hashes).collect();
        let mut lost = 0;
        loop {
            let placed = self.placed(&pending).await?;
            pending.retain(|(e, _)| {
                !placed.contains(&event_key(
                    &e.aggregate_type,
                    &e.aggregate_id,
                    e.sequence as u64,
                ))
            });
            let size = self.size().await?;
            if pending.is_empty() {
                return Ok(size);
            }
            let indices = Frontier::nodes(size);
            let nodes = self.nodes(&indices).await?;
            let hashes: Vec<Hash> = indices
                .iter()
                .map_while(|i| nodes.get(i).copied())
                .collect();
            let frontier =
                Frontier::resume(size, &hashes).map_err(|m| StoreError::Corrupt(m.to_string()))?;
            let step = self.step(size, frontier, &pending)?;
            let written = self
                .client()
                .transact_write_items()
                .set_transact_items(Some(step.writes))
                .send()
                .await;
            match written {
                Ok(_) => {
                    pending.drain(..step.taken);
                }
                // Another appender moved the size, or placed one of these events, first
                // (or held one of the items): read again and go on from there.
                Err(error) if error.code() == Some("TransactionCanceledException") => {
                    lost += 1;
                    if lost >= ATTEMPTS {
                        return Err(StoreError::Unavailable(format!(
                            "the Merkle log: {lost} transactions in a row lost to other appenders"
                        )));
                    }
                    let jitter = rand::random::<u64>() % (5 << lost.min(5));
                    tokio::time::sleep(Duration::from_millis(jitter + 2)).await;
                }
                Err(error) => return Err(refused(error)),
            }
        }
    }
}

#[async_trait::async_trait]
impl MerkleStorage for DynamoStore {
    async fn log_size(&self) -> Result<u64, StoreError> {
        self.size().await
    }

    async fn log_nodes(&self, indices: &[u64]) -> Result<HashMap<u64, Hash>, StoreError> {
        self.nodes(indices).await
    }

    /// Events reach the log from the table's stream ([`DynamoStore::log_events`], the
    /// relay): nothing here can tell which events it has not seen yet, so this answers
    /// the size the relay has brought it to.
    async fn extend_log(&self, _limit: u64) -> Result<u64, StoreError> {
        self.size().await
    }

    async fn leaf_of(
        &self,
        aggregate_type: &str,
        id: &str,
        sequence: u64,
    ) -> Result<Option<u64>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.ledger())
            .set_key(Some(keyed(event_key(aggregate_type, id, sequence))))
            .consistent_read(true)
            .send()
            .await
            .map_err(refused)?;
        if let Some(item) = output.item() {
            return number(item, "Leaf").map(Some);
        }
        // An event not placed yet gets a place past every tree so far.
        let stored = crate::capabilities::EventLog::read_stream(
            self,
            aggregate_type,
            id,
            sequence,
            sequence,
            1,
        )
        .await?;
        match stored.is_empty() {
            true => Ok(None),
            false => Ok(Some(self.size().await?)),
        }
    }

    async fn leaf_events(&self, from: u64, limit: u64) -> Result<Vec<(u64, RawEvent)>, StoreError> {
        let to = self.size().await?.min(from.saturating_add(limit));
        let keys = (from..to).map(|leaf| keyed(leaf_key(leaf))).collect();
        let mut places: Vec<(u64, String, String, u64)> = Vec::new();
        for item in self.batch_get(self.ledger(), keys).await? {
            let leaf = string(&item, "Key")?
                .strip_prefix("leaf#")
                .and_then(|l| l.parse().ok())
                .ok_or_else(|| StoreError::Corrupt("ledger leaf key".into()))?;
            places.push((
                leaf,
                string(&item, "AggregateType")?.to_string(),
                string(&item, "AggregateId")?.to_string(),
                number(&item, "Sequence")?,
            ));
        }
        let keys = places
            .iter()
            .map(|(_, t, id, s)| super::dynamo::event_item_key(t, id, *s))
            .collect();
        let mut events: HashMap<(String, u64), RawEvent> = HashMap::new();
        for item in self.batch_get(&self.tables().events, keys).await? {
            let event = raw_event(super::dynamo::event_from_item(&item)?);
            let stream = format!("{}:{}", event.aggregate_type, event.aggregate_id);
            events.insert((stream, event.sequence as u64), event);
        }
        places.sort_unstable_by_key(|(leaf, ..)| *leaf);
        Ok(places
            .into_iter()
            .filter_map(|(leaf, t, id, s)| {
                events.remove(&(format!("{t}:{id}"), s)).map(|e| (leaf, e))
            })
            .collect())
    }
}
