//! The relay Lambda binary. Configuration: `CRM_EVENT_BUS` (required) and the standard
//! AWS SDK environment.

use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt().json().with_target(false).init();
    let bus = std::env::var("CRM_EVENT_BUS")
        .ok()
        .filter(|bus| !bus.trim().is_empty())
        .ok_or("CRM_EVENT_BUS is required: the EventBridge bus to publish to")?;
    let config = aws_config::load_from_env().await;
    let relay = relay::Relay::new(aws_sdk_eventbridge::Client::new(&config), bus);
    let relay = &relay;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::event::dynamodb::Event>| async move {
            Ok::<_, lambda_runtime::Error>(relay::lambda::handle(relay, event.payload).await)
        },
    ))
    .await
}
