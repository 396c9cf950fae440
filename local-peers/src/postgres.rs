//! Databases on a PostgreSQL server: made afresh for a local run or a test.

/// Drops the database `name` on `server` (a URL without a database) if it exists and
/// creates it empty; its URL. The name goes into SQL as an identifier, so only lower-case
/// letters, digits and underscores are taken.
pub async fn recreate(server: &str, name: &str) -> Result<String, sqlx::Error> {
    let plain = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    if name.is_empty() || !name.chars().all(plain) {
        return Err(sqlx::Error::Configuration(
            format!("database name {name:?}: use lower-case letters, digits and _").into(),
        ));
    }
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
