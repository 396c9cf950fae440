//! Projection scales out in the local AWS mode: the relay sends each stream as its own
//! message group, and several projector workers take batches from the queue at once.
//! SQS hands no two workers the same stream at a time, so with four workers every event
//! is applied once, after the one before it in its stream: no repeat skipped, no gap
//! filled from the store, nothing dead-lettered; and the read models equal a rebuild.

mod support;

use aws_stack::mapping::{QueueMapping, StreamMapping};
use aws_stack::{LocalOptions, LocalStack, Topology};
use event_store::{Backend, EventStore};
use projections::{CatchUp, Projector, ReadStore, SystemLog};
use std::sync::Arc;
use std::time::Duration;
use support::{deposit, difference, dump, open, settle, Peers};

const ACCOUNTS: usize = 12;
const DEPOSITS: i64 = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_apply_every_event_once_and_each_stream_in_order() {
    let peers = Peers::start().await;
    let clients = peers.clients(None).await;
    let live = test_peers::postgres::fresh("crm_aws_workers").await;
    let any = "127.0.0.1:0".parse().unwrap();
    let topology = Topology::new("work-");
    // The history is written before the stack starts, so the relay begins on a backlog.
    aws_stack::init(&clients, &topology).await.unwrap();
    let store = Arc::new(EventStore::new(Backend::dynamo(
        clients.dynamo.clone(),
        topology.tables(),
    )));
    // Four writers at once, each on its accounts in turn: the streams' events
    // interleave in the table's stream and in the relay's batches.
    let mut accounts = Vec::new();
    for _ in 0..ACCOUNTS {
        accounts.push(open(&store).await);
    }
    let writers: Vec<_> = accounts
        .chunks(ACCOUNTS / 4)
        .map(|mine| {
            let (store, mine) = (store.clone(), mine.to_vec());
            tokio::spawn(async move {
                for amount in 1..=DEPOSITS {
                    for account in &mine {
                        deposit(&store, *account, amount).await;
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let stack = LocalStack::start(
        clients.clone(),
        LocalOptions {
            topology: topology.clone(),
            read_database_url: live.clone(),
            command_addr: any,
            query_addr: any,
            mail_addr: any,
            front_addr: any,
            ui_dir: None,
            mail_from: "no-reply@bank.example".into(),
            root_username: "root".into(),
            root_password: support::PASSWORD.into(),
            region: "us-east-1".into(),
            jwks_base: Some(peers.moto.endpoint.clone()),
            projector_workers: 4,
        },
    )
    .await
    .unwrap();

    // Every account reaches its balance in the read models.
    let pool = sqlx::PgPool::connect(&live).await.unwrap();
    let expected_balance = DEPOSITS * (DEPOSITS + 1) / 2;
    for _ in 0..240 {
        let (done,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM accounts WHERE balance_minor = $1")
                .bind(expected_balance)
                .fetch_one(&pool)
                .await
                .unwrap();
        if done as usize == ACCOUNTS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    pool.close().await;

    let rebuilt_url = test_peers::postgres::fresh("crm_aws_workers_rebuilt").await;
    let rebuilt = aws_stack::rebuild(stack.store(), &rebuilt_url)
        .await
        .unwrap();
    let expected = dump(&rebuilt_url).await;
    let live_rows = settle(&live, &expected).await;
    assert!(
        live_rows == expected,
        "{}",
        difference(&live_rows, &expected)
    );
    let projected = stack.projected();
    assert!(rebuilt.events >= (ACCOUNTS as u64) * (1 + DEPOSITS as u64));
    assert_eq!(
        projected.applied, rebuilt.events,
        "each event applied once: {projected:?}"
    );
    assert_eq!(projected.skipped, 0, "no event came twice: {projected:?}");
    assert_eq!(
        projected.gaps_filled, 0,
        "no event came before the one before it: {projected:?}"
    );
    assert_eq!(projected.dead_lettered, 0, "{projected:?}");

    stack.stop().await;
    test_peers::postgres::drop(&live).await;
    test_peers::postgres::drop(&rebuilt_url).await;
}

/// The same on a full queue, driven by hand: the whole history is in the queue before
/// four workers start taking batches of it at once, so without a group per stream they
/// would apply a stream's events out of order (a later one first, its gap filled from
/// the store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_on_a_backlog_keep_each_stream_in_order() {
    let peers = Peers::start().await;
    let clients = peers.clients(None).await;
    let topology = Topology::new("backlog-");
    let stack = aws_stack::init(&clients, &topology).await.unwrap();
    let store = Arc::new(EventStore::new(Backend::dynamo(
        clients.dynamo.clone(),
        topology.tables(),
    )));
    // Each account's history in one burst: its events follow each other in the queue,
    // across the batches the workers take.
    let mut accounts = Vec::new();
    for _ in 0..ACCOUNTS {
        let account = open(&store).await;
        for amount in 1..=DEPOSITS {
            deposit(&store, account, amount).await;
        }
        accounts.push(account);
    }
    let events = ACCOUNTS * (1 + DEPOSITS as usize);

    // The relay, as its Lambda: the table's stream into the queue.
    let relay = relay::Relay::new(clients.events.clone(), stack.bus.clone())
        .with_projector_queue(clients.sqs.clone(), stack.projector_queue_url.clone());
    let mut stream = StreamMapping::new(clients.streams.clone(), stack.events_stream_arn.clone());
    let mut relayed = 0;
    while relayed < events {
        relayed += stream
            .poll(|batch| relay::lambda::handle(&relay, batch))
            .await
            .unwrap();
    }

    let live = test_peers::postgres::fresh("crm_aws_backlog").await;
    let projector = Arc::new(Projector::new(
        store.clone(),
        Arc::new(ReadStore::open(&live).await.unwrap()),
        Arc::new(SystemLog::open(&live).await.unwrap()),
    ));
    let receiving = Arc::new(tokio::sync::Mutex::new(()));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let projector = projector.clone();
            let queue = QueueMapping::new(
                clients.sqs.clone(),
                stack.projector_queue_url.clone(),
                stack.projector_queue_arn.clone(),
            )
            .receiving_under(receiving.clone());
            tokio::spawn(async move { aws_stack::local::drain_queue(&projector, &queue).await })
        })
        .collect();
    let mut total = CatchUp::default();
    let mut busy_workers = 0;
    for worker in workers {
        let drained = worker.await.unwrap().unwrap();
        total.add(&drained.stats);
        busy_workers += usize::from(drained.batches > 0);
    }
    assert!(busy_workers > 1, "the workers shared the backlog");
    assert_eq!(total.applied, events as u64, "each event once: {total:?}");
    assert_eq!(
        (total.skipped, total.gaps_filled, total.dead_lettered),
        (0, 0, 0),
        "in order, once: {total:?}"
    );
    for account in &accounts {
        assert_eq!(
            support::balance(&live, *account).await,
            DEPOSITS * (DEPOSITS + 1) / 2
        );
    }
    test_peers::postgres::drop(&live).await;
}
