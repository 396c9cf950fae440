//! Ledgerline's benchmark. `load`: starts `crm serve` (the release build) on a fresh data
//! directory, drives it over loopback HTTP with N concurrent clients on many accounts,
//! and prints commands/s, command latency p50/p99, projection lag p50/p99 (command
//! accepted → visible in the query API) and the server's peak RSS. `replay`: writes
//! N events to a fresh store and times rebuilding the read models from them.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(feature = "aws")]
mod aws;
mod ledger;
mod postgres;
mod scale;
mod search;
mod seed;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

/// `load`'s options.
#[derive(clap::Args)]
struct LoadArgs {
    /// The crm binary (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/crm")]
    crm: PathBuf,
    #[arg(long, default_value_t = 32)]
    clients: usize,
    #[arg(long, default_value_t = 500)]
    accounts: usize,
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Of the clients, how many also wait for each of their commands to show in the
    /// query API (polling every 2 ms), measuring projection lag.
    #[arg(long, default_value_t = 4)]
    probes: usize,
    /// Send every command with its own Idempotency-Key, as the UI does (each then
    /// claims, leases and stores its answer).
    #[arg(long)]
    idempotency_keys: bool,
    /// Offer this many commands/s in all, each client on a fixed schedule, instead of
    /// each sending its next command as soon as the last is answered. Latency is
    /// then counted from when a command was due, so a slow answer also counts
    /// against the commands it delayed.
    #[arg(long)]
    rate: Option<f64>,
}

#[derive(Subcommand)]
enum Bench {
    /// Commands over HTTP against `crm serve`.
    Load(LoadArgs),
    /// Commands straight on the event store (no HTTP): what durable commits allow.
    Store {
        #[arg(long, default_value_t = 64)]
        tasks: usize,
        #[arg(long, default_value_t = 1000)]
        accounts: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Turn group commit off to see what it is worth.
        #[arg(long)]
        no_group_commit: bool,
        /// Turn the aggregate cache off to see what it is worth.
        #[arg(long)]
        no_cache: bool,
    },
    /// Rebuild throughput over a store of `events` events, then reading them back: the
    /// raw scan, chain verification and an auditor's fold.
    Replay {
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
    },
    /// The verifiable ledger's costs: commands with the Merkle log followed against
    /// without (rounds alternated), then on a store of `events` events the log built,
    /// digests, proofs, the whole-ledger check, export and offline verification.
    Ledger {
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[arg(long, default_value_t = 8)]
        seconds: u64,
        #[arg(long, default_value_t = 64)]
        writers: usize,
    },
    /// The event store on PostgreSQL against pgbench's single-row inserts of the same
    /// shape, at each number of concurrent writers.
    Postgres {
        /// The server, without a database (a fresh one is made and dropped).
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
        url: String,
        #[arg(long, value_delimiter = ',', default_value = "8,32")]
        writers: Vec<usize>,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// The store's connections: as many as writers by default.
        #[arg(long)]
        pool: Option<u32>,
        /// Rounds of the store then pgbench at each concurrency; the median ratio is
        /// printed after them.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Projection throughput of the AWS path by number of projector workers, on the
    /// local AWS mode's peers (build with `--features aws`).
    #[cfg(feature = "aws")]
    AwsProjection {
        #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
        workers: Vec<usize>,
        #[arg(long, default_value_t = 200)]
        accounts: usize,
        /// Deposits per account, after its opening.
        #[arg(long, default_value_t = 9)]
        deposits: usize,
    },
    /// How read, restart and verification costs grow with history: `base` clients
    /// times each factor, with `long-accounts` accounts (one by default) of
    /// `long-length` deposits (1,000 × factor by default).
    Scale {
        #[arg(long, default_value = "target/release/crm")]
        crm: PathBuf,
        #[arg(long, default_value_t = 1_000)]
        base: usize,
        #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
        factors: Vec<usize>,
        /// Long accounts beside the clients' (the last is measured).
        #[arg(long, default_value_t = 1)]
        long_accounts: usize,
        /// Each long account's deposits (default: 1,000 × the factor).
        #[arg(long)]
        long_length: Option<usize>,
    },
    /// Client search over HTTP on a data directory `seed` made: `samples` searches for
    /// four letters of a surname as bench.agent and as bench.auditor, once the read
    /// models have caught up (the first start catches them up).
    Search {
        #[arg(long, default_value = "target/release/crm")]
        crm: PathBuf,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 200)]
        samples: usize,
    },
    /// A bank's year in a `crm serve` data directory, written through the event store:
    /// `clients` clients with `accounts-per-client` accounts of `deposits` deposits
    /// each, spread over agents of `clients-per-agent` clients, and `long-accounts`
    /// accounts of `long-length` transactions. Not a measurement: it prints what it
    /// wrote and how fast, and leaves the directory.
    Seed {
        #[arg(long, default_value = "target/release/crm")]
        crm: PathBuf,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        clients: usize,
        #[arg(long, default_value_t = 2)]
        accounts_per_client: usize,
        #[arg(long, default_value_t = 4)]
        deposits: usize,
        #[arg(long, default_value_t = 3)]
        long_accounts: usize,
        #[arg(long, default_value_t = 100_000)]
        long_length: usize,
        #[arg(long, default_value_t = seed::CLIENTS_PER_AGENT)]
        clients_per_agent: usize,
    },
}

/// The metadata of the commands a benchmark writes straight to a store.
pub(crate) fn seed_metadata() -> domain::metadata::CommandMetadata {
    domain::metadata::CommandMetadata {
        actor_id: "bench".into(),
        actor_role: domain::policy::Role::Agent,
        correlation_id: "bench".into(),
        causation_id: "bench".into(),
        idempotency_key: None,
        occurred_at: chrono::Utc::now(),
    }
}

/// Opening account `id`: a checking account in `currency`, for a new client, empty.
pub(crate) fn open_checking(
    id: domain::AccountId,
    currency: domain::Currency,
) -> domain::account::AccountCommand {
    domain::account::AccountCommand::Open {
        account_id: id,
        client_id: domain::ClientId::new(),
        client: domain::client::ClientStanding::Active,
        account_type: domain::account::AccountType::Checking,
        currency,
        initial_deposit: None,
        opening_transaction_id: domain::TransactionId::new(),
        account_number: domain::AccountNumber::derived(id),
    }
}

/// The same allocator as `crm`, so that `replay` measures what the server does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Bench::Load(args) => load(args).await,
        Bench::Replay { events } => replay(events).await,
        Bench::Scale {
            crm,
            base,
            factors,
            long_accounts,
            long_length,
        } => {
            let long = scale::Long {
                accounts: long_accounts,
                length: long_length,
            };
            scale::scale(crm, base, factors, long).await
        }
        Bench::Search { crm, dir, samples } => search::search(crm, dir, samples).await,
        Bench::Seed {
            crm,
            dir,
            clients,
            accounts_per_client,
            deposits,
            long_accounts,
            long_length,
            clients_per_agent,
        } => {
            let shape = seed::Shape {
                clients,
                accounts_per_client,
                deposits_per_account: deposits,
                long_accounts,
                long_length,
                clients_per_agent,
            };
            seed::seed(crm, dir, shape).await
        }
        #[cfg(feature = "aws")]
        Bench::AwsProjection {
            workers,
            accounts,
            deposits,
        } => aws::aws_projection(workers, accounts, deposits).await,
        Bench::Ledger {
            events,
            rounds,
            seconds,
            writers,
        } => ledger::ledger(events, rounds, seconds, writers).await,
        Bench::Postgres {
            url,
            writers,
            seconds,
            pool,
            rounds,
        } => postgres::postgres(&url, writers, seconds, pool, rounds).await,
        Bench::Store {
            tasks,
            accounts,
            seconds,
            no_group_commit,
            no_cache,
        } => store(tasks, accounts, seconds, !no_group_commit, !no_cache).await,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Peak resident set size of a process, from /proc.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU seconds (user and system) a process has used so far, from `/proc/PID/stat`.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks_per_second()?)
}

/// The kernel's clock ticks per second, in which `/proc` gives CPU time.
fn clock_ticks_per_second() -> Option<f64> {
    static TICKS: std::sync::OnceLock<Option<f64>> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        let out = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()?;
        String::from_utf8(out.stdout).ok()?.trim().parse().ok()
    })
}

struct Server(Child);

impl Server {
    /// `crm serve` on `data_dir` and a free loopback port, once it answers ready; with
    /// its base URL.
    async fn start(
        crm: &std::path::Path,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<(Self, String)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(crm)
            .args([
                "serve",
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data_dir)
            .env("CRM_ROOT_PASSWORD", "bench-root-password")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {} (cargo build --release first)", crm.display()))?;
        let server = Server(child);
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let ready = Instant::now();
        while http
            .get(format!("{base}/health/ready"))
            .send()
            .await
            .map(|r| !r.status().is_success())
            .unwrap_or(true)
        {
            if ready.elapsed() > Duration::from_secs(120) {
                bail!("crm serve did not become ready");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok((server, base))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn post(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> anyhow::Result<(u16, Value)> {
    post_keyed(http, url, token, body, None).await
}

async fn post_keyed(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
    key: Option<String>,
) -> anyhow::Result<(u16, Value)> {
    let mut request = http.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

async fn login(
    http: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<String> {
    let (_, body) = post(
        http,
        format!("{base}/auth/login"),
        None,
        json!({"username": username, "password": password}),
    )
    .await?;
    Ok(body["access_token"]
        .as_str()
        .context("login failed")?
        .to_string())
}

/// The bench's staff, created by root through the API: tokens, and the agent's id.
struct Staff {
    admin: String,
    agent: String,
    auditor: String,
    /// Every bench agent's id: `bench.agent` first, then `bench.agent.2` and so on.
    agent_ids: Vec<String>,
}

impl Staff {
    /// The bench's admin and auditor and `agents` agents (at least `bench.agent`).
    async fn create(http: &reqwest::Client, base: &str, agents: usize) -> anyhow::Result<Self> {
        let root = login(http, base, "root", "bench-root-password").await?;
        let staff = |username: &str, role: &str| json!({"username": username, "email": format!("{username}@bank.example"), "full_name": "Bench", "role": role, "password": "bench-password-1"});
        post(
            http,
            format!("{base}/v1/staff"),
            Some(&root),
            staff("bench.admin", "admin"),
        )
        .await?;
        let admin = login(http, base, "bench.admin", "bench-password-1").await?;
        post(
            http,
            format!("{base}/v1/staff"),
            Some(&admin),
            staff("bench.auditor", "auditor"),
        )
        .await?;
        let mut agent_ids = Vec::with_capacity(agents.max(1));
        for n in 1..=agents.max(1) {
            let username = match n {
                1 => "bench.agent".to_string(),
                n => format!("bench.agent.{n}"),
            };
            let (status, agent) = post(
                http,
                format!("{base}/v1/staff"),
                Some(&admin),
                staff(&username, "agent"),
            )
            .await?;
            anyhow::ensure!(status == 201, "creating {username}: {status} {agent}");
            agent_ids.push(agent["id"].as_str().context("the agent's id")?.to_string());
        }
        Staff {
            admin,
            agent: String::new(),
            auditor: String::new(),
            agent_ids,
        }
        .log_in(http, base)
        .await
    }

    /// The bench staff of a seeded directory, signed in (the agents' ids unknown).
    async fn signed_in(http: &reqwest::Client, base: &str) -> anyhow::Result<Self> {
        Staff {
            admin: String::new(),
            agent: String::new(),
            auditor: String::new(),
            agent_ids: Vec::new(),
        }
        .log_in(http, base)
        .await
    }

    /// Fresh tokens (after a restart, say).
    async fn log_in(self, http: &reqwest::Client, base: &str) -> anyhow::Result<Self> {
        Ok(Staff {
            admin: login(http, base, "bench.admin", "bench-password-1").await?,
            agent: login(http, base, "bench.agent", "bench-password-1").await?,
            auditor: login(http, base, "bench.auditor", "bench-password-1").await?,
            agent_ids: self.agent_ids,
        })
    }
}

async fn load(args: LoadArgs) -> anyhow::Result<()> {
    let LoadArgs {
        crm,
        clients,
        accounts,
        seconds,
        probes,
        idempotency_keys,
        rate,
    } = args;
    if let Some(rate) = rate {
        anyhow::ensure!(rate > 0.0, "--rate must be above 0 commands/s");
    }
    // Each client's time between commands when the rate is fixed.
    let interval = rate.map(|rate| Duration::from_secs_f64(clients as f64 / rate));
    let dir = tempfile::tempdir()?;
    // The digest key is made beside the data directory: inside `dir` too.
    let (server, base) = Server::start(&crm, &dir.path().join("data")).await?;
    let pid = server.0.id();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients * 2)
        .build()?;
    let agent = Staff::create(&http, &base, 1).await?.agent;
    let mut ids = Vec::with_capacity(accounts);
    let client_body = json!({"first_name": "Bench", "last_name": "Client", "date_of_birth": "1980-01-01", "gender": "unspecified",
        "email": "bench@example.com", "phone": "+3531234567",
        "address": {"line1": "1 Main St", "city": "Dublin", "country": "IE", "postal_code": "D01"}});
    for n in 0..accounts {
        let (_, client) = post(
            &http,
            format!("{base}/v1/clients"),
            Some(&agent),
            client_body.clone(),
        )
        .await?;
        let client = client["id"].as_str().context("client")?.to_string();
        let (_, account) = post(&http, format!("{base}/v1/clients/{client}/accounts"), Some(&agent),
            json!({"account_type": "checking", "currency": "EUR", "initial_deposit": {"amount_minor": 1_000_000, "currency": "EUR"}})).await?;
        ids.push(
            account["id"]
                .as_str()
                .with_context(|| format!("account {n}"))?
                .to_string(),
        );
    }
    let ids = Arc::new(ids);
    match rate {
        Some(rate) => println!("setup: {accounts} accounts; offering {rate:.0} commands/s from {clients} clients for {seconds} s"),
        None => println!("setup: {accounts} accounts; running {clients} clients for {seconds} s"),
    }

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let server_cpu = cpu_seconds(&pid.to_string());
    let own_cpu = cpu_seconds("self");
    let tasks: Vec<_> = (0..clients)
        .map(|worker| {
            let (http, base, agent, ids) = (http.clone(), base.clone(), agent.clone(), ids.clone());
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(worker as u64);
                let mut s = LoadSamples::default();
                let probe = worker < probes;
                // Clients' schedules are spread over one interval.
                let mut due = started + interval.unwrap_or_default() * worker as u32 / clients as u32;
                while Instant::now() < deadline {
                    let account = &ids[rng.gen_range(0..ids.len())];
                    let kind = if rng.gen_bool(0.7) { "deposits" } else { "withdrawals" };
                    let body = json!({"amount": {"amount_minor": rng.gen_range(1..100), "currency": "EUR"}});
                    let key = idempotency_keys.then(|| format!("bench-{worker}-{}", rng.gen::<u64>()));
                    // At a fixed rate, latency runs from when the command was due.
                    let sent = match interval {
                        Some(interval) => {
                            if due >= deadline {
                                break;
                            }
                            // How late the generator's own timer sent a command it was free
                            // to send on time: counted in the latency, not the server's doing.
                            if due > Instant::now() {
                                tokio::time::sleep_until(due.into()).await;
                                s.late.push(due.elapsed());
                            }
                            let sent = due;
                            due += interval;
                            sent
                        }
                        None => Instant::now(),
                    };
                    let on_wire = Instant::now();
                    match post_keyed(&http, format!("{base}/v1/accounts/{account}/{kind}"), Some(&agent), body, key).await {
                        Ok((201, reply)) => {
                            s.latencies.push(sent.elapsed());
                            s.answered.push(on_wire.elapsed());
                            if probe {
                                let version = reply["version"].as_u64().unwrap_or(0);
                                let accepted = Instant::now();
                                // When the last poll that did not see it was sent: the view
                                // changed after that, so the lag lies between the two.
                                let mut unseen = Duration::ZERO;
                                loop {
                                    let polled = accepted.elapsed();
                                    let view = match http.get(format!("{base}/v1/accounts/{account}")).bearer_auth(&agent).send().await {
                                        Ok(response) => response.json::<Value>().await.unwrap_or(Value::Null),
                                        Err(_) => Value::Null,
                                    };
                                    if view["version"].as_u64().unwrap_or(0) >= version {
                                        s.lags.push(accepted.elapsed());
                                        s.floors.push(unseen);
                                        break;
                                    }
                                    unseen = polled;
                                    if accepted.elapsed() > Duration::from_secs(10) {
                                        s.errors += 1;
                                        break;
                                    }
                                    tokio::time::sleep(Duration::from_millis(2)).await;
                                }
                                // Time spent waiting for the view is the probe's, not the
                                // server's: the missed slots are skipped, not sent late.
                                due = due.max(Instant::now());
                            }
                        }
                        _ => s.errors += 1,
                    }
                }
                s
            })
        })
        .collect();
    let mut all = LoadSamples::default();
    for task in tasks {
        all.merge(task.await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let server_cpu = cpu_seconds(&pid.to_string())
        .zip(server_cpu)
        .map(|(b, a)| b - a);
    let own_cpu = cpu_seconds("self").zip(own_cpu).map(|(b, a)| b - a);
    for samples in [
        &mut all.latencies,
        &mut all.lags,
        &mut all.floors,
        &mut all.late,
        &mut all.answered,
    ] {
        samples.sort();
    }
    let LoadSamples {
        latencies,
        lags,
        floors,
        late,
        answered,
        errors,
    } = all;
    println!(
        "commands:        {} accepted, {errors} failed, {:.0} commands/s",
        latencies.len(),
        latencies.len() as f64 / elapsed
    );
    println!(
        "latency:         p50 {}  p99 {}  max {}",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(percentile(&latencies, 1.0))
    );
    println!(
        "projection lag:  p50 {}  p99 {}  ({} samples)",
        ms(percentile(&lags, 0.5)),
        ms(percentile(&lags, 0.99)),
        lags.len()
    );
    println!(
        "  not yet seen:  p50 {}  p99 {}  (the last poll that missed it; the lag lies between)",
        ms(percentile(&floors, 0.5)),
        ms(percentile(&floors, 0.99))
    );
    if interval.is_some() {
        println!(
            "  once sent:     p50 {}  p99 {}  (from the request leaving the load generator)",
            ms(percentile(&answered, 0.5)),
            ms(percentile(&answered, 0.99))
        );
    }
    if !late.is_empty() {
        println!(
            "sent late:       p50 {}  p99 {}  (the load generator's timer, in the latency above)",
            ms(percentile(&late, 0.5)),
            ms(percentile(&late, 0.99))
        );
    }
    if let (Some(server_cpu), Some(own_cpu)) = (server_cpu, own_cpu) {
        // Per command, a figure that moves less than latency when the machine is busy.
        println!(
            "cpu:             server {server_cpu:.1} s ({:.0} µs a command, {:.0} % of a core), load generator {own_cpu:.1} s ({:.0} % of a core)",
            server_cpu * 1e6 / latencies.len().max(1) as f64,
            server_cpu * 100.0 / elapsed,
            own_cpu * 100.0 / elapsed
        );
    }
    if let Some(rss) = peak_rss_mib(pid) {
        println!("server peak RSS: {rss:.0} MiB");
    }
    drop(server);
    Ok(())
}

/// What one `load` client measured, and then all of them.
#[derive(Default)]
struct LoadSamples {
    /// From when each accepted command was due.
    latencies: Vec<Duration>,
    /// From acceptance to the first poll that saw the change.
    lags: Vec<Duration>,
    /// From acceptance to the last poll that did not (the lag lies between).
    floors: Vec<Duration>,
    /// How late the timer sent commands the client was free to send on time.
    late: Vec<Duration>,
    /// From the request leaving the generator.
    answered: Vec<Duration>,
    errors: usize,
}

impl LoadSamples {
    fn merge(&mut self, other: LoadSamples) {
        self.latencies.extend(other.latencies);
        self.lags.extend(other.lags);
        self.floors.extend(other.floors);
        self.late.extend(other.late);
        self.answered.extend(other.answered);
        self.errors += other.errors;
    }
}

/// Writes `events` events straight to the store in streams of 1,000 (an account opened,
/// then deposits; accounts without a projected client are legal, unordered delivery
/// allows it), and says how long it took.
pub(crate) async fn write_streams(
    store: &event_store::EventStore,
    events: usize,
) -> anyhow::Result<()> {
    use domain::account::{AccountEvent, AccountType};
    use domain::{AccountId, ClientId, Currency, Money, TransactionId};

    let eur = Currency::parse("EUR").map_err(|e| anyhow::anyhow!("{e}"))?;
    let metadata = seed_metadata();
    let per_stream = 1_000;
    let written = Instant::now();
    let mut total = 0;
    while total < events {
        let id = AccountId::new();
        let key = id.to_string();
        let loaded = store.load::<domain::account::Account>(&key).await?;
        let count = per_stream.min(events - total);
        let mut batch = vec![AccountEvent::AccountOpened {
            account_id: id,
            client_id: ClientId::new(),
            account_type: AccountType::Checking,
            currency: eur,
            initial_deposit: Money::zero(eur),
            opening_transaction_id: TransactionId::new(),
            account_number: domain::AccountNumber::derived(id),
        }];
        for n in 1..count as i64 {
            let amount = Money::positive(1, eur).map_err(|e| anyhow::anyhow!("{e}"))?;
            let balance = Money::non_negative(n, eur).map_err(|e| anyhow::anyhow!("{e}"))?;
            batch.push(AccountEvent::MoneyDeposited {
                transaction_id: TransactionId::new(),
                amount,
                description: None,
                balance_after: balance,
            });
        }
        store
            .append::<domain::account::Account>(&key, &loaded, &batch, &metadata)
            .await?;
        total += count;
    }
    println!(
        "wrote {total} events in {:.1} s",
        written.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn replay(events: usize) -> anyhow::Result<()> {
    use event_store::{EventStore, SqliteStore};

    let dir = tempfile::tempdir()?;
    let sqlite = SqliteStore::open(&dir.path().join("ledger.db")).await?;
    let feed = sqlite.feed();
    let store = Arc::new(EventStore::new(sqlite.into()));
    write_streams(&store, events).await?;
    let read = Arc::new(
        projections::ReadStore::open(&projections::sqlite_url(&projections::current_read_db(
            dir.path(),
        )))
        .await?,
    );
    let log = Arc::new(
        projections::SystemLog::open(&projections::sqlite_url(&dir.path().join("system-log.db")))
            .await?,
    );
    let started = Instant::now();
    let position = projections::rebuild_sqlite(store.clone(), feed, read, log, dir.path()).await?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "replay:          {position} events in {seconds:.1} s, {:.0} events/s",
        position as f64 / seconds
    );
    reads(&store, &dir.path().join("ledger.db")).await?;
    if let Some(rss) = peak_rss_mib(std::process::id()) {
        println!("bench peak RSS:  {rss:.0} MiB");
    }
    Ok(())
}

/// An events row as stored: rowid, then the columns `stream` reads.
type ScannedRow = (i64, String, String, i64, String, String, String, String);

/// Reading the events back: the raw scan of the events table (the limit), chain
/// verification as `/v1/audit/verify` does it, and an auditor's fold of every stream.
async fn reads(store: &event_store::EventStore, file: &std::path::Path) -> anyhow::Result<()> {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(file)
        .read_only(true);
    let pool = sqlx::SqlitePool::connect_with(options).await?;
    let started = Instant::now();
    let (mut after, mut scanned, mut bytes) = (0_i64, 0_usize, 0_usize);
    loop {
        let rows: Vec<ScannedRow> = sqlx::query_as(
            "SELECT rowid, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata \
             FROM events WHERE rowid > ? ORDER BY rowid LIMIT 10000",
        )
        .bind(after)
        .fetch_all(&pool)
        .await?;
        let Some(last) = rows.last() else { break };
        after = last.0;
        scanned += rows.len();
        bytes += rows
            .iter()
            .map(|r| r.1.len() + r.2.len() + r.4.len() + r.5.len() + r.6.len() + r.7.len())
            .sum::<usize>();
    }
    let scan = scanned as f64 / started.elapsed().as_secs_f64();
    pool.close().await;
    let size = std::fs::metadata(file)?.len();
    println!(
        "raw scan:        {scanned} events, {:.0} MiB of text, {scan:.0} events/s; file {:.0} bytes/event",
        bytes as f64 / 1048576.0,
        size as f64 / scanned.max(1) as f64
    );

    let started = Instant::now();
    let check = store.verify_all_chains(&["account"]).await?;
    let rate = check.events as f64 / started.elapsed().as_secs_f64();
    println!(
        "verify chains:   {} events in {} streams, {} failures, {rate:.0} events/s ({:.0} % of the raw scan)",
        check.events,
        check.streams,
        check.failures.len(),
        100.0 * rate / scan
    );

    // The auditor's state as of the latest event, as the audit endpoint folds it (the
    // benchmark's appends leave no snapshots: every event is read and applied).
    let started = Instant::now();
    let mut folded = 0;
    for id in store.open_streams("account", &[]).await? {
        let state = store
            .state_at::<domain::account::Account>(&id, event_store::AsOf::Latest)
            .await?
            .context("a listed stream has a state")?;
        folded += state.version;
    }
    let rate = folded as f64 / started.elapsed().as_secs_f64();
    println!(
        "auditor's fold:  {folded} events, {rate:.0} events/s ({:.0} % of the raw scan)",
        100.0 * rate / scan
    );
    Ok(())
}

async fn store(
    tasks: usize,
    accounts: usize,
    seconds: u64,
    group_commit: bool,
    aggregate_cache: bool,
) -> anyhow::Result<()> {
    use event_store::{EventStore, SqliteOptions, SqliteStore};

    let dir = tempfile::tempdir()?;
    let options = SqliteOptions {
        group_commit,
        aggregate_cache,
    };
    let store = Arc::new(EventStore::new(
        SqliteStore::open_with(&dir.path().join("ledger.db"), options)
            .await?
            .into(),
    ));
    let run = deposits(store, tasks, accounts, seconds).await?;
    println!(
        "store (group commit {}, cache {}): {run}",
        if group_commit { "on" } else { "off" },
        if aggregate_cache { "on" } else { "off" },
    );
    Ok(())
}

/// What `deposits` did.
pub(crate) struct Run {
    accepted: usize,
    failures: usize,
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

impl Run {
    /// The run of `latencies` (sorted) and `failures` over `elapsed`.
    pub(crate) fn of(latencies: Vec<Duration>, failures: usize, elapsed: Duration) -> Self {
        Run {
            accepted: latencies.len(),
            failures,
            per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
            p50: percentile(&latencies, 0.5),
            p99: percentile(&latencies, 0.99),
        }
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} accepted, {} failed, {:.0} commands/s, p50 {}, p99 {}",
            self.accepted,
            self.failures,
            self.per_second,
            ms(self.p50),
            ms(self.p99)
        )
    }
}

/// `tasks` concurrent writers depositing on `accounts` random accounts through
/// `store.execute` for `seconds`.
async fn deposits(
    store: Arc<event_store::EventStore>,
    tasks: usize,
    accounts: usize,
    seconds: u64,
) -> anyhow::Result<Run> {
    use domain::account::{Account, AccountCommand};
    use domain::{AccountId, Currency, TransactionId};
    use event_store::Expected;

    let eur = Currency::parse("EUR").map_err(|e| anyhow::anyhow!("{e}"))?;
    let metadata = seed_metadata();
    let mut ids = Vec::new();
    for _ in 0..accounts {
        let id = AccountId::new();
        let open = open_checking(id, eur);
        store
            .execute::<Account>(&id.to_string(), Expected::Any, &metadata, open)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        ids.push(id.to_string());
    }
    let ids = Arc::new(ids);
    drive(tasks, seconds, move |task, n| {
        let (store, ids, metadata) = (store.clone(), ids.clone(), metadata.clone());
        async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(((task as u64) << 32) | n);
            let id = &ids[rng.gen_range(0..ids.len())];
            let amount = domain::Amount::new(1, eur).expect("1 is positive");
            let deposit = AccountCommand::Deposit {
                transaction_id: TransactionId::new(),
                amount,
                description: None,
            };
            store
                .execute::<Account>(id, Expected::Any, &metadata, deposit)
                .await
        }
    })
    .await
}

/// `tasks` writers, each running `command(task, n)` for its `n`-th command until
/// `seconds` have passed: the latency of each accepted command, and every failure
/// (counted and printed: a run that fails fast must not look fast).
pub(crate) async fn drive<F, Fut, T, E>(
    tasks: usize,
    seconds: u64,
    command: F,
) -> anyhow::Result<Run>
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<T, E>> + Send + 'static,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..tasks)
        .map(|task| {
            let command = command.clone();
            tokio::spawn(async move {
                let (mut latencies, mut failures) = (Vec::new(), 0usize);
                let mut n = 0;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    match command(task, n).await {
                        Ok(_) => latencies.push(sent.elapsed()),
                        Err(_) => failures += 1,
                    }
                    n += 1;
                }
                (latencies, failures)
            })
        })
        .collect();
    let (mut latencies, mut failures) = (Vec::new(), 0);
    for worker in workers {
        let (done, failed) = worker.await?;
        latencies.extend(done);
        failures += failed;
    }
    latencies.sort();
    Ok(Run::of(latencies, failures, started.elapsed()))
}
