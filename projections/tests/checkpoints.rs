//! The read models' write-ahead log on SQLite is checkpointed by a task of its own, not
//! by the projector's commits (which do so only past a far larger bound): the log
//! still stays small.

use projections::{sqlite_url, ReadStore};

/// 3,000 commits, a few milliseconds apart every ten as a live projector's are, leave
/// a log of about 6,600 pages without the task (under the commits' own bound of
/// 10,000). With it the log stays near SQLite's default of 1,000 pages; how near
/// depends on how promptly the task runs on a busy machine (up to 1,520 pages seen), so
/// the test allows 2,500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_models_log_is_checkpointed_apart_from_the_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read.db");
    let read = ReadStore::open(&sqlite_url(&path)).await.unwrap();
    let pool = read.pool();
    let (automatic,): (i64,) = sqlx::query_as("PRAGMA wal_autocheckpoint")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(automatic, 10_000, "commits checkpoint only past the bound");
    for position in 0..3_000i64 {
        sqlx::query(
            "INSERT INTO dead_letters (position, aggregate_type, aggregate_id, sequence, \
             event_type, error, recorded_at) VALUES ($1, 'account', $2, 1, 'Deposited', 'x', 'now')",
        )
        .bind(position)
        .bind(format!("{position:0>200}"))
        .execute(&pool)
        .await
        .unwrap();
        if position % 10 == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
    }
    let wal = std::fs::metadata(dir.path().join("read.db-wal"))
        .unwrap()
        .len();
    let page = 4096;
    assert!(wal < 2_500 * page, "the log grew to {wal} bytes");
    read.close().await;
}
