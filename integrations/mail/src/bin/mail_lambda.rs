//! The mail Lambda (behind an ALB). Configuration: see `mail::lambda::LambdaConfig`.

#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt().json().with_target(false).init();
    let sdk = aws_config::load_from_env().await;
    let var = |name: &str| std::env::var(name).ok();
    let database = projections::database_secret::database_url(
        &sdk,
        &var("CRM_READ_DATABASE_URL").unwrap_or_default(),
        var("CRM_READ_DATABASE_SECRET_ARN").as_deref(),
    )
    .await?;
    let config = mail::lambda::LambdaConfig::from_env(|name| match name {
        "CRM_READ_DATABASE_URL" if !database.is_empty() => Some(database.clone()),
        other => var(other),
    })?;
    let router = mail::lambda::router(&config, mail::lambda::AwsClients::new(&sdk)).await?;
    lambda_http::run(router).await
}
