//! The event store on DynamoDB (AWS): appends and loads through `dynamo-es`, plus what
//! the store needs that cqrs-es does not offer — a stream's raw events for audit, the
//! ids of unfinished processes, and idempotency records. Table definitions live here
//! once, for tests, `crm aws init` and the infrastructure.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, StreamSpecification, StreamViewType,
};
use aws_sdk_dynamodb::Client;
use cqrs_es::persist::SerializedEvent;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

use crate::error::StoreError;
use crate::idempotency::{Claim, StoredResponse};

/// One table of the store as a deployment must declare it: what `create` makes here and
/// what the infrastructure code (infra/, through `crm aws topology --json`) declares.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableSchema {
    /// What the table is for: `events`, `snapshots`, `idempotency` or `ledger`.
    pub role: &'static str,
    pub name: String,
    pub partition_key: KeyAttribute,
    pub sort_key: Option<KeyAttribute>,
    /// The stream view the relay reads (`NEW_IMAGE`), if the table streams.
    pub stream: Option<&'static str>,
}

/// A key attribute and its DynamoDB scalar type (`S` or `N`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyAttribute {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

const fn key_attribute(name: &'static str, kind: &'static str) -> KeyAttribute {
    KeyAttribute { name, kind }
}

/// The store's table names, under a prefix (one deployment, one prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoTables {
    pub events: String,
    pub snapshots: String,
    pub idempotency: String,
    /// The global Merkle log (`backend::dynamo_merkle`), kept by the relay.
    pub ledger: String,
}

impl DynamoTables {
    pub fn with_prefix(prefix: &str) -> Self {
        DynamoTables {
            events: format!("{prefix}Events"),
            snapshots: format!("{prefix}Snapshots"),
            idempotency: format!("{prefix}Idempotency"),
            ledger: format!("{prefix}Ledger"),
        }
    }

    /// The four tables' key schemas (the events table streams new images to the relay).
    pub fn schemas(&self) -> [TableSchema; 4] {
        [
            TableSchema {
                role: "events",
                name: self.events.clone(),
                partition_key: key_attribute("AggregateTypeAndId", "S"),
                sort_key: Some(key_attribute("AggregateIdSequence", "N")),
                stream: Some("NEW_IMAGE"),
            },
            TableSchema {
                role: "snapshots",
                name: self.snapshots.clone(),
                partition_key: key_attribute("AggregateTypeAndId", "S"),
                sort_key: None,
                stream: None,
            },
            TableSchema {
                role: "idempotency",
                name: self.idempotency.clone(),
                partition_key: key_attribute("Caller", "S"),
                sort_key: Some(key_attribute("IdempotencyKey", "S")),
                stream: None,
            },
            TableSchema {
                role: "ledger",
                name: self.ledger.clone(),
                partition_key: key_attribute("Key", "S"),
                sort_key: None,
                stream: None,
            },
        ]
    }

    /// Creates the tables that do not exist yet (on-demand capacity), as [`Self::schemas`]
    /// describes them.
    pub async fn create(&self, client: &Client) -> Result<(), StoreError> {
        for table in self.schemas() {
            let mut request = client
                .create_table()
                .table_name(&table.name)
                .billing_mode(BillingMode::PayPerRequest)
                .attribute_definitions(attribute(&table.partition_key)?)
                .key_schema(key(table.partition_key.name, KeyType::Hash)?);
            if let Some(sort) = &table.sort_key {
                request = request
                    .attribute_definitions(attribute(sort)?)
                    .key_schema(key(sort.name, KeyType::Range)?);
            }
            if let Some(view) = table.stream {
                request = request.stream_specification(
                    StreamSpecification::builder()
                        .stream_enabled(true)
                        .stream_view_type(StreamViewType::from(view))
                        .build()
                        .map_err(unavailable)?,
                );
            }
            match request.send().await {
                Ok(_) => {}
                Err(error) if error.code() == Some("ResourceInUseException") => {}
                Err(error) => return Err(unavailable(error.into_service_error())),
            }
        }
        Ok(())
    }
}

fn attribute(key: &KeyAttribute) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(key.name)
        .attribute_type(ScalarAttributeType::from(key.kind))
        .build()
        .map_err(unavailable)
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(unavailable)
}

pub(super) fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> Result<String, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} missing")))
}

fn json(item: &HashMap<String, AttributeValue>, name: &str) -> Result<Value, StoreError> {
    let bytes = item
        .get(name)
        .and_then(|v| v.as_b().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} missing")))?;
    Ok(serde_json::from_slice(bytes.as_ref())?)
}

/// Reads one stored event item (as dynamo-es writes it).
pub fn event_from_item(
    item: &HashMap<String, AttributeValue>,
) -> Result<SerializedEvent, StoreError> {
    let sequence = item
        .get("AggregateIdSequence")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or_else(|| StoreError::Corrupt("sequence missing".into()))?;
    Ok(SerializedEvent::new(
        text(item, "AggregateId")?,
        sequence,
        text(item, "AggregateType")?,
        text(item, "EventType")?,
        text(item, "EventVersion")?,
        json(item, "Payload")?,
        json(item, "Metadata")?,
    ))
}

/// An event as the Merkle log and verification read it. Items hold payloads as bytes,
/// read through the parsed form, so the relay (from a stream image) and readers of the
/// table see the same text.
pub(crate) fn raw_event(event: SerializedEvent) -> domain::chain::RawEvent {
    domain::chain::RawEvent {
        payload_json: event.payload.to_string(),
        aggregate_type: event.aggregate_type,
        aggregate_id: event.aggregate_id,
        sequence: event.sequence,
        event_type: event.event_type,
        event_version: event.event_version,
        metadata: event.metadata,
    }
}

/// The events table's key of one event.
pub(crate) fn event_item_key(
    aggregate_type: &str,
    id: &str,
    sequence: u64,
) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "AggregateTypeAndId".to_string(),
            AttributeValue::S(format!("{aggregate_type}:{id}")),
        ),
        (
            "AggregateIdSequence".to_string(),
            AttributeValue::N(sequence.to_string()),
        ),
    ])
}

/// One stream's events in order (strongly consistent).
async fn stream(
    client: &Client,
    tables: &DynamoTables,
    aggregate_type: &str,
    id: &str,
) -> Result<Vec<SerializedEvent>, StoreError> {
    let mut events = Vec::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let page = client
            .query()
            .table_name(&tables.events)
            .consistent_read(true)
            .key_condition_expression("AggregateTypeAndId = :stream")
            .expression_attribute_values(
                ":stream",
                AttributeValue::S(format!("{aggregate_type}:{id}")),
            )
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| unavailable(e.into_service_error()))?;
        for item in page.items() {
            events.push(event_from_item(item)?);
        }
        match page.last_evaluated_key() {
            Some(key) => start = Some(key.clone()),
            None => return Ok(events),
        }
    }
}

/// Where a scan of the events table stopped (opaque; DynamoDB's last evaluated key).
#[derive(Debug, Clone)]
pub struct ScanCursor(HashMap<String, AttributeValue>);

/// One page of every stored event, in no particular order across streams: how the read
/// models are rebuilt from DynamoDB (the projector orders each stream itself).
async fn scan(
    client: &Client,
    tables: &DynamoTables,
    after: Option<ScanCursor>,
) -> Result<(Vec<SerializedEvent>, Option<ScanCursor>), StoreError> {
    let page = client
        .scan()
        .table_name(&tables.events)
        .consistent_read(true)
        .set_exclusive_start_key(after.map(|cursor| cursor.0))
        .send()
        .await
        .map_err(|e| unavailable(e.into_service_error()))?;
    let events = page
        .items()
        .iter()
        .map(event_from_item)
        .collect::<Result<_, _>>()?;
    Ok((events, page.last_evaluated_key().cloned().map(ScanCursor)))
}

/// Streams of `aggregate_type` without any of `terminal` events (a scan: used at
/// start-up and by verification, not on the request path).
async fn open_streams(
    client: &Client,
    tables: &DynamoTables,
    aggregate_type: &str,
    terminal: &[&str],
) -> Result<Vec<String>, StoreError> {
    // Ids in the order first seen, and a set to tell them apart: a stream's every event
    // comes by, and looking each up in the list grew with the square of the streams.
    let (mut ids, mut seen, mut finished) = (Vec::new(), HashSet::new(), HashSet::new());
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let page = client
            .scan()
            .table_name(&tables.events)
            .filter_expression("AggregateType = :type")
            .expression_attribute_values(":type", AttributeValue::S(aggregate_type.to_string()))
            .projection_expression("AggregateId, EventType")
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| unavailable(e.into_service_error()))?;
        for item in page.items() {
            let id = text(item, "AggregateId")?;
            if terminal.contains(&text(item, "EventType")?.as_str()) {
                finished.insert(id.clone());
            }
            if seen.insert(id.clone()) {
                ids.push(id);
            }
        }
        match page.last_evaluated_key() {
            Some(key) => start = Some(key.clone()),
            None => break,
        }
    }
    Ok(ids
        .into_iter()
        .filter(|id| !finished.contains(id))
        .collect())
}

/// The idempotency table's item for (`caller`, `key`), read after every earlier write.
pub(super) async fn record(
    client: &Client,
    tables: &DynamoTables,
    caller: &str,
    key: &str,
) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
    let stored = client
        .get_item()
        .table_name(&tables.idempotency)
        .set_key(Some(idempotency_key(caller, key)))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| unavailable(e.into_service_error()))?;
    Ok(stored.item)
}

pub(super) fn idempotency_key(caller: &str, key: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("Caller".to_string(), AttributeValue::S(caller.to_string())),
        (
            "IdempotencyKey".to_string(),
            AttributeValue::S(key.to_string()),
        ),
    ])
}

async fn claim(
    client: &Client,
    tables: &DynamoTables,
    caller: &str,
    key: &str,
    request_hash: &str,
    lease: std::time::Duration,
) -> Result<Claim, StoreError> {
    let now = chrono::Utc::now();
    let lease_until = now.timestamp_millis() + lease.as_millis() as i64;
    let mut item = idempotency_key(caller, key);
    item.insert(
        "RequestHash".into(),
        AttributeValue::S(request_hash.to_string()),
    );
    item.insert(
        "CreatedAt".into(),
        AttributeValue::S(now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    );
    item.insert(
        "LeaseUntil".into(),
        AttributeValue::N(lease_until.to_string()),
    );
    let put = client
        .put_item()
        .table_name(&tables.idempotency)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(Caller)")
        .send()
        .await;
    match put {
        Ok(_) => {
            return Ok(Claim::New {
                claimed_at_ms: now.timestamp_millis(),
                recovering: false,
            })
        }
        Err(error) if error.code() == Some("ConditionalCheckFailedException") => {}
        Err(error) => return Err(unavailable(error.into_service_error())),
    }
    let Some(ref item) = record(client, tables, caller, key).await? else {
        return Ok(Claim::InProgress);
    };
    if text(item, "RequestHash")? != request_hash {
        return Ok(Claim::Mismatch);
    }
    if let Some(status) = item.get("Status").and_then(|v| v.as_n().ok()) {
        return Ok(Claim::Replay(StoredResponse {
            status: status
                .parse()
                .map_err(|_| StoreError::Corrupt("status".into()))?,
            headers: serde_json::from_str(&text(item, "Headers")?)?,
            body: item
                .get("Body")
                .and_then(|v| v.as_b().ok())
                .map(|b| b.as_ref().to_vec())
                .unwrap_or_default(),
        }));
    }
    // The holder's lease ran out: take the claim over, if nobody else did first.
    let taken = client
        .update_item()
        .table_name(&tables.idempotency)
        .set_key(Some(idempotency_key(caller, key)))
        .update_expression("SET LeaseUntil = :lease")
        .condition_expression(
            "attribute_not_exists(#status) AND (attribute_not_exists(LeaseUntil) OR LeaseUntil < :now)",
        )
        .expression_attribute_names("#status", "Status")
        .expression_attribute_values(":lease", AttributeValue::N(lease_until.to_string()))
        .expression_attribute_values(":now", AttributeValue::N(now.timestamp_millis().to_string()))
        .send()
        .await;
    match taken {
        Ok(_) => {
            let created_at = text(item, "CreatedAt")?;
            let claimed_at_ms = chrono::DateTime::parse_from_rfc3339(&created_at)
                .map_err(|e| StoreError::Corrupt(format!("CreatedAt: {e}")))?
                .timestamp_millis();
            Ok(Claim::New {
                claimed_at_ms,
                recovering: true,
            })
        }
        Err(error) if error.code() == Some("ConditionalCheckFailedException") => {
            Ok(Claim::InProgress)
        }
        Err(error) => Err(unavailable(error.into_service_error())),
    }
}

async fn renew(
    client: &Client,
    tables: &DynamoTables,
    caller: &str,
    key: &str,
    lease_until: i64,
) -> Result<(), StoreError> {
    let renewed = client
        .update_item()
        .table_name(&tables.idempotency)
        .set_key(Some(idempotency_key(caller, key)))
        .update_expression("SET LeaseUntil = :lease")
        .condition_expression("attribute_exists(Caller) AND attribute_not_exists(#status)")
        .expression_attribute_names("#status", "Status")
        .expression_attribute_values(":lease", AttributeValue::N(lease_until.to_string()))
        .send()
        .await;
    match renewed {
        Ok(_) => Ok(()),
        Err(error) if error.code() == Some("ConditionalCheckFailedException") => Ok(()),
        Err(error) => Err(unavailable(error.into_service_error())),
    }
}

async fn complete(
    client: &Client,
    tables: &DynamoTables,
    caller: &str,
    key: &str,
    response: &StoredResponse,
) -> Result<(), StoreError> {
    client
        .update_item()
        .table_name(&tables.idempotency)
        .set_key(Some(idempotency_key(caller, key)))
        .update_expression("SET #status = :status, Headers = :headers, Body = :body")
        .expression_attribute_names("#status", "Status")
        .expression_attribute_values(":status", AttributeValue::N(response.status.to_string()))
        .expression_attribute_values(
            ":headers",
            AttributeValue::S(serde_json::to_string(&response.headers)?),
        )
        .expression_attribute_values(":body", AttributeValue::B(Blob::new(response.body.clone())))
        .send()
        .await
        .map_err(|e| unavailable(e.into_service_error()))?;
    Ok(())
}

async fn release(
    client: &Client,
    tables: &DynamoTables,
    caller: &str,
    key: &str,
) -> Result<(), StoreError> {
    let deleted = client
        .delete_item()
        .table_name(&tables.idempotency)
        .set_key(Some(idempotency_key(caller, key)))
        .condition_expression("attribute_not_exists(#status)")
        .expression_attribute_names("#status", "Status")
        .send()
        .await;
    match deleted {
        Ok(_) => Ok(()),
        Err(error) if error.code() == Some("ConditionalCheckFailedException") => Ok(()),
        Err(error) => Err(unavailable(error.into_service_error())),
    }
}

async fn ping(client: &Client, tables: &DynamoTables) -> Result<(), StoreError> {
    client
        .describe_table()
        .table_name(&tables.events)
        .send()
        .await
        .map(drop)
        .map_err(|e| unavailable(e.into_service_error()))
}

/// Account numbers live in the idempotency table under a partition no caller can have
/// (callers are staff ids): a counter item, and one item per account holding its number,
/// so a retried opening finds the number it was given.
const NUMBERS: &str = "#account-numbers";
const SEQUENCE: &str = "#sequence";

async fn number_of(
    client: &Client,
    tables: &DynamoTables,
    account: &str,
) -> Result<Option<i64>, StoreError> {
    record(client, tables, NUMBERS, account)
        .await?
        .map(|item| number(&item, "Number"))
        .transpose()
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Result<i64, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} missing")))
}

async fn allocate_number(
    client: &Client,
    tables: &DynamoTables,
    account: &str,
) -> Result<i64, StoreError> {
    if let Some(known) = number_of(client, tables, account).await? {
        return Ok(known);
    }
    let counter = client
        .update_item()
        .table_name(&tables.idempotency)
        .set_key(Some(idempotency_key(NUMBERS, SEQUENCE)))
        .update_expression("ADD LastNumber :one")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
        .send()
        .await
        .map_err(|e| unavailable(e.into_service_error()))?;
    let next = number(
        counter.attributes().unwrap_or(&HashMap::new()),
        "LastNumber",
    )?;
    let mut item = idempotency_key(NUMBERS, account);
    item.insert("Number".into(), AttributeValue::N(next.to_string()));
    let put = client
        .put_item()
        .table_name(&tables.idempotency)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(Caller)")
        .send()
        .await;
    match put {
        Ok(_) => Ok(next),
        // A concurrent retry of the same opening won: its number is the account's (ours
        // is left unused, a gap in the sequence).
        Err(error) if error.code() == Some("ConditionalCheckFailedException") => {
            number_of(client, tables, account)
                .await?
                .ok_or_else(|| StoreError::Unavailable("account number vanished".into()))
        }
        Err(error) => Err(unavailable(error.into_service_error())),
    }
}

/// The store on DynamoDB (AWS): dynamo-es for appends, our queries for the rest. No
/// snapshots (every load replays the stream) and no commit-order feed (the relay reads
/// the table's stream instead).
pub struct DynamoStore {
    repository: dynamo_es::DynamoEventRepository,
    client: Client,
    tables: DynamoTables,
}

impl DynamoStore {
    /// The store in `tables` (see [`DynamoTables::create`]).
    pub fn new(client: Client, tables: DynamoTables) -> Self {
        let repository = dynamo_es::DynamoEventRepository::new(client.clone())
            .with_tables(&tables.events, &tables.snapshots);
        DynamoStore {
            repository,
            client,
            tables,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn tables(&self) -> &DynamoTables {
        &self.tables
    }

    /// One page of every event in the store (with time positions), and where the next
    /// page starts; `None` when the scan is complete.
    pub async fn scan(
        &self,
        after: Option<ScanCursor>,
    ) -> Result<(Vec<crate::StoredEvent>, Option<ScanCursor>), StoreError> {
        let (events, next) = scan(&self.client, &self.tables, after).await?;
        let events = events
            .into_iter()
            .map(|event| crate::StoredEvent {
                position: crate::time_position(&event),
                event,
            })
            .collect();
        Ok((events, next))
    }
}

impl Clone for DynamoStore {
    fn clone(&self) -> Self {
        DynamoStore::new(self.client.clone(), self.tables.clone())
    }
}

impl crate::capabilities::EventLog for DynamoStore {
    fn name(&self) -> &'static str {
        "dynamodb"
    }

    async fn append<A: cqrs_es::Aggregate>(
        &self,
        sealed: &[SerializedEvent],
    ) -> Result<(), StoreError> {
        use cqrs_es::persist::PersistedEventRepository;
        Ok(self.repository.persist::<A>(sealed, None).await?)
    }

    async fn read_stream(
        &self,
        aggregate_type: &str,
        id: &str,
        from: u64,
        to: u64,
        limit: u64,
    ) -> Result<Vec<SerializedEvent>, StoreError> {
        // Our query reads the stream whole; the bounds are applied here.
        let mut events = stream(&self.client, &self.tables, aggregate_type, id).await?;
        events.retain(|e| (from..=to).contains(&(e.sequence as u64)));
        events.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(events)
    }

    async fn read_stream_raw(
        &self,
        aggregate_type: &str,
        id: &str,
        from: u64,
        to: u64,
        limit: u64,
    ) -> Result<Vec<domain::chain::RawEvent>, StoreError> {
        let events =
            crate::capabilities::EventLog::read_stream(self, aggregate_type, id, from, to, limit)
                .await?;
        Ok(events.into_iter().map(raw_event).collect())
    }

    async fn stream_length(&self, aggregate_type: &str, id: &str) -> Result<u64, StoreError> {
        let events = stream(&self.client, &self.tables, aggregate_type, id).await?;
        Ok(events.last().map_or(0, |e| e.sequence as u64))
    }

    async fn open_streams(
        &self,
        aggregate_type: &str,
        terminal_events: &[&str],
    ) -> Result<Vec<String>, StoreError> {
        open_streams(&self.client, &self.tables, aggregate_type, terminal_events).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        ping(&self.client, &self.tables).await
    }

    async fn close(&self) {}
}

#[async_trait::async_trait]
impl crate::capabilities::IdempotencyRecords for DynamoStore {
    async fn claim(
        &self,
        caller: &str,
        key: &str,
        request_hash: &str,
        lease: std::time::Duration,
    ) -> Result<Claim, StoreError> {
        claim(&self.client, &self.tables, caller, key, request_hash, lease).await
    }

    async fn renew(
        &self,
        caller: &str,
        key: &str,
        lease: std::time::Duration,
    ) -> Result<(), StoreError> {
        let until = crate::idempotency::lease_end(lease);
        renew(&self.client, &self.tables, caller, key, until).await
    }

    async fn complete(
        &self,
        caller: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        complete(&self.client, &self.tables, caller, key, response).await
    }

    async fn release(&self, caller: &str, key: &str) -> Result<(), StoreError> {
        release(&self.client, &self.tables, caller, key).await
    }
}

#[async_trait::async_trait]
impl crate::capabilities::NumberSequence for DynamoStore {
    async fn allocate(&self, key: &str) -> Result<i64, StoreError> {
        allocate_number(&self.client, &self.tables, key).await
    }
}
