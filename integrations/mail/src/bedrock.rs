//! Amazon Bedrock's Converse API as a [`Drafter`] (feature `aws`).

use async_trait::async_trait;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ConversationRole, InferenceConfiguration, Message, SystemContentBlock,
};

use crate::drafter::{DraftError, Drafter, INSTRUCTIONS};

pub struct Bedrock {
    client: aws_sdk_bedrockruntime::Client,
    model: String,
}

impl Bedrock {
    pub fn new(client: aws_sdk_bedrockruntime::Client, model: &str) -> Self {
        Bedrock {
            client,
            model: model.to_string(),
        }
    }
}

#[async_trait]
impl Drafter for Bedrock {
    fn name(&self) -> String {
        format!("bedrock:{}", self.model)
    }

    async fn draft_once(&self, prompt: &str) -> Result<String, DraftError> {
        let message = Message::builder()
            .role(ConversationRole::User)
            .content(ContentBlock::Text(prompt.to_string()))
            .build()
            .map_err(|e| DraftError::Refused(e.to_string()))?;
        let answer = self
            .client
            .converse()
            .model_id(&self.model)
            .system(SystemContentBlock::Text(INSTRUCTIONS.to_string()))
            .messages(message)
            .inference_config(InferenceConfiguration::builder().max_tokens(1_024).build())
            .send()
            .await
            .map_err(|error| {
                let throttled = error.as_service_error().is_some_and(|e| {
                    e.is_throttling_exception() || e.is_service_unavailable_exception()
                });
                let text = aws_sdk_bedrockruntime::error::DisplayErrorContext(&error).to_string();
                if throttled || error.as_service_error().is_none() {
                    DraftError::Unreachable(text)
                } else {
                    DraftError::Refused(text)
                }
            })?;
        let message = answer
            .output()
            .and_then(|output| output.as_message().ok())
            .ok_or_else(|| DraftError::Unreadable("no message in the answer".into()))?;
        let text: Vec<&str> = message
            .content()
            .iter()
            .filter_map(|block| block.as_text().ok().map(String::as_str))
            .collect();
        if text.is_empty() {
            return Err(DraftError::Unreadable("no text in the answer".into()));
        }
        Ok(text.join("\n"))
    }
}
