//! The AWS clients the stack uses, from one SDK configuration (in AWS, and wherever the
//! standard `AWS_ENDPOINT_URL_<SERVICE>` variables point) or from two (the local mode:
//! DynamoDB Local for the store and its stream, moto for everything else: EventBridge,
//! SQS, Cognito, SES; Bedrock has no local peer).

use aws_config::SdkConfig;

#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamo: event_store::aws_sdk_dynamodb::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub cognito: aws_sdk_cognitoidentityprovider::Client,
    pub ses: aws_sdk_sesv2::Client,
    pub bedrock: aws_sdk_bedrockruntime::Client,
    /// KMS and S3: the ledger's digests.
    pub digests: query_api::service::DigestClients,
}

impl AwsClients {
    pub fn new(sdk: &SdkConfig) -> Self {
        AwsClients {
            digests: query_api::service::DigestClients::from_env(sdk),
            ..Self::split(sdk, sdk)
        }
    }

    /// `store` for DynamoDB and DynamoDB Streams, `services` (an emulator, whose S3 is
    /// addressed by path) for the rest.
    pub fn split(store: &SdkConfig, services: &SdkConfig) -> Self {
        AwsClients {
            digests: query_api::service::DigestClients::new(services, true),
            dynamo: event_store::aws_sdk_dynamodb::Client::new(store),
            streams: aws_sdk_dynamodbstreams::Client::new(store),
            events: aws_sdk_eventbridge::Client::new(services),
            sqs: aws_sdk_sqs::Client::new(services),
            cognito: aws_sdk_cognitoidentityprovider::Client::new(services),
            ses: aws_sdk_sesv2::Client::new(services),
            bedrock: aws_sdk_bedrockruntime::Client::new(services),
        }
    }
}
