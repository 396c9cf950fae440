//! The mail Lambda (behind an ALB). Configuration: see `mail::lambda::LambdaConfig`.

#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt().json().with_target(false).init();
    let config = mail::lambda::LambdaConfig::from_env(|name| std::env::var(name).ok())?;
    let sdk = aws_config::load_from_env().await;
    let state = mail::lambda::state(&config, mail::lambda::AwsClients::new(&sdk)).await?;
    lambda_http::run(mail::router(state)).await
}
