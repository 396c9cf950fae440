//! Seeding histories through the event store: `seed` builds a bank's year in a `crm
//! serve` data directory (by default 1M clients, each with two accounts and four
//! deposits on each, and three accounts of 100,000 transactions), and `scale` seeds
//! its sizes with the same code. Every client and account goes through its command, as
//! the API would send it; a long history is appended a thousand events to a commit.

use anyhow::Context;
use domain::account::{Account, AccountCommand, AccountEvent, AccountType};
use domain::client::{Client, ClientCommand};
use domain::contact::{Address, PersonalDetails};
use domain::metadata::CommandMetadata;
use domain::policy::Role;
use domain::{AccountId, Amount, ClientId, Currency, Money, StaffId, TransactionId};
use event_store::{EventStore, Expected, SqliteStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::{Server, Staff};

const SYLLABLES: [&str; 20] = [
    "an", "be", "ca", "do", "el", "fi", "ga", "ho", "ir", "ju", "ka", "lo", "mi", "no", "or", "pa",
    "ri", "sa", "tu", "vi",
];
/// A bank's agent looks after a few thousand clients at most.
pub(crate) const CLIENTS_PER_AGENT: usize = 2_000;
/// Concurrent seeding tasks (the store's group commit shares their fsyncs).
const SEEDERS: usize = 32;

/// The shape of a seeded history.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub clients: usize,
    pub accounts_per_client: usize,
    pub deposits_per_account: usize,
    pub long_accounts: usize,
    pub long_length: usize,
    pub clients_per_agent: usize,
}

impl Shape {
    /// The agents the clients are spread over.
    pub(crate) fn agents(&self) -> usize {
        self.clients.div_ceil(self.clients_per_agent.max(1)).max(1)
    }
}

/// What seeding wrote.
pub(crate) struct Seeded {
    /// Every client's last name, for searches that match.
    pub last_names: Vec<String>,
    pub long_accounts: Vec<AccountId>,
    pub events: i64,
}

fn name(rng: &mut StdRng, syllables: usize) -> String {
    let mut name: String = (0..syllables)
        .map(|_| SYLLABLES[rng.gen_range(0..SYLLABLES.len())])
        .collect();
    name[..1].make_ascii_uppercase();
    name
}

/// `ledgerline-bench seed`: staff through a first start of `crm serve`, then (server
/// stopped) the history through the store. `crm serve --data-dir DIR` then catches the
/// read models up on its first start; the bench staff's passwords are printed.
pub(crate) async fn seed(crm: PathBuf, dir: PathBuf, shape: Shape) -> anyhow::Result<()> {
    std::fs::create_dir_all(&dir)?;
    anyhow::ensure!(
        !dir.join("ledger.db").exists(),
        "{} already holds a store",
        dir.display()
    );
    let http = reqwest::Client::new();
    let (server, base) = Server::start(&crm, &dir).await?;
    let staff = Staff::create(&http, &base, shape.agents()).await?;
    drop(server);
    let started = Instant::now();
    let seeded = history(&dir, &staff.agent_ids, shape).await?;
    let seconds = started.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(dir.join("ledger.db"))?.len();
    println!(
        "seeded {} clients of {} agents, {} accounts, {} events in {seconds:.0} s \
         ({:.0} events/s); ledger.db {:.0} MiB, {:.0} bytes/event",
        shape.clients,
        shape.agents(),
        shape.clients * shape.accounts_per_client + shape.long_accounts,
        seeded.events,
        seeded.events as f64 / seconds,
        bytes as f64 / 1048576.0,
        bytes as f64 / seeded.events.max(1) as f64
    );
    if !seeded.long_accounts.is_empty() {
        println!(
            "long accounts: {}",
            seeded
                .long_accounts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
        "serve it with: crm serve --data-dir {} (staff: root / bench-root-password; \
         bench.agent (and bench.agent.2 …), bench.auditor and bench.admin / bench-password-1)",
        dir.display()
    );
    Ok(())
}

/// Seeds `shape` into the store in `dir`, the clients spread evenly over `agent_ids`
/// (the long accounts are the first agent's).
pub(crate) async fn history(
    dir: &Path,
    agent_ids: &[String],
    shape: Shape,
) -> anyhow::Result<Seeded> {
    let store = Arc::new(EventStore::new(
        SqliteStore::open(&dir.join("ledger.db")).await?.into(),
    ));
    let agents: Vec<StaffId> = agent_ids
        .iter()
        .map(|id| id.parse().context("an agent's id"))
        .collect::<anyhow::Result<_>>()?;
    let agent = *agents.first().context("an agent")?;
    let metadata = CommandMetadata {
        actor_id: agent.to_string(),
        actor_role: Role::Agent,
        correlation_id: "bench-seed".into(),
        causation_id: "bench-seed".into(),
        idempotency_key: None,
        occurred_at: chrono::Utc::now(),
    };
    let mut last_names = Vec::with_capacity(shape.clients);
    let mut tasks = Vec::new();
    for seeder in 0..SEEDERS {
        let (store, metadata, agents) = (store.clone(), metadata.clone(), agents.clone());
        let mine = shape.clients / SEEDERS + usize::from(seeder < shape.clients % SEEDERS);
        let mut rng = StdRng::seed_from_u64(seeder as u64);
        let batch: Vec<(String, String)> = (0..mine)
            .map(|_| (name(&mut rng, 2), name(&mut rng, 3)))
            .collect();
        last_names.extend(batch.iter().map(|(_, last)| last.clone()));
        tasks.push(tokio::spawn(async move {
            for (n, (first, last)) in batch.into_iter().enumerate() {
                // Round the agents, each onboarding their own clients.
                let agent = agents[(seeder + n * SEEDERS) % agents.len()];
                let metadata = CommandMetadata {
                    actor_id: agent.to_string(),
                    ..metadata.clone()
                };
                let client = onboard(&store, &metadata, agent, &first, &last).await?;
                for _ in 0..shape.accounts_per_client {
                    let account = open_account(&store, &metadata, client).await?;
                    deposit(&store, &metadata, account, shape.deposits_per_account).await?;
                }
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let mut long_accounts = Vec::with_capacity(shape.long_accounts);
    for n in 0..shape.long_accounts {
        let client = onboard(&store, &metadata, agent, "Long", &format!("History{n}")).await?;
        let account = open_account(&store, &metadata, client).await?;
        append_deposits(&store, &metadata, account, shape.long_length).await?;
        long_accounts.push(account);
    }
    let events = count_events(&dir.join("ledger.db")).await?;
    store.close().await;
    Ok(Seeded {
        last_names,
        long_accounts,
        events,
    })
}

fn eur() -> anyhow::Result<Currency> {
    Currency::parse("EUR").map_err(|e| anyhow::anyhow!("{e}"))
}

/// A client onboarded by `agent`.
pub(crate) async fn onboard(
    store: &EventStore,
    metadata: &CommandMetadata,
    agent: StaffId,
    first: &str,
    last: &str,
) -> anyhow::Result<ClientId> {
    let client = ClientId::new();
    let details = PersonalDetails::builder()
        .first_name(first)
        .last_name(last)
        .date_of_birth("1980-01-01")
        .gender("unspecified")
        .email(format!(
            "{}.{}@example.com",
            first.to_lowercase(),
            client.to_string()[..8].to_lowercase()
        ))
        .phone("+3531234567")
        .address(
            Address::builder()
                .line1("1 Main St")
                .city("Dublin")
                .country("IE")
                .postal_code("D01"),
        )
        .build(chrono::Utc::now().date_naive())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let onboard = ClientCommand::Onboard {
        client_id: client,
        agent_id: agent,
        details,
    };
    store
        .execute::<Client>(&client.to_string(), Expected::Any, metadata, onboard)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(client)
}

/// A checking account opened for `client`, with its number from the store.
async fn open_account(
    store: &EventStore,
    metadata: &CommandMetadata,
    client: ClientId,
) -> anyhow::Result<AccountId> {
    let account = AccountId::new();
    let open = AccountCommand::Open {
        account_id: account,
        client_id: client,
        client: domain::client::ClientStanding::Active,
        account_type: AccountType::Checking,
        currency: eur()?,
        initial_deposit: None,
        opening_transaction_id: TransactionId::new(),
        account_number: store.allocate_account_number(account).await?,
    };
    store
        .execute::<Account>(&account.to_string(), Expected::Any, metadata, open)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(account)
}

/// `count` salary deposits on `account`, each its own command.
async fn deposit(
    store: &EventStore,
    metadata: &CommandMetadata,
    account: AccountId,
    count: usize,
) -> anyhow::Result<()> {
    for _ in 0..count {
        let deposit = AccountCommand::Deposit {
            transaction_id: TransactionId::new(),
            amount: Amount::new(2_500, eur()?).map_err(|e| anyhow::anyhow!("{e}"))?,
            description: Some("Salary".into()),
        };
        store
            .execute::<Account>(&account.to_string(), Expected::Any, metadata, deposit)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}

/// `count` deposits of 1 on `account`, appended 1,000 to a commit.
async fn append_deposits(
    store: &EventStore,
    metadata: &CommandMetadata,
    account: AccountId,
    count: usize,
) -> anyhow::Result<()> {
    let eur = eur()?;
    let key = account.to_string();
    let mut done = 0;
    while done < count {
        let loaded = store.load::<Account>(&key).await?;
        let batch: Vec<AccountEvent> = (done..count.min(done + 1_000))
            .map(|n| {
                Ok(AccountEvent::MoneyDeposited {
                    transaction_id: TransactionId::new(),
                    amount: Money::positive(1, eur)?,
                    description: None,
                    balance_after: Money::non_negative(n as i64 + 1, eur)?,
                })
            })
            .collect::<Result<_, domain::money::MoneyError>>()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        done += batch.len();
        store
            .append::<Account>(&key, &loaded, &batch, metadata)
            .await?;
    }
    Ok(())
}

async fn count_events(file: &Path) -> anyhow::Result<i64> {
    let pool = sqlx::SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(file)
            .read_only(true),
    )
    .await?;
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM events")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    Ok(count)
}
