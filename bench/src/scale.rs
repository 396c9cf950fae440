//! `scale`: how the costs of reads, restarts and verification grow with history. For
//! each size (a base times 1, 10, 100 …) a fresh `crm serve` data directory is seeded
//! through the event store (clients with an account and deposits, 2,000 to an agent,
//! and one account with a long history), the server catches up and is restarted, and then every measured
//! read runs over HTTP with real tokens, as the UI sends it.

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::path::Path;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::{ms, peak_rss_mib, percentile, Server, Staff};

/// Requests per measured read.
const SAMPLES: usize = 200;

/// The long accounts of each size: how many, and how long (`None`: 1,000 × the factor).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Long {
    pub accounts: usize,
    pub length: Option<usize>,
}

pub(crate) async fn scale(
    crm: PathBuf,
    base: usize,
    factors: Vec<usize>,
    long: Long,
) -> anyhow::Result<()> {
    anyhow::ensure!(long.accounts >= 1, "at least one long account is measured");
    println!(
        "size: clients, events | seed | catch-up | ready after restart | \
         agent's search p50 / p99 | auditor's search p50 / p99 | \
         history page p50 / p99 | audit-log page p99 | system-log page p99 | verification run | \
         first command on the long stream | state at half of it | bytes/event | server RSS"
    );
    for factor in factors {
        let clients = base * factor;
        let length = long.length.unwrap_or(1_000 * factor);
        let row = one_size(&crm, clients, long.accounts, length)
            .await
            .with_context(|| format!("size {factor}×"))?;
        println!("{factor}×: {row}");
    }
    Ok(())
}

async fn one_size(
    crm: &Path,
    clients: usize,
    long_accounts: usize,
    long: usize,
) -> anyhow::Result<String> {
    // The data directory inside a temporary one, so the digest key made beside it goes
    // with it.
    let root = tempfile::tempdir()?;
    let dir = root.path().join("data");
    std::fs::create_dir_all(&dir)?;
    let http = reqwest::Client::new();
    let (server, base) = Server::start(crm, &dir).await?;
    let shape = crate::seed::Shape {
        clients,
        accounts_per_client: 1,
        deposits_per_account: 2,
        long_accounts,
        long_length: long,
        clients_per_agent: crate::seed::CLIENTS_PER_AGENT,
    };
    let staff = Staff::create(&http, &base, shape.agents()).await?;
    drop(server);

    // History, written through the store while the server is down: each client
    // onboarded with an account and two deposits, and one account with a long history.
    let seeded = Instant::now();
    let history = crate::seed::history(&dir, &staff.agent_ids, shape).await?;
    let (names, events) = (history.last_names, history.events);
    // The last long account: seeded last, so caught up last.
    let long_account = *history.long_accounts.last().context("no long account")?;
    let seed = seeded.elapsed();

    // First start: the read models catch up with everything seeded.
    let started = Instant::now();
    let (server, base) = Server::start(crm, &dir).await?;
    let staff = staff.log_in(&http, &base).await?;
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
            started.elapsed() < Duration::from_secs(3600),
            "no catch-up in an hour"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let catch_up = started.elapsed();
    drop(server);

    // Restart on a caught-up store: how long until it serves.
    let restarted = Instant::now();
    let (server, base) = Server::start(crm, &dir).await?;
    let ready = restarted.elapsed();
    let pid = server.0.id();
    let staff = staff.log_in(&http, &base).await?;
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

    let searches = searches(&http, &base, &names, &staff, SAMPLES).await?;
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
    // A verification run, as an auditor asks for one: a store of millions of events
    // takes longer than a request may.
    let verified = Instant::now();
    let report = verification_run(&http, &base, &staff.auditor).await?;
    let verify_rate =
        report["events_checked"].as_f64().unwrap_or(0.0) / verified.elapsed().as_secs_f64();
    anyhow::ensure!(report["ok"] == true, "verification failed: {report}");
    let rss = peak_rss_mib(pid).unwrap_or(0.0);
    drop(server);
    let bytes: u64 = std::fs::read_dir(&dir)?
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
        "{clients} clients, {events} events | {:.0} s | {:.1} s | {} | {} | {} | {} | {} | {} | {verify_rate:.0} events/s | {} | {} | {:.0} | {rss:.0} MiB",
        seed.as_secs_f64(),
        catch_up.as_secs_f64(),
        ms(ready),
        pair(&searches[0]),
        pair(&searches[1]),
        pair(&history),
        ms(percentile(&audit, 0.99)),
        ms(percentile(&system, 0.99)),
        ms(first_command),
        ms(percentile(&state, 0.5)),
        bytes as f64 / events as f64,
    ))
}

/// `samples` searches for four letters of a random one of `names` (pages of 50), as
/// the agent (among their own clients) and as the auditor (among everyone's): the two
/// sorted times.
pub(crate) async fn searches(
    http: &reqwest::Client,
    base: &str,
    names: &[String],
    staff: &Staff,
    samples: usize,
) -> anyhow::Result<[Vec<Duration>; 2]> {
    let names: Vec<&String> = names.iter().filter(|name| name.len() > 4).collect();
    anyhow::ensure!(!names.is_empty(), "no surname longer than four letters");
    let mut times = [Vec::new(), Vec::new()];
    for (token, times) in [&staff.agent, &staff.auditor].into_iter().zip(&mut times) {
        let mut rng = StdRng::seed_from_u64(99);
        *times = timed(samples, |_| {
            let last = names[rng.gen_range(0..names.len())];
            let start = rng.gen_range(0..last.len() - 4);
            http.get(format!("{base}/v1/clients"))
                .query(&[("q", &last[start..start + 4]), ("limit", "50")])
                .bearer_auth(token)
        })
        .await?;
    }
    Ok(times)
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

/// Asks for a whole-store verification run and follows it to its end.
async fn verification_run(
    http: &reqwest::Client,
    base: &str,
    auditor: &str,
) -> anyhow::Result<Value> {
    let response = http
        .post(format!("{base}/v1/audit/verifications"))
        .bearer_auth(auditor)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "verification run: {}",
        response.status()
    );
    let run: Value = response.json().await?;
    let id = run["id"].as_str().unwrap_or_default().to_string();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let run: Value = http
            .get(format!("{base}/v1/audit/verifications/{id}"))
            .bearer_auth(auditor)
            .send()
            .await?
            .json()
            .await?;
        if run["status"] == "done" {
            return Ok(run);
        }
    }
}
