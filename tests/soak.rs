//! A bounded soak of `crm serve` as a process (under two minutes): patient and impatient
//! clients send deposits, withdrawals, transfers and staff creations concurrently for
//! four rounds, and the server is killed with SIGKILL at the end of each of the first
//! three. Afterwards every key's retry resolves to its original outcome or one run, every
//! transfer is settled, the money adds up, every stream's hash chain verifies, every
//! digest signed (one a second, through the kills) verifies against the Merkle log, and
//! the read models equal a rebuild from the event store.

mod process;

use process::bank::*;
use process::*;
use reqwest::{Method, StatusCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sends every intent patiently (with its key); a connection cut by a kill is left to
/// the retries at the end.
async fn send_patiently(bank: Arc<Bank>, intents: Vec<Intent>, keys: Vec<String>) {
    let mut sending = Vec::new();
    for (intent, key) in intents.into_iter().zip(keys) {
        let bank = bank.clone();
        sending.push(tokio::spawn(async move {
            let (path, body, as_admin) = intent.request(&bank);
            let token = if as_admin { &bank.admin } else { &bank.agent };
            let _ = bank
                .http
                .post(format!("{}{path}", bank.base))
                .bearer_auth(token)
                .header("idempotency-key", &key)
                .json(&body)
                .send()
                .await;
        }));
        if sending.len() >= 8 {
            for task in sending.drain(..) {
                let _ = task.await;
            }
        }
    }
    for task in sending {
        let _ = task.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soak_with_three_kills_leaves_everything_consistent() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Digests every second, so some are signed (and some cut off) around each kill.
    let digests_often = ["--digest-interval-secs", "1"];
    let mut server = start_with(dir.path(), port, &digests_often).await;
    let bank = Arc::new(open_bank(&server.base).await);
    let mut dice = Dice(0xD1CE_5EED ^ u64::from(port));
    let mut ledger = Ledger {
        expected_total: 40_000,
        ..Ledger::default()
    };
    let (mut all_intents, mut all_keys) = (Vec::new(), Vec::new());
    for round in 0..4 {
        let patient: Vec<Intent> = (0..120).map(|n| Intent::random(&mut dice, n)).collect();
        let patient_keys: Vec<String> = (0..patient.len())
            .map(|n| format!("soak-{round}-patient-{n}"))
            .collect();
        let abandoned: Vec<Intent> = (0..120)
            .map(|n| Intent::random(&mut dice, 1000 + n))
            .collect();
        let sender = tokio::spawn(send_patiently(
            bank.clone(),
            patient.clone(),
            patient_keys.clone(),
        ));
        let hanger = {
            let (bank, abandoned) = (bank.clone(), abandoned.clone());
            let mut dice = Dice(dice.below(u64::MAX) | 1);
            let round_name = format!("soak-{round}-abandoned");
            tokio::spawn(
                async move { hang_up_all(&bank, &abandoned, &mut dice, &round_name).await },
            )
        };
        if round < 3 {
            // Kill while the commands are arriving.
            tokio::time::sleep(Duration::from_millis(700 + dice.below(600))).await;
            server.child.kill().unwrap();
            server.child.wait().unwrap();
        }
        let _ = sender.await;
        let abandoned_keys = hanger.await.unwrap();
        if round < 3 {
            server = start_with(dir.path(), port, &digests_often).await;
        }
        all_intents.extend(patient);
        all_keys.extend(patient_keys);
        all_intents.extend(abandoned);
        all_keys.extend(abandoned_keys);
    }

    // Every key resolves, at most a lease after the last restart.
    let patience = event_store::idempotency::LEASE + Duration::from_secs(2);
    let executed = retries_resolve(&bank, &all_intents, &all_keys, &mut ledger, patience).await;
    println!(
        "soak: {} commands in 4 rounds, 3 kills; {executed} retries ran their request (never reached a live server), the rest replayed; {} transfers",
        all_keys.len(),
        ledger.transfers.len()
    );
    assert_money_adds_up(&bank, &ledger, Duration::from_secs(2)).await;
    let auditor = assert_settled_and_verified(&bank, &ledger, "soak.auditor").await;
    // The read models built incrementally, through three kills, equal a fresh rebuild.
    let before = snapshot(&bank.http, &bank.base, &auditor, &bank.accounts).await;
    let (status, body) = call(
        &bank.http,
        Method::POST,
        format!("{}/v1/admin/rebuild", bank.base),
        Some(&bank.admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        snapshot(&bank.http, &bank.base, &auditor, &bank.accounts).await,
        before
    );
    println!("soak: {:.1} s", started.elapsed().as_secs_f64());
}
