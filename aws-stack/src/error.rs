use thiserror::Error;

/// What can go wrong creating or running the stack; each names the resource.
#[derive(Debug, Error)]
pub enum StackError {
    #[error("{resource}: {message}")]
    Aws { resource: String, message: String },
    #[error("read models: {0}")]
    ReadModels(#[from] projections::ProjectionError),
    #[error("event store: {0}")]
    Store(#[from] event_store::StoreError),
    #[error("{0}")]
    Setup(String),
}

impl StackError {
    /// An AWS call on `resource` failed; the SDK's error with its context.
    pub(crate) fn aws<E>(resource: impl Into<String>, error: E) -> Self
    where
        E: std::error::Error + 'static,
    {
        StackError::Aws {
            resource: resource.into(),
            message: aws_sdk_sqs::error::DisplayErrorContext(&error).to_string(),
        }
    }
}
