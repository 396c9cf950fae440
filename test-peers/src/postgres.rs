//! Databases on the machine's PostgreSQL (`CRM_TEST_POSTGRES_URL`, by default
//! postgres://postgres@127.0.0.1:5432, which scripts/test starts): a fresh one per test.

/// The PostgreSQL server tests use, without a database name.
pub fn server() -> String {
    std::env::var("CRM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub use local_peers::postgres::recreate;

/// A new empty database named `<prefix>_<unique>` on the test server; its URL.
pub async fn fresh(prefix: &str) -> String {
    let name = format!("{prefix}_{}", uuid::Uuid::now_v7().simple());
    recreate(&server(), &name)
        .await
        .expect("PostgreSQL must be running (scripts/test starts it)")
}

/// Drops the database at `url` (made by [`fresh`]).
pub async fn drop(url: &str) {
    let (server, name) = url.rsplit_once('/').expect("a database URL");
    let admin = sqlx::PgPool::connect(&format!("{server}/postgres"))
        .await
        .expect("PostgreSQL");
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await;
    admin.close().await;
}
