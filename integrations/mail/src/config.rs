//! The service's configuration, from the environment:
//! - `CRM_MAIL_PROVIDER`: `openai` (any OpenAI-compatible endpoint, at
//!   `CRM_MAIL_OPENAI_URL`, key in `CRM_MAIL_OPENAI_API_KEY` if it needs one) or
//!   `bedrock` (AWS); `CRM_MAIL_MODEL` the model. Unset: no drafting (503).
//! - `CRM_SMTP_URL` (`smtp://host:port`, `smtps://…`): the SMTP relay; in AWS, SES.
//! - `CRM_MAIL_FROM`: the sender address.
//! - `CRM_MAIL_TIMEOUT_SECS`: per call to the model (default 30).

use std::sync::Arc;
use std::time::Duration;

use crate::drafter::{Drafter, OpenAiCompatible};
use crate::sender::{Sender, Smtp};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailSettings {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub openai_url: Option<String>,
    pub openai_api_key: Option<String>,
    pub smtp_url: Option<String>,
    pub from: String,
    pub timeout: Duration,
}

impl MailSettings {
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let timeout = match get("CRM_MAIL_TIMEOUT_SECS") {
            Some(secs) => Duration::from_secs(
                secs.parse()
                    .map_err(|_| format!("CRM_MAIL_TIMEOUT_SECS `{secs}` is not a number"))?,
            ),
            None => Duration::from_secs(30),
        };
        let settings = MailSettings {
            provider: get("CRM_MAIL_PROVIDER"),
            model: get("CRM_MAIL_MODEL"),
            openai_url: get("CRM_MAIL_OPENAI_URL"),
            openai_api_key: get("CRM_MAIL_OPENAI_API_KEY"),
            smtp_url: get("CRM_SMTP_URL"),
            from: get("CRM_MAIL_FROM")
                .unwrap_or_else(|| "Ledgerline <no-reply@ledgerline.local>".into()),
            timeout,
        };
        match (
            settings.provider.as_deref(),
            &settings.model,
            &settings.openai_url,
        ) {
            (None, _, _) => Ok(settings),
            (Some(_), None, _) => Err("CRM_MAIL_MODEL is required with CRM_MAIL_PROVIDER".into()),
            (Some("openai"), Some(_), None) => {
                Err("CRM_MAIL_OPENAI_URL is required with CRM_MAIL_PROVIDER=openai".into())
            }
            (Some("openai" | "bedrock"), Some(_), _) => Ok(settings),
            (Some(other), _, _) => Err(format!(
                "CRM_MAIL_PROVIDER `{other}` is not one of openai, bedrock"
            )),
        }
    }

    /// The OpenAI-compatible drafter, if that is the configured provider (Bedrock is
    /// built by the AWS entry point, which has the SDK).
    pub fn openai_drafter(&self) -> Option<Arc<dyn Drafter>> {
        match (self.provider.as_deref(), &self.model, &self.openai_url) {
            (Some("openai"), Some(model), Some(url)) => Some(Arc::new(OpenAiCompatible::new(
                url,
                model,
                self.openai_api_key.clone(),
                self.timeout,
            ))),
            _ => None,
        }
    }

    /// The SMTP sender, if a relay is configured.
    pub fn smtp_sender(&self) -> Result<Option<Arc<dyn Sender>>, String> {
        match &self.smtp_url {
            Some(url) => Ok(Some(Arc::new(
                Smtp::new(url, &self.from).map_err(|e| e.to_string())?,
            ))),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<MailSettings, String> {
        MailSettings::from_env(|name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn nothing_configured_is_valid_and_drafts_nothing() {
        let none = settings(&[]).unwrap();
        assert!(none.openai_drafter().is_none());
        assert!(none.smtp_sender().unwrap().is_none());
    }

    #[test]
    fn a_provider_needs_its_model_and_endpoint() {
        assert!(settings(&[("CRM_MAIL_PROVIDER", "openai")])
            .unwrap_err()
            .contains("CRM_MAIL_MODEL"));
        assert!(
            settings(&[("CRM_MAIL_PROVIDER", "openai"), ("CRM_MAIL_MODEL", "m")])
                .unwrap_err()
                .contains("CRM_MAIL_OPENAI_URL")
        );
        assert!(settings(&[("CRM_MAIL_PROVIDER", "gpt"), ("CRM_MAIL_MODEL", "m")]).is_err());
        let openai = settings(&[
            ("CRM_MAIL_PROVIDER", "openai"),
            ("CRM_MAIL_MODEL", "m"),
            ("CRM_MAIL_OPENAI_URL", "http://127.0.0.1:1/v1"),
        ])
        .unwrap();
        assert!(openai.openai_drafter().is_some());
    }
}
