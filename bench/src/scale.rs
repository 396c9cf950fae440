//! `scale`: how the costs of reads, restarts and verification grow with history. For
//! each size (a base times 1, 10, 100 …) a fresh `crm serve` data directory is seeded
//! through the event store (clients with an account and deposits, and one account with
//! a long history), the server catches up and is restarted, and then every measured
//! read runs over HTTP with real tokens, as the UI sends it.

use anyhow::Context;
use domain::account::{Account, AccountCommand, AccountEvent, AccountType};
use domain::client::{Client, ClientCommand};
use domain::contact::{Address, PersonalDetails};
use domain::metadata::CommandMetadata;
use domain::policy::Role;
use domain::{AccountId, Amount, ClientId, Currency, Money, StaffId, TransactionId};
use event_store::{Backend, EventStore, Expected};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{ms, peak_rss_mib, percentile, Server, Staff};

const SYLLABLES: [&str; 20] = [
    "an", "be", "ca", "do", "el", "fi", "ga", "ho", "ir", "ju", "ka", "lo", "mi", "no", "or", "pa",
    "ri", "sa", "tu", "vi",
];
/// Requests per measured read.
const SAMPLES: usize = 200;
/// Concurrent seeding tasks (the store's group commit shares their fsyncs).
const SEEDERS: usize = 32;

fn name(rng: &mut StdRng, syllables: usize) -> String {
    let mut name: String = (0..syllables)
        .map(|_| SYLLABLES[rng.gen_range(0..SYLLABLES.len())])
        .collect();
    name[..1].make_ascii_uppercase();
    name
}

pub(crate) async fn scale(crm: PathBuf, base: usize, factors: Vec<usize>) -> anyhow::Result<()> {
    println!(
        "size: clients, events | seed | catch-up | ready after restart | search p50 / p99 | \
         history page p50 / p99 | audit-log page p99 | system-log page p99 | verify | \
         first command on the long stream | state at half of it | bytes/event | server RSS"
    );
    for factor in factors {
        let clients = base * factor;
        let long = 1_000 * factor;
        let row = one_size(&crm, clients, long)
            .await
            .with_context(|| format!("size {factor}×"))?;
        println!("{factor}×: {row}");
    }
    Ok(())
}

async fn one_size(crm: &Path, clients: usize, long: usize) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let http = reqwest::Client::new();
    let (server, base) = Server::start(crm, dir.path()).await?;
    let staff = Staff::create(&http, &base).await?;
    drop(server);

    // History, written through the store while the server is down.
    let seeded = Instant::now();
    let store = Arc::new(EventStore::new(
        Backend::open_sqlite(&dir.path().join("ledger.db")).await?,
    ));
    let agent: StaffId = staff.agent_id.parse().context("the agent's id")?;
    let metadata = CommandMetadata {
        actor_id: staff.agent_id.clone(),
        actor_role: Role::Agent,
        correlation_id: "bench-seed".into(),
        causation_id: "bench-seed".into(),
        idempotency_key: None,
        occurred_at: chrono::Utc::now(),
    };
    let mut names = Vec::with_capacity(clients);
    let mut tasks = Vec::new();
    for seeder in 0..SEEDERS {
        let (store, metadata) = (store.clone(), metadata.clone());
        let mine = clients / SEEDERS + usize::from(seeder < clients % SEEDERS);
        let mut rng = StdRng::seed_from_u64(seeder as u64);
        let batch: Vec<(String, String)> = (0..mine)
            .map(|_| (name(&mut rng, 2), name(&mut rng, 3)))
            .collect();
        names.extend(batch.iter().map(|(_, last)| last.clone()));
        tasks.push(tokio::spawn(async move {
            for (first, last) in batch {
                seed_client(&store, &metadata, agent, &first, &last, 2).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let long_account = seed_client(&store, &metadata, agent, "Long", "History", 0).await?;
    append_deposits(&store, &metadata, long_account, long).await?;
    let events = count_events(&dir.path().join("ledger.db")).await?;
    drop(store);
    let seed = seeded.elapsed();

    // First start: the read models catch up with everything seeded.
    let started = Instant::now();
    let (server, base) = Server::start(crm, dir.path()).await?;
    let staff = Staff::log_in(&http, &base, &staff.agent_id).await?;
    let account_url = format!("{base}/v1/accounts/{long_account}");
    loop {
        let view: Value = http
            .get(&account_url)
            .bearer_auth(&staff.agent)
            .send()
            .await?
            .json()
            .await?;
        if view["version"].as_u64() == Some(long as u64 + 1) {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "no catch-up in 30 min"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let catch_up = started.elapsed();
    drop(server);

    // Restart on a caught-up store: how long until it serves.
    let restarted = Instant::now();
    let (server, base) = Server::start(crm, dir.path()).await?;
    let ready = restarted.elapsed();
    let pid = server.0.id();
    let staff = Staff::log_in(&http, &base, &staff.agent_id).await?;
    let account_url = format!("{base}/v1/accounts/{long_account}");

    // The first command on the long stream since the restart: it loads the stream.
    let sent = Instant::now();
    let response = http
        .post(format!("{account_url}/deposits"))
        .bearer_auth(&staff.agent)
        .json(&json!({"amount": {"amount_minor": 1, "currency": "EUR"}}))
        .send()
        .await?;
    anyhow::ensure!(response.status() == 201, "deposit: {}", response.status());
    let first_command = sent.elapsed();

    let mut rng = StdRng::seed_from_u64(99);
    let search = timed(SAMPLES, |_| {
        let last = &names[rng.gen_range(0..names.len())];
        let start = rng.gen_range(0..last.len() - 4);
        http.get(format!("{base}/v1/clients"))
            .query(&[("q", &last[start..start + 4]), ("limit", "50")])
            .bearer_auth(&staff.agent)
    })
    .await?;
    let history = walk(&http, &format!("{account_url}/transactions"), &staff.agent).await?;
    let audit = walk(&http, &format!("{base}/v1/audit/log"), &staff.auditor).await?;
    let system = walk(&http, &format!("{base}/v1/system-log"), &staff.admin).await?;
    let half = long / 2;
    let state = timed(5, |_| {
        http.get(format!(
            "{base}/v1/audit/streams/account/{long_account}/state"
        ))
        .query(&[("version", half)])
        .bearer_auth(&staff.auditor)
    })
    .await?;
    let verified = Instant::now();
    let report: Value = http
        .get(format!("{base}/v1/audit/verify"))
        .bearer_auth(&staff.auditor)
        .send()
        .await?
        .json()
        .await?;
    let verify_rate =
        report["events_checked"].as_f64().unwrap_or(0.0) / verified.elapsed().as_secs_f64();
    anyhow::ensure!(report["ok"] == true, "verification failed: {report}");
    let rss = peak_rss_mib(pid).unwrap_or(0.0);
    drop(server);
    let bytes: u64 = std::fs::read_dir(dir.path())?
        .filter_map(|entry| entry.ok()?.metadata().ok())
        .filter(|meta| meta.is_file())
        .map(|meta| meta.len())
        .sum();

    let pair = |sorted: &[Duration]| {
        format!(
            "{} / {}",
            ms(percentile(sorted, 0.5)),
            ms(percentile(sorted, 0.99))
        )
    };
    Ok(format!(
        "{clients} clients, {events} events | {:.0} s | {:.1} s | {} | {} | {} | {} | {} | {verify_rate:.0} events/s | {} | {} | {:.0} | {rss:.0} MiB",
        seed.as_secs_f64(),
        catch_up.as_secs_f64(),
        ms(ready),
        pair(&search),
        pair(&history),
        ms(percentile(&audit, 0.99)),
        ms(percentile(&system, 0.99)),
        ms(first_command),
        ms(percentile(&state, 0.5)),
        bytes as f64 / events as f64,
    ))
}

/// A client onboarded with one account and `deposits` deposits; returns the account.
async fn seed_client(
    store: &EventStore,
    metadata: &CommandMetadata,
    agent: StaffId,
    first: &str,
    last: &str,
    deposits: usize,
) -> anyhow::Result<AccountId> {
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
    let account = AccountId::new();
    let eur = Currency::parse("EUR").map_err(|e| anyhow::anyhow!("{e}"))?;
    let open = AccountCommand::Open {
        account_id: account,
        client_id: client,
        client: domain::client::ClientStanding::Active,
        account_type: AccountType::Checking,
        currency: eur,
        initial_deposit: None,
        opening_transaction_id: TransactionId::new(),
        account_number: store.allocate_account_number(account).await?,
    };
    store
        .execute::<Account>(&account.to_string(), Expected::Any, metadata, open)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for _ in 0..deposits {
        let deposit = AccountCommand::Deposit {
            transaction_id: TransactionId::new(),
            amount: Amount::new(2_500, eur).map_err(|e| anyhow::anyhow!("{e}"))?,
            description: Some("Salary".into()),
        };
        store
            .execute::<Account>(&account.to_string(), Expected::Any, metadata, deposit)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(account)
}

/// `count` deposits of 1 on `account`, appended 1,000 to a commit.
async fn append_deposits(
    store: &EventStore,
    metadata: &CommandMetadata,
    account: AccountId,
    count: usize,
) -> anyhow::Result<()> {
    let eur = Currency::parse("EUR").map_err(|e| anyhow::anyhow!("{e}"))?;
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

/// `n` requests made by `request`, each timed; sorted.
async fn timed(
    n: usize,
    mut request: impl FnMut(usize) -> reqwest::RequestBuilder,
) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let sent = Instant::now();
        let response = request(i).send().await?;
        let status = response.status();
        response.bytes().await?;
        times.push(sent.elapsed());
        anyhow::ensure!(status.is_success(), "{status}");
    }
    times.sort();
    Ok(times)
}

/// Pages of 50 along `url`'s cursors (from the start again at the end), each timed.
async fn walk(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(SAMPLES);
    let mut cursor: Option<String> = None;
    for _ in 0..SAMPLES {
        let mut request = http.get(url).query(&[("limit", "50")]).bearer_auth(token);
        if let Some(cursor) = &cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        let sent = Instant::now();
        let response = request.send().await?;
        let status = response.status();
        let page: Value = response.json().await?;
        times.push(sent.elapsed());
        anyhow::ensure!(status.is_success(), "{url}: {status} {page}");
        cursor = page["next_cursor"].as_str().map(String::from);
    }
    times.sort();
    Ok(times)
}
