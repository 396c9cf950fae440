//! Impatient and hostile clients against `crm serve` as a process: hundreds of commands
//! (deposits, withdrawals, transfers, staff creation) whose client hangs up 0–20 ms
//! after sending, with and without `kill -9` of the server in between. Afterwards every
//! key's retry gets the original outcome or runs exactly once, no claim outlives its
//! lease, every transfer is settled within 2 s without a restart, and the balances add
//! up to exactly the deposits minus the withdrawals that were recorded. An auditor who
//! asks for a verification run and hangs up still gets one run, done.

mod process;

use process::bank::*;
use process::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_ups_and_kills_leave_nothing_half_done() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = start(dir.path(), port).await;
    let bank = std::sync::Arc::new(open_bank(&server.base).await);
    let mut dice = Dice(0x9E37_79B9_7F4A_7C15 ^ u64::from(port));
    let mut ledger = Ledger {
        expected_total: 40_000,
        ..Ledger::default()
    };

    // Round 1: 240 abandoned requests, no restart.
    let intents: Vec<Intent> = (0..240).map(|n| Intent::random(&mut dice, n)).collect();
    let keys = hang_up_all(&bank, &intents, &mut dice, "calm").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Every request that arrived finished on its own: its retry is a replay (one cut
    // before its body arrived never ran, and runs now, once); every transfer is settled.
    // Nothing is left claimed: no retry waits for a lease.
    let executed =
        retries_resolve(&bank, &intents, &keys, &mut ledger, Duration::from_secs(2)).await;
    println!(
        "without a restart: {executed} of {} retries ran their request (the rest replayed)",
        keys.len()
    );
    assert_money_adds_up(&bank, &ledger, Duration::from_secs(1)).await;

    // Round 2: 240 more, with kill -9 while they arrive.
    let intents: Vec<Intent> = (240..480).map(|n| Intent::random(&mut dice, n)).collect();
    let sender = {
        let (bank, intents) = (bank.clone(), intents.clone());
        let mut dice = Dice(dice.below(u64::MAX) | 1);
        tokio::spawn(async move { hang_up_all(&bank, &intents, &mut dice, "killed").await })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let keys = sender.await.unwrap();
    let _server = start(dir.path(), port).await;
    // Recovery: each key's retry gets the recorded outcome or runs once.
    // A claim held by the killed server is taken over once its lease runs out.
    let patience = event_store::idempotency::LEASE + Duration::from_secs(2);
    let executed = retries_resolve(&bank, &intents, &keys, &mut ledger, patience).await;
    println!(
        "after kill -9: {executed} of {} retries ran their request (the rest replayed)",
        keys.len()
    );
    assert_money_adds_up(&bank, &ledger, Duration::from_secs(2)).await;
    let auditor = assert_settled_and_verified(&bank, &ledger, "hangup.auditor").await;

    // An auditor who asks for a verification run and hangs up, five times: every run
    // made goes on to the end without anyone waiting for it. (A request cut before it
    // was handled makes none.)
    for after in [0, 1, 5, 20, 200] {
        hang_up_post(
            &bank,
            "/v1/audit/verifications",
            &auditor,
            &serde_json::json!({}),
            None,
            Duration::from_millis(after),
        )
        .await;
    }
    // And once more without hanging up, so that at least one run is made however
    // many of those were cut before they were handled.
    let (status, asked) = call(
        &bank.http,
        reqwest::Method::POST,
        format!("{}/v1/audit/verifications", bank.base),
        Some(&auditor),
        Some(serde_json::json!({})),
    )
    .await;
    assert!(status.is_success(), "{status}: {asked}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let runs = loop {
        let runs = all(&bank.http, &bank.base, &auditor, "/v1/audit/verifications").await;
        if !runs.is_empty() && runs.iter().all(|run| run["status"] == "done") {
            break runs;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the runs did not finish: {runs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for run in runs {
        assert_eq!(run["ok"], true, "{run}");
        assert!(run["events_checked"].as_u64().unwrap() > 0, "{run}");
    }
}
