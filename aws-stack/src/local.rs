//! The whole AWS topology on one machine: the stack is created on the peers the clients
//! point at (DynamoDB Local and moto in `crm aws local`, real AWS works the same), both
//! services are served, and the Lambda handlers run from their event sources — the
//! relay from the events table's stream, the projector from its queue — exactly as the
//! deployed functions would, through [`crate::mapping`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::StaffId;
use event_store::EventStore;
use identity::CognitoConfig;
use projections::{CatchUp, Projector, ReadStore, SystemLog};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clients::AwsClients;
use crate::error::StackError;
use crate::init::{ensure_root, init, Stack};
use crate::mapping::{QueueMapping, StreamMapping};
use crate::topology::Topology;

/// How long an idle event source waits before looking again.
const IDLE: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct LocalOptions {
    pub topology: Topology,
    /// The read models and system log (PostgreSQL, as Aurora is).
    pub read_database_url: String,
    pub command_addr: SocketAddr,
    pub query_addr: SocketAddr,
    /// The mail service (the Lambda behind the ALB in AWS), sending through SES.
    pub mail_addr: SocketAddr,
    /// The front door: the API by the load balancer's rules, sign-in, the UI.
    pub front_addr: SocketAddr,
    /// The built UI the front door serves, if any.
    pub ui_dir: Option<std::path::PathBuf>,
    /// The sender address; verified in SES at start.
    pub mail_from: String,
    pub root_username: String,
    pub root_password: String,
    pub region: String,
    /// Where the pool's keys are served when not at the issuer (moto serves them at
    /// `<endpoint>/<pool-id>/.well-known/jwks.json`).
    pub jwks_base: Option<String>,
    /// Projector Lambdas running at once (the event source mapping's maximum
    /// concurrency): each takes batches from the queue; SQS gives no two of them the
    /// same stream at once.
    pub projector_workers: usize,
}

/// How often the local stack signs a digest while the ledger grows (as `crm serve`).
const DIGEST_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);

/// How many projector workers the local stack runs unless told otherwise.
pub const DEFAULT_PROJECTOR_WORKERS: usize = 4;

pub struct LocalStack {
    pub stack: Stack,
    pub root_id: StaffId,
    pub command_url: String,
    pub query_url: String,
    pub mail_url: String,
    pub front_url: String,
    pub cognito: CognitoConfig,
    /// The KMS keys and the digest bucket it made.
    pub keys: crate::init::LocalKeys,
    /// The event store as its services open it (clients' personal data encrypted).
    store: Arc<EventStore>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    projected: Arc<Mutex<CatchUp>>,
}

impl LocalStack {
    /// Creates the stack and starts the services and the Lambda handlers.
    pub async fn start(clients: AwsClients, options: LocalOptions) -> Result<Self, StackError> {
        let stack = init(&clients, &options.topology).await?;
        let root_id = ensure_root(
            &clients,
            &stack,
            &options.root_username,
            &options.root_password,
        )
        .await?;
        let issuer = format!(
            "https://cognito-idp.{}.amazonaws.com/{}",
            options.region, stack.user_pool_id
        );
        let jwks_url = match &options.jwks_base {
            Some(base) => format!("{base}/{}/.well-known/jwks.json", stack.user_pool_id),
            None => format!("{issuer}/.well-known/jwks.json"),
        };
        let cognito = CognitoConfig {
            user_pool_id: stack.user_pool_id.clone(),
            client_ids: vec![stack.app_client_id.clone()],
            issuer,
            jwks_url,
        };
        let (shutdown, stopped) = watch::channel(false);
        let mut tasks = Vec::new();

        let keys = crate::init::local_keys(&clients, &options.topology).await?;
        let commands = command_api::service::router(
            &command_api::service::ServiceConfig {
                addr: options.command_addr,
                table_prefix: stack.table_prefix.clone(),
                read_database_url: options.read_database_url.clone(),
                cognito: cognito.clone(),
                data_key: Some(keys.data_key.clone()),
            },
            clients.dynamo.clone(),
            clients.cognito.clone(),
            clients.digests.kms.clone(),
        )
        .await
        .map_err(StackError::Setup)?;
        let queries = query_api::service::router(
            &query_api::service::ServiceConfig {
                addr: options.query_addr,
                read_database_url: options.read_database_url.clone(),
                table_prefix: stack.table_prefix.clone(),
                data_key: Some(keys.data_key.clone()),
                digests: query_api::service::DigestConfig {
                    kms_key: keys.digest_key.clone(),
                    bucket: keys.digest_bucket.clone(),
                    retired_keys: Vec::new(),
                    interval: DIGEST_INTERVAL,
                },
                cognito: cognito.clone(),
            },
            clients.dynamo.clone(),
            clients.cognito.clone(),
            clients.digests.clone(),
        )
        .await
        .map_err(StackError::Setup)?;
        let (command_url, task) = serve(options.command_addr, commands, stopped.clone()).await?;
        tasks.push(task);
        let (query_url, task) = serve(options.query_addr, queries, stopped.clone()).await?;
        tasks.push(task);
        let mail = mail_router(&clients, &options, &stack, &cognito, &keys.data_key).await?;
        let (mail_url, task) = serve(options.mail_addr, mail, stopped.clone()).await?;
        tasks.push(task);

        let publisher = relay::Relay::new(clients.events.clone(), stack.bus.clone())
            .with_projector_queue(clients.sqs.clone(), stack.projector_queue_url.clone())
            .keeping_log(event_store::DynamoStore::new(
                clients.dynamo.clone(),
                options.topology.tables(),
            ));
        let stream = StreamMapping::new(clients.streams.clone(), stack.events_stream_arn.clone());
        tasks.push(tokio::spawn(run_relay(publisher, stream, stopped.clone())));

        let store = Arc::new(event_store::kms_master::dynamo_store(
            clients.dynamo.clone(),
            options.topology.tables(),
            &clients.digests.kms,
            Some(&keys.data_key),
        )?);
        let read = Arc::new(ReadStore::open(&options.read_database_url).await?);
        let log = Arc::new(SystemLog::open(&options.read_database_url).await?);
        let projector = Arc::new(Projector::new(store.clone(), read, log.clone()));
        let projected = Arc::new(Mutex::new(CatchUp::default()));
        let receiving = Arc::new(tokio::sync::Mutex::new(()));
        for _ in 0..options.projector_workers.max(1) {
            let queue = QueueMapping::new(
                clients.sqs.clone(),
                stack.projector_queue_url.clone(),
                stack.projector_queue_arn.clone(),
            )
            .receiving_under(receiving.clone());
            tasks.push(tokio::spawn(run_projector(
                projector.clone(),
                queue,
                projected.clone(),
                stopped.clone(),
            )));
        }

        let door = crate::front_door::router(
            crate::front_door::FrontDoorConfig {
                commands_url: command_url.clone(),
                queries_url: query_url.clone(),
                mail_url: mail_url.clone(),
                user_pool_id: stack.user_pool_id.clone(),
                app_client_id: stack.app_client_id.clone(),
                region: options.region.clone(),
                issuer: cognito.issuer.clone(),
                jwks_url: cognito.jwks_url.clone(),
                ui_dir: options.ui_dir.clone(),
            },
            clients.cognito.clone(),
            log,
        );
        let (front_url, task) = serve(options.front_addr, door, stopped).await?;
        tasks.push(task);

        Ok(LocalStack {
            stack,
            root_id,
            command_url,
            query_url,
            mail_url,
            front_url,
            cognito,
            keys,
            store,
            shutdown,
            tasks,
            projected,
        })
    }

    /// The event store as the services open it.
    pub fn store(&self) -> Arc<EventStore> {
        self.store.clone()
    }

    /// What the projector workers did so far, together.
    pub fn projected(&self) -> CatchUp {
        *self
            .projected
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stops serving and polling, and waits for both.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// The mail Lambda's router, with its sender verified in SES.
async fn mail_router(
    clients: &AwsClients,
    options: &LocalOptions,
    stack: &Stack,
    cognito: &CognitoConfig,
    data_key: &str,
) -> Result<axum::Router, StackError> {
    match clients
        .ses
        .create_email_identity()
        .email_identity(&options.mail_from)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_already_exists_exception()) => {}
        Err(e) => return Err(StackError::aws(&options.mail_from, e)),
    }
    let config = mail::lambda::LambdaConfig {
        table_prefix: stack.table_prefix.clone(),
        read_database_url: options.read_database_url.clone(),
        cognito: cognito.clone(),
        mail: mail::MailSettings {
            from: options.mail_from.clone(),
            ..Default::default()
        },
        data_key: Some(data_key.to_string()),
    };
    mail::lambda::router(
        &config,
        mail::lambda::AwsClients {
            dynamo: clients.dynamo.clone(),
            cognito: clients.cognito.clone(),
            ses: clients.ses.clone(),
            bedrock: clients.bedrock.clone(),
            kms: clients.digests.kms.clone(),
        },
    )
    .await
    .map_err(StackError::Setup)
}

async fn serve(
    addr: SocketAddr,
    router: axum::Router,
    mut stopped: watch::Receiver<bool>,
) -> Result<(String, JoinHandle<()>), StackError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| StackError::Setup(format!("binding {addr}: {e}")))?;
    let url = format!(
        "http://{}",
        listener
            .local_addr()
            .map_err(|e| StackError::Setup(e.to_string()))?
    );
    let task = tokio::spawn(async move {
        let until = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        if let Err(error) = api_kit::serve::serve(listener, router, Default::default(), until).await
        {
            tracing::error!(%error, "a local service stopped");
        }
    });
    Ok((url, task))
}

/// The relay Lambda, fed from the events table's stream.
async fn run_relay(
    publisher: relay::Relay,
    mut stream: StreamMapping,
    mut stopped: watch::Receiver<bool>,
) {
    let publisher = &publisher;
    while !*stopped.borrow() {
        let wait = match stream
            .poll(|batch| relay::lambda::handle(publisher, batch))
            .await
        {
            Ok(0) => IDLE,
            Ok(_) => Duration::ZERO,
            Err(error) => {
                tracing::warn!(%error, "reading the events stream");
                IDLE * 5
            }
        };
        tokio::select! {
            _ = stopped.changed() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// One projector Lambda, fed from its queue.
async fn run_projector(
    projector: Arc<Projector>,
    queue: QueueMapping,
    projected: Arc<Mutex<CatchUp>>,
    mut stopped: watch::Receiver<bool>,
) {
    let projector = &projector;
    let handle = |batch| {
        let projected = projected.clone();
        async move {
            let (response, stats) = projections::lambda::handle_counted(projector, batch).await;
            projected
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .add(&stats);
            response
        }
    };
    while !*stopped.borrow() {
        let received = tokio::select! {
            _ = stopped.changed() => break,
            received = queue.poll(&handle) => received,
        };
        if let Err(error) = received {
            tracing::warn!(%error, "receiving from the projector queue");
            tokio::time::sleep(IDLE * 5).await;
        }
    }
}

/// What one worker did draining a queue.
#[derive(Debug, Clone, Copy)]
pub struct Drained {
    pub stats: CatchUp,
    pub batches: usize,
    /// When its last batch was done (the empty receive after it is not work).
    pub finished: Option<std::time::Instant>,
    /// Time spent in SQS calls (receiving and deleting), and applying batches.
    pub in_sqs: std::time::Duration,
    pub applying: std::time::Duration,
}

/// One projector worker on a queue that is not being fed: takes batches until a
/// receive finds none.
pub async fn drain_queue(
    projector: &Projector,
    queue: &QueueMapping,
) -> Result<Drained, StackError> {
    let mut drained = Drained {
        stats: CatchUp::default(),
        batches: 0,
        finished: None,
        in_sqs: std::time::Duration::ZERO,
        applying: std::time::Duration::ZERO,
    };
    loop {
        let receiving = std::time::Instant::now();
        let messages = queue.receive().await?;
        if messages.is_empty() {
            return Ok(drained);
        }
        let applying = std::time::Instant::now();
        drained.in_sqs += applying - receiving;
        let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
        event.records = messages.clone();
        let (response, stats) = projections::lambda::handle_counted(projector, event).await;
        let deleting = std::time::Instant::now();
        drained.applying += deleting - applying;
        queue.complete(&messages, &response).await?;
        drained.in_sqs += deleting.elapsed();
        drained.stats.add(&stats);
        drained.batches += 1;
        drained.finished = Some(std::time::Instant::now());
    }
}
