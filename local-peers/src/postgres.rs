//! Databases on a PostgreSQL server: made afresh for a local run or a test.

/// Drops the database `name` on `server` (a URL without a database) if it exists and
/// creates it empty; its URL.
pub async fn recreate(server: &str, name: &str) -> Result<String, sqlx::Error> {
    let admin = sqlx::PgPool::connect(&format!("{server}/postgres")).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await?;
    admin.close().await;
    Ok(format!("{server}/{name}"))
}
