//! The relay Lambda binary. Configuration: `CRM_EVENT_BUS`, `CRM_PROJECTOR_QUEUE_URL`
//! and `CRM_DYNAMODB_TABLE_PREFIX` (the store whose Merkle log it keeps; all required)
//! and the standard AWS SDK environment.

use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt().json().with_target(false).init();
    let required = |name: &str, what: &str| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
            .ok_or(format!("{name} is required: {what}"))
    };
    let bus = required("CRM_EVENT_BUS", "the EventBridge bus to publish to")?;
    let queue = required(
        "CRM_PROJECTOR_QUEUE_URL",
        "the projector's FIFO queue to send to",
    )?;
    // Set, even if empty: an empty prefix is a deployment's choice, a missing one a mistake.
    let prefix = std::env::var("CRM_DYNAMODB_TABLE_PREFIX")
        .map_err(|_| "CRM_DYNAMODB_TABLE_PREFIX is required: the event store's table prefix")?;
    let config = aws_config::load_from_env().await;
    let store = event_store::DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        event_store::DynamoTables::with_prefix(&prefix),
    );
    let relay = relay::Relay::new(aws_sdk_eventbridge::Client::new(&config), bus)
        .with_projector_queue(aws_sdk_sqs::Client::new(&config), queue)
        .keeping_log(store);
    let relay = &relay;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::event::dynamodb::Event>| async move {
            Ok::<_, lambda_runtime::Error>(relay::lambda::handle(relay, event.payload).await)
        },
    ))
    .await
}
