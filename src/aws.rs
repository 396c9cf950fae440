//! `crm aws …` (feature `aws`): creating the AWS stack, running the whole AWS topology
//! on one machine, rebuilding the Aurora read models from DynamoDB, redriving the
//! projector's dead-letter queue. AWS is reached through the standard SDK configuration
//! (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL[_<SERVICE>]`).

use anyhow::Context;
use aws_stack::{AwsClients, LocalOptions, LocalStack, Topology};
use clap::{Args, Subcommand};
use std::net::SocketAddr;

#[derive(Debug, Subcommand)]
pub(crate) enum AwsCommand {
    /// Create the tables, stream, bus, rules, queues, DLQ and user pool that do not exist
    /// yet, and the root admin (password from CRM_ROOT_PASSWORD); print what was made.
    Init {
        #[command(flatten)]
        stack: StackArgs,
        #[arg(long, env = "CRM_ROOT_USERNAME", default_value = "root")]
        root_username: String,
    },
    /// Run the AWS topology on this machine: DynamoDB Local and moto (from .tools/, see
    /// scripts/aws-local), the stack, both services, the mail Lambda's router, and the
    /// relay and projector handlers fed from the stream and the queue. Read models in a fresh PostgreSQL
    /// database.
    Local {
        #[command(flatten)]
        stack: StackArgs,
        #[arg(long, env = "CRM_COMMAND_ADDR", default_value = "127.0.0.1:8081")]
        command_addr: SocketAddr,
        #[arg(long, env = "CRM_QUERY_ADDR", default_value = "127.0.0.1:8082")]
        query_addr: SocketAddr,
        #[arg(long, env = "CRM_MAIL_ADDR", default_value = "127.0.0.1:8083")]
        mail_addr: SocketAddr,
        /// The front door: the API routed as the load balancer routes it, sign-in as
        /// Cognito's hosted pages do it, and the web UI — one address, as `crm serve`.
        #[arg(long, env = "CRM_ADDR", default_value = "127.0.0.1:8080")]
        front_addr: SocketAddr,
        /// The built web UI (`npm run build` in ui/), served by the front door.
        #[arg(long, env = "CRM_UI_DIR", default_value = "ui/dist")]
        ui_dir: std::path::PathBuf,
        /// The PostgreSQL server for the read models and the system log (Aurora's part).
        #[arg(
            long,
            env = "CRM_POSTGRES_URL",
            default_value = "postgres://postgres@127.0.0.1:5432"
        )]
        postgres_url: String,
        /// The read-model database on that server, made afresh at each start.
        #[arg(
            long,
            env = "CRM_READ_DATABASE_NAME",
            default_value = "ledgerline_aws_local"
        )]
        read_database_name: String,
        #[arg(long, env = "CRM_ROOT_USERNAME", default_value = "root")]
        root_username: String,
    },
    /// Project every event of the DynamoDB store into the (fresh) database at
    /// --read-database-url; then point the services and Lambdas at it.
    Rebuild {
        #[command(flatten)]
        stack: StackArgs,
        #[arg(long, env = "CRM_READ_DATABASE_URL")]
        read_database_url: String,
    },
    /// Print the topology: every table, key schema, stream, bus, rule, queue, DLQ and the
    /// user pool with its groups and password policy. `--json` is what infra/ declares
    /// its resources from (`infra/topology.json`; the test command checks they agree).
    Topology {
        #[command(flatten)]
        stack: StackArgs,
        /// Print the document as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create the root admin in a stack deployed by infra/ (password from
    /// CRM_ROOT_PASSWORD): a user of the pool in the root-admin group and its StaffUser
    /// stream. Nothing else is created or changed. Running it again is harmless.
    RootAdmin {
        #[command(flatten)]
        stack: StackArgs,
        #[arg(long, env = "CRM_ROOT_USERNAME", default_value = "root")]
        root_username: String,
    },
    /// Sign in as a member of staff through the user pool (`<prefix>staff`, app client
    /// `<prefix>ui`, USER_PASSWORD_AUTH) and print the access token: how to act as anyone
    /// in the local AWS mode. The password comes from CRM_PASSWORD.
    SignIn {
        #[command(flatten)]
        stack: StackArgs,
        #[arg(long, env = "CRM_USERNAME")]
        username: String,
    },
    /// Export the DynamoDB store for an outside auditor, in the format `crm audit verify`
    /// reads (docs/audit.md), into the empty directory --out; with --digest-bucket, the
    /// digests published there too, as --out/digests.jsonl.
    Export {
        #[command(flatten)]
        stack: StackArgs,
        #[arg(long)]
        out: std::path::PathBuf,
        /// The bucket the query service publishes digests to (its CRM_DIGEST_BUCKET).
        #[arg(long, env = "CRM_DIGEST_BUCKET")]
        digest_bucket: Option<String>,
    },
    /// Move the messages of the projector's dead-letter queue back to its queue.
    Redrive {
        #[command(flatten)]
        stack: StackArgs,
    },
}

#[derive(Debug, Args)]
pub(crate) struct StackArgs {
    /// The prefix every resource name of the deployment starts with.
    #[arg(long, env = "CRM_STACK_PREFIX", default_value = "crm-")]
    prefix: String,
}

pub(crate) async fn run(command: AwsCommand) -> anyhow::Result<()> {
    match command {
        AwsCommand::Init {
            stack,
            root_username,
        } => {
            let password = root_password(&root_username)?;
            let clients = AwsClients::new(&aws_config::load_from_env().await);
            let topology = Topology::new(stack.prefix);
            let created = aws_stack::init(&clients, &topology).await?;
            aws_stack::ensure_root(&clients, &created, &root_username, &password).await?;
            println!("{}", serde_json::to_string_pretty(&created)?);
            Ok(())
        }
        AwsCommand::Local {
            stack,
            command_addr,
            query_addr,
            mail_addr,
            front_addr,
            ui_dir,
            postgres_url,
            read_database_name,
            root_username,
        } => {
            let addrs = [command_addr, query_addr, mail_addr, front_addr];
            let database = (postgres_url.as_str(), read_database_name.as_str());
            local(stack, addrs, ui_dir, database, root_username).await
        }
        AwsCommand::RootAdmin {
            stack,
            root_username,
        } => {
            let password = root_password(&root_username)?;
            let clients = AwsClients::new(&aws_config::load_from_env().await);
            let topology = Topology::new(stack.prefix);
            let id =
                aws_stack::ensure_root_deployed(&clients, &topology, &root_username, &password)
                    .await?;
            println!("root admin {root_username}: staff id {id}");
            Ok(())
        }
        AwsCommand::SignIn { stack, username } => {
            let password = std::env::var("CRM_PASSWORD")
                .ok()
                .filter(|p| !p.is_empty())
                .context("CRM_PASSWORD is required: the password to sign in with")?;
            let clients = AwsClients::new(&aws_config::load_from_env().await);
            let topology = Topology::new(stack.prefix);
            let token = identity::sign_in_with_password(
                &clients.cognito,
                &topology.user_pool(),
                &topology.app_client(),
                &username,
                &password,
            )
            .await
            .with_context(|| format!("signing in as {username}"))?;
            println!("{token}");
            Ok(())
        }
        AwsCommand::Topology { stack, json } => {
            let document = Topology::new(stack.prefix).document();
            if json {
                println!("{}", serde_json::to_string_pretty(&document)?);
            } else {
                print!("{}", topology_text(&document));
            }
            Ok(())
        }
        AwsCommand::Rebuild {
            stack,
            read_database_url,
        } => {
            let clients = AwsClients::new(&aws_config::load_from_env().await);
            // Personal data opens with the key the services encrypt it under.
            let data_key = event_store::kms_master::data_key_from(|name| std::env::var(name).ok());
            let store = event_store::kms_master::dynamo_store(
                clients.dynamo,
                Topology::new(stack.prefix).tables(),
                &clients.digests.kms,
                data_key.as_deref(),
            )?;
            let rebuilt =
                aws_stack::rebuild(std::sync::Arc::new(store), &read_database_url).await?;
            println!(
                "projected {} events ({} applied) into {read_database_url}",
                rebuilt.events, rebuilt.applied
            );
            Ok(())
        }
        AwsCommand::Export {
            stack,
            out,
            digest_bucket,
        } => {
            let clients = AwsClients::new(&aws_config::load_from_env().await);
            let topology = Topology::new(stack.prefix);
            let exported =
                aws_stack::export_for_audit(&clients, &topology, &out, digest_bucket.as_deref())
                    .await?;
            println!(
                "exported {} events ({} in the Merkle log) to {}",
                exported.events,
                exported.log_size,
                out.display()
            );
            if let Some(digests) = exported.digests {
                println!(
                    "and {digests} digests to {}",
                    out.join("digests.jsonl").display()
                );
            }
            Ok(())
        }
        AwsCommand::Redrive { stack } => {
            let clients = AwsClients::new(&aws_config::load_from_env().await);
            let topology = Topology::new(stack.prefix);
            let url = |name: String| {
                let sqs = clients.sqs.clone();
                async move {
                    sqs.get_queue_url()
                        .queue_name(&name)
                        .send()
                        .await
                        .with_context(|| format!("queue {name}"))
                        .map(|q| q.queue_url().unwrap_or_default().to_string())
                }
            };
            let (dlq, queue) = (
                url(topology.projector_dlq()).await?,
                url(topology.projector_queue()).await?,
            );
            let moved = aws_stack::redrive(&clients.sqs, &dlq, &queue).await?;
            println!("moved {moved} messages from {dlq} to {queue}");
            Ok(())
        }
    }
}

/// The root admin's first password (CRM_ROOT_PASSWORD, never an argument, so it does not
/// show in `ps`), checked against the staff password rule.
fn root_password(username: &str) -> anyhow::Result<String> {
    let password = std::env::var("CRM_ROOT_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
        .context("CRM_ROOT_PASSWORD is required: the root admin's first password")?;
    check_root_password(&password, username)?;
    Ok(password)
}

/// The staff password rule, checked before anything is created: the pool has the same
/// policy ([`identity::PASSWORD_POLICY`]), so it would refuse what this refuses, later.
fn check_root_password(password: &str, username: &str) -> anyhow::Result<()> {
    identity::check_strength(password, &[username])
        .map_err(|rule| anyhow::anyhow!("CRM_ROOT_PASSWORD {rule}"))
}

fn topology_text(document: &aws_stack::TopologyDocument) -> String {
    let mut text = String::new();
    for table in &document.tables {
        let sort = table
            .sort_key
            .as_ref()
            .map(|key| format!(", sort {} ({})", key.name, key.kind))
            .unwrap_or_default();
        let stream = table
            .stream
            .map(|view| format!(", stream {view}"))
            .unwrap_or_default();
        text += &format!(
            "table  {}: partition {} ({}){sort}{stream}\n",
            table.name, table.partition_key.name, table.partition_key.kind
        );
    }
    text += &format!("bus    {}\n", document.bus);
    for rule in &document.rules {
        text += &format!(
            "rule   {}: {} -> {} (group {})\n",
            rule.name,
            rule.pattern,
            rule.targets.join(", "),
            rule.message_group_id
        );
    }
    for queue in &document.queues {
        text += &format!(
            "queue  {} ({}): DLQ {} after {} receives, visibility {} s\n",
            queue.name,
            queue.role,
            queue.dead_letter_queue,
            queue.max_receive_count,
            queue.visibility_timeout_seconds
        );
    }
    let pool = &document.user_pool;
    text += &format!(
        "pool   {} (app client {}; groups {}; passwords {}-{} characters)\n",
        pool.name,
        pool.app_client,
        pool.groups.join(", "),
        pool.password_policy.minimum_length,
        pool.password_policy.maximum_length
    );
    text
}

async fn local(
    stack: StackArgs,
    [command_addr, query_addr, mail_addr, front_addr]: [SocketAddr; 4],
    ui_dir: std::path::PathBuf,
    (postgres_url, database_name): (&str, &str),
    root_username: String,
) -> anyhow::Result<()> {
    let root_password = std::env::var("CRM_ROOT_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| format!("Local-{}-1", uuid::Uuid::now_v7().simple()));
    check_root_password(&root_password, &root_username)?;
    eprintln!("starting DynamoDB Local and moto…");
    let tools = local_peers::Tools::from_env();
    let dynamodb_local = local_peers::dynamodb_local(&tools).await?;
    let moto = local_peers::moto(&tools).await?;
    let read_database_url = local_peers::postgres::recreate(postgres_url, database_name)
        .await
        .context("PostgreSQL (scripts/aws-local starts it)")?;
    let clients = AwsClients::split(
        &local_peers::aws_config(&dynamodb_local.endpoint).await,
        &local_peers::aws_config(&moto.endpoint).await,
    );
    let running = LocalStack::start(
        clients,
        LocalOptions {
            topology: Topology::new(stack.prefix),
            read_database_url: read_database_url.clone(),
            command_addr,
            query_addr,
            mail_addr,
            front_addr,
            ui_dir: Some(ui_dir),
            mail_from: "no-reply@ledgerline.local".into(),
            root_username: root_username.clone(),
            root_password: root_password.clone(),
            region: "us-east-1".into(),
            jwks_base: Some(moto.endpoint.clone()),
            projector_workers: aws_stack::local::DEFAULT_PROJECTOR_WORKERS,
        },
    )
    .await?;
    println!(
        "{}",
        local_banner(
            &running,
            &dynamodb_local.endpoint,
            &moto.endpoint,
            &read_database_url,
            &root_username,
            &root_password
        )
    );
    api_kit::serve::stopped().await;
    running.stop().await;
    Ok(())
}

fn local_banner(
    running: &LocalStack,
    dynamodb: &str,
    moto: &str,
    database: &str,
    username: &str,
    password: &str,
) -> String {
    let client = &running.stack.app_client_id;
    // The password goes in single quotes in the shell line above.
    let password = password.replace('\'', "'\\''");
    format!(
        "The AWS topology is running on this machine.

  front door               {front}   (the API as the load balancer routes it, sign-in, the UI)
  commands (command-api)   {commands}
  queries  (query-api)     {queries}
  mail     (mail Lambda)   {mail}   (sends through SES on moto)
  DynamoDB Local           {dynamodb}   (event store, stream)
  moto                     {moto}   (EventBridge, SQS, Cognito)
  read models              {database}
  user pool / app client   {pool} / {client}
  root admin               {username} / {password}

The front door is what CloudFront, the load balancer and Cognito's sign-in pages are in
AWS: open {front} for the web UI (built with `npm run build` in ui/), or follow the
README's walkthrough against it as against `crm serve` — `POST /auth/login` signs in
through the user pool and hands out its tokens:

  curl -s -X POST {front}/auth/login -H 'content-type: application/json' \\
    -d '{{\"username\":\"{username}\",\"password\":\"…\"}}'

Sign-ins, failed sign-ins and every refusal (403) are in the system log
(GET {front}/v1/system-log). Every service answers /health/ready and /metrics.
Against a deployed stack, `crm aws sign-in --username NAME` (password from CRM_PASSWORD)
prints an access token.

Stack: {stack}
Ctrl-C stops everything (DynamoDB Local and moto keep nothing).",
        front = running.front_url,
        commands = running.command_url,
        queries = running.query_url,
        mail = running.mail_url,
        pool = running.stack.user_pool_id,
        stack = serde_json::to_string(&running.stack).unwrap_or_default(),
    )
}
