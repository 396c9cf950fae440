//! The product's own API, as the worker uses it: an OAuth client-credentials token (the
//! `worker` role), account reads to check a file before recording anything, and the
//! worker's command, `POST /v1/accounts/{id}/external-transactions`.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::Mutex;

use crate::format::Line;

#[derive(Debug, Error)]
pub enum ApiCallError {
    /// The product refused (4xx): the reason, for the report.
    #[error("{0}")]
    Refused(String),
    /// It could not be reached or failed (5xx): try again later.
    #[error("the product API is unavailable: {0}")]
    Unavailable(String),
}

/// What the worker needs to know of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    pub currency: String,
    pub status: String,
    pub balance_minor: i64,
}

pub struct ProductApi {
    http: reqwest::Client,
    base: String,
    token_url: String,
    client_id: String,
    client_secret: String,
    token: Mutex<Option<(String, Instant)>>,
}

fn unavailable(error: impl std::fmt::Display) -> ApiCallError {
    ApiCallError::Unavailable(error.to_string())
}

impl ProductApi {
    /// `base`: the API's URL; `token_url`: the OAuth token endpoint (`{base}/oauth2/token`
    /// on the embedded default, the user pool's domain in AWS).
    pub fn new(base: &str, token_url: &str, client_id: &str, client_secret: &str) -> Self {
        ProductApi {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            base: base.trim_end_matches('/').to_string(),
            token_url: token_url.to_string(),
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            token: Mutex::new(None),
        }
    }

    async fn token(&self) -> Result<String, ApiCallError> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref() {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let response = self
            .http
            .post(&self.token_url)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(unavailable)?;
        if !response.status().is_success() {
            return Err(ApiCallError::Unavailable(format!(
                "the token endpoint answered {}",
                response.status()
            )));
        }
        let body: Value = response.json().await.map_err(unavailable)?;
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| unavailable("no access_token from the token endpoint"))?
            .to_string();
        let lifetime = body["expires_in"]
            .as_u64()
            .unwrap_or(300)
            .saturating_sub(30);
        *cached = Some((
            token.clone(),
            Instant::now() + Duration::from_secs(lifetime),
        ));
        Ok(token)
    }

    async fn answer(response: reqwest::Response) -> Result<Value, ApiCallError> {
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let detail = body["detail"].as_str().unwrap_or("no detail").to_string();
        if status.is_client_error() && status.as_u16() != 429 {
            Err(ApiCallError::Refused(detail))
        } else {
            Err(ApiCallError::Unavailable(format!("{status}: {detail}")))
        }
    }

    /// The account, or `None` if there is no such account.
    pub async fn account(&self, id: &str) -> Result<Option<AccountState>, ApiCallError> {
        let response = self
            .http
            .get(format!("{}/v1/accounts/{id}", self.base))
            .bearer_auth(self.token().await?)
            .send()
            .await
            .map_err(unavailable)?;
        if response.status().as_u16() == 404 {
            return Ok(None);
        }
        let body = Self::answer(response).await?;
        Ok(Some(AccountState {
            currency: body["currency"].as_str().unwrap_or_default().to_string(),
            status: body["status"].as_str().unwrap_or_default().to_string(),
            balance_minor: body["balance"]["amount_minor"].as_i64().unwrap_or_default(),
        }))
    }

    /// Records one line; the same `key` again replays rather than records twice.
    pub async fn record(&self, line: &Line, key: &str) -> Result<(), ApiCallError> {
        let response = self
            .http
            .post(format!(
                "{}/v1/accounts/{}/external-transactions",
                self.base, line.account_id
            ))
            .bearer_auth(self.token().await?)
            .header("idempotency-key", key)
            .json(&json!({
                "external_id": line.external_id,
                "direction": line.direction.as_str(),
                "amount": {"amount_minor": line.amount_minor, "currency": line.currency.code()},
                "booked_at": line.booked_at.to_rfc3339(),
                "description": line.description,
            }))
            .send()
            .await
            .map_err(unavailable)?;
        Self::answer(response).await.map(drop)
    }
}
