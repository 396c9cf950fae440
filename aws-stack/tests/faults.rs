//! Faults on the way from the event store to the read models, on DynamoDB Local, moto
//! and PostgreSQL, with the Lambda handlers driven from their event sources by hand so
//! that each fault happens exactly where it should: an EventBridge PutEvents partial
//! failure, a projector dying mid-batch, a duplicated SQS delivery, messages landing in
//! the DLQ and being redriven. In every case the read models end equal to a rebuild
//! from the store: no event lost, none applied twice.

mod support;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::QueueAttributeName;
use aws_stack::mapping::{QueueMapping, StreamMapping};
use aws_stack::Topology;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use event_store::{Backend, EventStore};
use projections::{Projector, ReadStore, SystemLog};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{balance, deposit, difference, dump, open, settle, Peers};

/// A proxy in front of moto's EventBridge that, while armed, lets every other entry of a
/// PutEvents through (none when there is only one) and answers the rest with
/// `ThrottlingException`, as EventBridge does under load: a partial failure. Everything
/// else passes untouched.
#[derive(Clone)]
struct FaultyBus {
    upstream: String,
    http: reqwest::Client,
    failing_calls: Arc<AtomicUsize>,
    partial_failures: Arc<AtomicUsize>,
}

impl FaultyBus {
    async fn start(upstream: &str) -> (Self, String) {
        let bus = FaultyBus {
            upstream: upstream.to_string(),
            http: reqwest::Client::new(),
            failing_calls: Arc::default(),
            partial_failures: Arc::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = bus.clone();
        let app = axum::Router::new().fallback(move |method, uri, headers, body| {
            let state = state.clone();
            async move { state.forward(method, uri, headers, body).await }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (bus, endpoint)
    }

    async fn send(
        &self,
        method: Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Vec<u8>,
    ) -> (StatusCode, Vec<u8>) {
        let mut request = self.http.request(method, format!("{}{uri}", self.upstream));
        for (name, value) in headers {
            if name != "host" && name != "content-length" {
                request = request.header(name, value);
            }
        }
        let response = request.body(body).send().await.unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        (status, response.bytes().await.unwrap().to_vec())
    }

    async fn forward(
        &self,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> impl IntoResponse {
        let put_events = headers
            .get("x-amz-target")
            .is_some_and(|t| t.as_bytes().ends_with(b".PutEvents"));
        let armed = put_events
            && self
                .failing_calls
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if !armed {
            let (status, body) = self.send(method, &uri, &headers, body.to_vec()).await;
            return (
                status,
                [("content-type", "application/x-amz-json-1.1")],
                body,
            );
        }
        self.partial_failures.fetch_add(1, Ordering::SeqCst);
        let mut request: Value = serde_json::from_slice(&body).unwrap();
        let entries = request["Entries"].as_array().cloned().unwrap_or_default();
        let fails = |n: usize| n % 2 == 1 || entries.len() == 1;
        let passing: Vec<Value> = (0..entries.len())
            .filter(|n| !fails(*n))
            .map(|n| entries[n].clone())
            .collect();
        let mut passed = Vec::new().into_iter();
        if !passing.is_empty() {
            request["Entries"] = Value::Array(passing);
            let (status, answer) = self
                .send(method, &uri, &headers, request.to_string().into_bytes())
                .await;
            assert!(status.is_success(), "moto refused the forwarded entries");
            let answer: Value = serde_json::from_slice(&answer).unwrap();
            passed = answer["Entries"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter();
        }
        let results: Vec<Value> = (0..entries.len())
            .map(|n| match fails(n) {
                false => passed.next().unwrap_or(Value::Null),
                true => {
                    json!({"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"})
                }
            })
            .collect();
        let failed = results
            .iter()
            .filter(|r| r.get("ErrorCode").is_some())
            .count();
        let body = json!({"FailedEntryCount": failed, "Entries": results}).to_string();
        (
            StatusCode::OK,
            [("content-type", "application/x-amz-json-1.1")],
            body.into_bytes(),
        )
    }
}

fn event(records: &[SqsMessage]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = records.to_vec();
    event
}

async fn visible(clients: &aws_stack::AwsClients, url: &str) -> usize {
    let attributes = clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    attributes.attributes().unwrap()[&QueueAttributeName::ApproximateNumberOfMessages]
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_lose_no_event_and_apply_none_twice() {
    let peers = Peers::start().await;
    let (bus, bus_endpoint) = FaultyBus::start(&peers.moto.endpoint).await;
    let clients = peers.clients(Some(&bus_endpoint)).await;
    let mut topology = Topology::new("fault-");
    topology.visibility_timeout = Duration::from_secs(1);
    topology.max_receive_count = 4;
    let stack = aws_stack::init(&clients, &topology).await.unwrap();
    let store = Arc::new(EventStore::new(Backend::dynamo(
        clients.dynamo.clone(),
        topology.tables(),
    )));
    let live = test_peers::postgres::fresh("crm_aws_faults").await;
    let projector = Projector::new(
        store.clone(),
        Arc::new(ReadStore::open(&live).await.unwrap()),
        Arc::new(SystemLog::open(&live).await.unwrap()),
    );
    let relay = relay::Relay::new(clients.events.clone(), stack.bus.clone())
        .with_projector_queue(clients.sqs.clone(), stack.projector_queue_url.clone());
    let mut stream = StreamMapping::new(clients.streams.clone(), stack.events_stream_arn.clone());
    let queue = QueueMapping::new(
        clients.sqs.clone(),
        stack.projector_queue_url.clone(),
        stack.projector_queue_arn.clone(),
    );
    let relay = &relay;
    let projector = &projector;
    let publish = |batch| relay::lambda::handle(relay, batch);
    let project = |batch| projections::lambda::handle(projector, batch);

    let (a, b) = (open(&store).await, open(&store).await);
    for amount in [100, 200, 300, 400] {
        deposit(&store, a, amount).await;
    }
    deposit(&store, b, 50).await;

    // 1. PutEvents fails for every other entry, four calls running: more than the relay
    //    retries itself. It reports its first failed record (sending nothing from there
    //    on to the projector's queue); the next poll starts there.
    bus.failing_calls.store(4, Ordering::SeqCst);
    assert_eq!(stream.poll(publish).await.unwrap(), 7);
    assert_eq!(bus.partial_failures.load(Ordering::SeqCst), 4);
    // Records 1, 3 and 5 fail, then 3 of those three, then 3 alone, twice: the relay
    // gives up on record 3 and the mapping resumes there.
    assert_eq!(
        stream.poll(publish).await.unwrap(),
        4,
        "again from the fourth record"
    );
    assert_eq!(stream.poll(publish).await.unwrap(), 0, "all published");
    // The bus saw the first three twice (a retried PutEvents is a new message); the
    // projector's queue got only what the bus took, each event once.
    let queued = visible(&clients, &stack.projector_queue_url).await;
    assert_eq!(queued, 7, "each event once in the projector's queue");

    // 2. The projector dies mid-batch: half the batch applied, nothing deleted.
    let batch = queue.receive().await.unwrap();
    assert!(batch.len() >= 2);
    let response = project(event(&batch[..batch.len() / 2])).await;
    assert!(response.batch_item_failures.is_empty());
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    // 3. The same messages again (the first half already applied; SQS may hand them
    //    back in several batches), handled in full, but the deletions are lost: SQS
    //    delivers them once more.
    let mut redelivered = std::collections::HashSet::new();
    for _ in 0..10 {
        let again = queue.receive().await.unwrap();
        assert!(project(event(&again)).await.batch_item_failures.is_empty());
        redelivered.extend(again.into_iter().filter_map(|m| m.message_id));
        if batch
            .iter()
            .all(|m| redelivered.contains(m.message_id.as_ref().unwrap()))
        {
            break;
        }
    }
    assert!(
        batch
            .iter()
            .all(|m| redelivered.contains(m.message_id.as_ref().unwrap())),
        "the unfinished batch comes back"
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    // Then everything is handled normally.
    while queue.poll(project).await.unwrap() > 0 {}
    assert_eq!(balance(&live, a).await, 1_000);
    assert_eq!(balance(&live, b).await, 50);

    // 4. Two more deposits whose messages the projector never finishes: after
    //    maxReceiveCount deliveries SQS moves them to the DLQ, and the read models lack them.
    deposit(&store, b, 7).await;
    deposit(&store, b, 8).await;
    assert_eq!(stream.poll(publish).await.unwrap(), 2);
    let mut deliveries = std::collections::HashMap::<String, u32>::new();
    for _ in 0..20 {
        for message in queue.receive().await.unwrap() {
            *deliveries.entry(message.message_id.unwrap()).or_default() += 1;
        }
        if visible(&clients, &stack.projector_dlq_url).await == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1_100)).await;
    }
    assert_eq!(
        visible(&clients, &stack.projector_dlq_url).await,
        2,
        "both in the DLQ"
    );
    assert_eq!(deliveries.len(), 2);
    // (moto counts a FIFO group's receives its own way: not more than maxReceiveCount.)
    assert!(
        deliveries
            .values()
            .all(|n| *n <= topology.max_receive_count),
        "{deliveries:?}"
    );
    assert_eq!(balance(&live, b).await, 50, "not applied yet");

    // 5. Redriven, they are applied once.
    let moved = aws_stack::redrive(
        &clients.sqs,
        &stack.projector_dlq_url,
        &stack.projector_queue_url,
    )
    .await
    .unwrap();
    assert_eq!(moved, 2);
    while queue.poll(project).await.unwrap() > 0 {}
    assert_eq!(balance(&live, b).await, 65);

    // And the whole read side equals a rebuild from the store.
    let rebuilt = test_peers::postgres::fresh("crm_aws_faults_rebuilt").await;
    let made = aws_stack::rebuild(
        std::sync::Arc::new(event_store::EventStore::new(event_store::Backend::dynamo(
            clients.dynamo.clone(),
            topology.tables(),
        ))),
        &rebuilt,
    )
    .await
    .unwrap();
    assert_eq!((made.events, made.applied), (9, 9));
    let expected = dump(&rebuilt).await;
    let live_rows = settle(&live, &expected).await;
    assert!(
        live_rows == expected,
        "{}",
        difference(&live_rows, &expected)
    );
    assert_eq!(
        expected
            .iter()
            .filter(|row| row.starts_with("transactions: "))
            .count(),
        7,
        "each deposit once"
    );

    test_peers::postgres::drop(&live).await;
    test_peers::postgres::drop(&rebuilt).await;
}
