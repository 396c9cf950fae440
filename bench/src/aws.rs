//! `aws-projection`: projection throughput of the AWS path against the number of
//! projector workers, on the local AWS mode's peers (DynamoDB Local, moto, PostgreSQL).
//! A history of many streams is written to the DynamoDB store once. For each worker
//! count, the relay sends all of it to a fresh projector queue (a group per stream), and
//! that many workers drain the queue into a fresh read database at once, as that many
//! projector Lambdas would. It prints events/s for each count, with what the workers did:
//! applied, repeats skipped, gaps filled (an event that came before the one before it),
//! dead-lettered: each event once and in order shows as `skipped 0, gaps 0`.

use anyhow::Context;
use aws_stack::mapping::QueueMapping;
use aws_stack::{AwsClients, Topology};
use cqrs_es::persist::SerializedEvent;
use domain::account::{Account, AccountCommand};
use domain::{AccountId, Amount, Currency, TransactionId};
use event_store::{DynamoStore, EventStore, Expected};
use projections::{CatchUp, Projector, ReadStore, SystemLog};
use std::sync::Arc;
use std::time::Instant;

const WRITERS: usize = 8;

pub(crate) async fn aws_projection(
    workers: Vec<usize>,
    accounts: usize,
    deposits: usize,
) -> anyhow::Result<()> {
    let dynamo = test_peers::dynamodb_local().await;
    let moto = test_peers::moto().await;
    let clients = AwsClients::split(
        &test_peers::aws::config(&dynamo.endpoint).await,
        &test_peers::aws::config(&moto.endpoint).await,
    );
    let topology = Topology::new("bench-");
    let stack = aws_stack::init(&clients, &topology).await?;
    let dynamo = DynamoStore::new(clients.dynamo.clone(), topology.tables());
    let store = Arc::new(EventStore::new(dynamo.clone().into()));

    let seeded = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        let mine = accounts / WRITERS + usize::from(writer < accounts % WRITERS);
        tasks.push(tokio::spawn(async move {
            for _ in 0..mine {
                seed_account(&store, deposits).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let records = stored_events(&dynamo).await?;
    println!(
        "history: {} accounts, {} events, written in {:.1} s",
        accounts,
        records.len(),
        seeded.elapsed().as_secs_f64()
    );

    for n in workers {
        let (url, arn) = fresh_queue(&clients, &format!("bench-projector-{n}.fifo")).await?;
        let relay = relay::Relay::new(clients.events.clone(), stack.bus.clone())
            .with_projector_queue(clients.sqs.clone(), &url);
        let sent = Instant::now();
        let failed = relay.publish(&records).await;
        anyhow::ensure!(failed.is_empty(), "{} records not relayed", failed.len());
        let relayed = records.len() as f64 / sent.elapsed().as_secs_f64();

        let database = test_peers::postgres::fresh("bench_aws_projection").await;
        let projector = Arc::new(Projector::new(
            store.clone(),
            Arc::new(ReadStore::open(&database).await?),
            Arc::new(SystemLog::open(&database).await?),
        ));
        let receiving = Arc::new(tokio::sync::Mutex::new(()));
        let started = Instant::now();
        let running: Vec<_> = (0..n)
            .map(|_| {
                let projector = projector.clone();
                let queue = QueueMapping::new(clients.sqs.clone(), &url, &arn)
                    .receiving_under(receiving.clone());
                tokio::spawn(async move { aws_stack::local::drain_queue(&projector, &queue).await })
            })
            .collect();
        let mut total = CatchUp::default();
        let mut finished = started;
        let (mut in_sqs, mut applying) = (0.0, 0.0);
        for worker in running {
            let drained = worker.await??;
            total.add(&drained.stats);
            finished = finished.max(drained.finished.unwrap_or(started));
            in_sqs += drained.in_sqs.as_secs_f64();
            applying += drained.applying.as_secs_f64();
        }
        let seconds = (finished - started).as_secs_f64();
        println!(
            "{n} workers: {} events projected in {seconds:.2} s = {:.0} events/s \
             (applied {}, skipped {}, gaps {}, dead-lettered {}); relay {relayed:.0} events/s; \
             workers' time in SQS calls {in_sqs:.2} s, applying {applying:.2} s \
             ({:.1} ms per event applied)",
            records.len(),
            total.applied as f64 / seconds,
            total.applied,
            total.skipped,
            total.gaps_filled,
            total.dead_lettered,
            1000.0 * applying / total.applied.max(1) as f64,
        );
        test_peers::postgres::drop(&database).await;
    }
    Ok(())
}

/// An account, opened, with `deposits` deposits one after the other.
async fn seed_account(store: &EventStore, deposits: usize) -> anyhow::Result<()> {
    let eur = Currency::parse("EUR").map_err(|e| anyhow::anyhow!("{e}"))?;
    let id = AccountId::new();
    let key = id.to_string();
    let metadata = crate::seed_metadata();
    let open = crate::open_checking(id, eur);
    store
        .execute::<Account>(&key, Expected::Any, &metadata, open)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for n in 0..deposits {
        let deposit = AccountCommand::Deposit {
            transaction_id: TransactionId::new(),
            amount: Amount::new(1 + n as i64, eur).map_err(|e| anyhow::anyhow!("{e}"))?,
            description: None,
        };
        store
            .execute::<Account>(&key, Expected::Any, &metadata, deposit)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}

/// Every stored event, each stream in order, as the relay's records.
async fn stored_events(store: &DynamoStore) -> anyhow::Result<Vec<(String, SerializedEvent)>> {
    let mut records = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = store.scan(after).await?;
        records.extend(
            page.into_iter()
                .map(|stored| (records_id(&stored.event), stored.event)),
        );
        match next {
            Some(cursor) => after = Some(cursor),
            None => return Ok(records),
        }
    }
}

fn records_id(event: &SerializedEvent) -> String {
    format!(
        "{}:{}:{}",
        event.aggregate_type, event.aggregate_id, event.sequence
    )
}

/// A high-throughput FIFO queue as the topology's projector queue; its URL and ARN.
async fn fresh_queue(clients: &AwsClients, name: &str) -> anyhow::Result<(String, String)> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let url = clients
        .sqs
        .create_queue()
        .queue_name(name)
        .attributes(A::FifoQueue, "true")
        .attributes(A::ContentBasedDeduplication, "true")
        .attributes(A::DeduplicationScope, "messageGroup")
        .attributes(A::FifoThroughputLimit, "perMessageGroupId")
        .attributes(A::VisibilityTimeout, "60")
        .send()
        .await?
        .queue_url()
        .context("no queue URL")?
        .to_string();
    let attributes = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(A::QueueArn)
        .send()
        .await?;
    let arn = attributes
        .attributes()
        .and_then(|a| a.get(&A::QueueArn))
        .context("no queue ARN")?
        .clone();
    Ok((url, arn))
}
