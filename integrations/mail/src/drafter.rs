//! The models that draft mail: any OpenAI-compatible chat endpoint, or Amazon Bedrock's
//! Converse API (feature `aws`). Both get bounded input and output, a timeout per call,
//! and retries with backoff on failures worth retrying.

use async_trait::async_trait;
use serde_json::{json, Value};
use std::time::Duration;
use thiserror::Error;

/// What the model is told: draft, keep the placeholders, invent nothing.
pub const INSTRUCTIONS: &str = "You draft short, courteous emails from a bank's client \
    agent to a client. Write only the email body in the language of the request. Keep \
    every placeholder of the form [[KIND_N]] exactly as written; never invent names, \
    numbers, amounts or dates.";
/// The longest draft returned (characters); longer answers are cut at a line break.
pub const OUTPUT_LIMIT: usize = 8_000;
const MAX_TOKENS: u32 = 1_024;
const ATTEMPTS: u32 = 3;

#[derive(Debug, Error)]
pub enum DraftError {
    #[error("the model could not be reached: {0}")]
    Unreachable(String),
    #[error("the model refused the request: {0}")]
    Refused(String),
    #[error("the model's answer could not be read: {0}")]
    Unreadable(String),
}

impl DraftError {
    fn retryable(&self) -> bool {
        matches!(self, DraftError::Unreachable(_))
    }
}

#[async_trait]
pub trait Drafter: Send + Sync {
    /// The provider and model, for logs.
    fn name(&self) -> String;
    /// One attempt at a draft for `prompt` (already redacted).
    async fn draft_once(&self, prompt: &str) -> Result<String, DraftError>;
}

/// A draft with retries and backoff, cut to [`OUTPUT_LIMIT`].
pub async fn draft(drafter: &dyn Drafter, prompt: &str) -> Result<String, DraftError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match drafter.draft_once(prompt).await {
            Ok(text) => return Ok(bounded(text.trim())),
            Err(error) if error.retryable() && attempt < ATTEMPTS => {
                tracing::warn!(%error, attempt, model = %drafter.name(), "drafting failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

fn bounded(text: &str) -> String {
    if text.chars().count() <= OUTPUT_LIMIT {
        return text.to_string();
    }
    let cut: String = text.chars().take(OUTPUT_LIMIT).collect();
    match cut.rfind('\n') {
        Some(at) if at > OUTPUT_LIMIT / 2 => cut[..at].to_string(),
        _ => cut,
    }
}

/// An OpenAI-compatible `POST {base}/chat/completions`.
pub struct OpenAiCompatible {
    http: reqwest::Client,
    base_url: String,
    model: String,
    api_key: Option<String>,
}

impl OpenAiCompatible {
    pub fn new(base_url: &str, model: &str, api_key: Option<String>, timeout: Duration) -> Self {
        OpenAiCompatible {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .unwrap_or_default(),
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            api_key,
        }
    }
}

#[async_trait]
impl Drafter for OpenAiCompatible {
    fn name(&self) -> String {
        format!("openai-compatible:{}", self.model)
    }

    async fn draft_once(&self, prompt: &str) -> Result<String, DraftError> {
        let mut request = self
            .http
            .post(format!("{}/chat/completions", self.base_url))
            .json(&json!({
                "model": self.model,
                "max_tokens": MAX_TOKENS,
                "messages": [
                    {"role": "system", "content": INSTRUCTIONS},
                    {"role": "user", "content": prompt},
                ],
            }));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request
            .send()
            .await
            .map_err(|e| DraftError::Unreachable(e.to_string()))?;
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(DraftError::Unreachable(format!("status {status}")));
        }
        if !status.is_success() {
            return Err(DraftError::Refused(format!("status {status}")));
        }
        let answer: Value = response
            .json()
            .await
            .map_err(|e| DraftError::Unreadable(e.to_string()))?;
        answer["choices"][0]["message"]["content"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| DraftError::Unreadable("no choices[0].message.content".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_answers_are_cut() {
        let long = "line\n".repeat(OUTPUT_LIMIT);
        assert!(bounded(&long).chars().count() <= OUTPUT_LIMIT);
        assert_eq!(bounded("short"), "short");
    }
}
