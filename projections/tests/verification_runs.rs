//! Verification runs' queue and leases, on SQLite and PostgreSQL: one active run at a
//! time, a run taken by one worker only, a step written only by the lease's holder, a
//! run whose holder died taken over when its lease runs out.

use std::time::Duration;

use projections::verification_runs::Progress;
use projections::{sqlite_url, SystemLog, VerificationRuns};

const LEASE: Duration = Duration::from_secs(60);

fn progress(steps: i64, resume_at: Option<&str>) -> Progress<'_> {
    Progress {
        steps,
        streams_checked: steps * 2,
        events_checked: steps * 10,
        failure_count: 0,
        failures: &[],
        resume_at,
    }
}

async fn queues_leases_and_takes_over(runs: &VerificationRuns) {
    assert!(
        runs.claim("w1", LEASE).await.unwrap().is_none(),
        "nothing queued"
    );

    let (first, new) = runs.request("auditor-1").await.unwrap();
    assert!(new);
    assert_eq!((first.status.as_str(), first.ok), ("queued", None));
    // One at a time: asking again while it is queued gets the same run.
    let (again, new) = runs.request("auditor-2").await.unwrap();
    assert!(!new);
    assert_eq!(again.id, first.id);

    // One worker takes it; another finds nothing to take while the lease holds.
    let claimed = runs.claim("w1", LEASE).await.unwrap().expect("queued run");
    assert_eq!(claimed.run.id, first.id);
    assert_eq!(claimed.run.status, "running");
    assert!(claimed.resume_at.is_none());
    assert!(runs.claim("w2", LEASE).await.unwrap().is_none());

    // Only the holder writes a step, or renews the lease during one.
    assert!(runs
        .record(&first.id, "w1", LEASE, progress(1, Some("c1")))
        .await
        .unwrap());
    assert!(!runs
        .record(&first.id, "w2", LEASE, progress(9, Some("c9")))
        .await
        .unwrap());
    assert!(runs.renew(&first.id, "w1", LEASE).await.unwrap());
    assert!(!runs.renew(&first.id, "w2", LEASE).await.unwrap());

    // A holder that stops gives the run back: the next worker goes on from its step.
    runs.release(&first.id, "w1").await.unwrap();
    let taken = runs.claim("w2", LEASE).await.unwrap().expect("given back");
    assert_eq!(taken.resume_at.as_deref(), Some("c1"));
    assert_eq!((taken.steps, taken.run.events_checked), (1, 10));
    // The first holder's late step is refused.
    assert!(!runs
        .record(&first.id, "w1", LEASE, progress(2, Some("c2")))
        .await
        .unwrap());

    // A holder that dies (no step within the lease) loses it to the next worker.
    assert!(runs
        .record(&first.id, "w2", Duration::ZERO, progress(2, Some("c2")))
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(5)).await;
    let taken = runs
        .claim("w3", LEASE)
        .await
        .unwrap()
        .expect("lease ran out");
    assert_eq!(taken.resume_at.as_deref(), Some("c2"));
    assert!(!runs
        .record(&first.id, "w2", LEASE, progress(3, None))
        .await
        .unwrap());

    // The last step ends the run; a new one can then be asked for.
    assert!(runs
        .record(&first.id, "w3", LEASE, progress(3, None))
        .await
        .unwrap());
    let done = runs.get(&first.id).await.unwrap().unwrap();
    assert_eq!((done.status.as_str(), done.ok), ("done", Some(true)));
    assert_eq!((done.streams_checked, done.events_checked), (6, 30));
    assert!(done.finished_at.is_some());
    assert!(
        runs.claim("w1", LEASE).await.unwrap().is_none(),
        "done is not taken again"
    );
    assert!(!runs
        .record(&first.id, "w3", LEASE, progress(4, None))
        .await
        .unwrap());

    let (second, new) = runs.request("auditor-1").await.unwrap();
    assert!(new);
    assert_ne!(second.id, first.id);
    let page = runs.list(1, None).await.unwrap();
    assert_eq!(page.items[0].id, second.id, "newest first");
    let rest = runs.list(1, page.next_cursor.as_deref()).await.unwrap();
    assert_eq!(rest.items[0].id, first.id);
    assert!(rest.next_cursor.is_none());
    assert!(runs.get("no-such-run").await.unwrap().is_none());
}

/// A step that fails gives the run back to be tried again; failing three times in a row
/// ends it as failed, which frees the way for a new run. A step that succeeds in
/// between starts the count again.
async fn a_run_that_keeps_failing_is_given_up(runs: &VerificationRuns) {
    let (run, _) = runs.request("auditor-1").await.unwrap();
    runs.claim("w1", LEASE).await.unwrap().unwrap();
    runs.failed_step(&run.id, "w1", "database locked")
        .await
        .unwrap();
    // Given back at once, with what went wrong.
    let again = runs.claim("w2", LEASE).await.unwrap().expect("given back");
    assert_eq!(again.run.error.as_deref(), Some("database locked"));
    assert!(runs
        .record(&run.id, "w2", LEASE, progress(1, Some("c1")))
        .await
        .unwrap());
    assert_eq!(runs.get(&run.id).await.unwrap().unwrap().error, None);
    runs.release(&run.id, "w2").await.unwrap();
    for attempt in 1..=3 {
        let owner = format!("w{}", attempt + 2);
        runs.claim(&owner, LEASE)
            .await
            .unwrap()
            .expect("still active");
        runs.failed_step(&run.id, &owner, "unreadable cursor")
            .await
            .unwrap();
    }
    let failed = runs.get(&run.id).await.unwrap().unwrap();
    assert_eq!((failed.status.as_str(), failed.ok), ("failed", None));
    assert_eq!(failed.error.as_deref(), Some("unreadable cursor"));
    assert!(failed.finished_at.is_some());
    assert!(runs.claim("w9", LEASE).await.unwrap().is_none());
    let (next, new) = runs.request("auditor-1").await.unwrap();
    assert!(new);
    assert_ne!(next.id, run.id);
}

/// Of many workers claiming at once, exactly one takes the run.
async fn one_of_many_claimants_takes_it(runs: &std::sync::Arc<VerificationRuns>) {
    runs.request("auditor-1").await.unwrap();
    let claims = (0..8).map(|n| {
        let runs = runs.clone();
        tokio::spawn(async move { runs.claim(&format!("w{n}"), LEASE).await.unwrap() })
    });
    let mut taken = 0;
    for claim in claims {
        taken += claim.await.unwrap().is_some() as usize;
    }
    assert_eq!(taken, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let log = SystemLog::open(&sqlite_url(&dir.path().join("log.db")))
        .await
        .unwrap();
    queues_leases_and_takes_over(&log.verification_runs()).await;
    let failing = SystemLog::open(&sqlite_url(&dir.path().join("failing.db")))
        .await
        .unwrap();
    a_run_that_keeps_failing_is_given_up(&failing.verification_runs()).await;
    let other = SystemLog::open(&sqlite_url(&dir.path().join("other.db")))
        .await
        .unwrap();
    one_of_many_claimants_takes_it(&std::sync::Arc::new(other.verification_runs())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let url = test_peers::postgres::fresh("crm_runs").await;
    let log = SystemLog::open(&url).await.unwrap();
    queues_leases_and_takes_over(&log.verification_runs()).await;
    log.close().await;
    test_peers::postgres::drop(&url).await;
    let url = test_peers::postgres::fresh("crm_runs_failing").await;
    let log = SystemLog::open(&url).await.unwrap();
    a_run_that_keeps_failing_is_given_up(&log.verification_runs()).await;
    log.close().await;
    test_peers::postgres::drop(&url).await;
    let url = test_peers::postgres::fresh("crm_runs_race").await;
    let log = SystemLog::open(&url).await.unwrap();
    one_of_many_claimants_takes_it(&std::sync::Arc::new(log.verification_runs())).await;
    log.close().await;
    test_peers::postgres::drop(&url).await;
}
