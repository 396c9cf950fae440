//! Sending mail: SMTP (lettre) on the embedded default, SES v2 in AWS (feature `aws`).

use async_trait::async_trait;
use domain::contact::Email;
use lettre::message::{header::ContentType, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use thiserror::Error;

/// One message to one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: Email,
    pub subject: String,
    pub body: String,
}

#[derive(Debug, Error)]
pub enum SendError {
    #[error("the mail could not be built: {0}")]
    Invalid(String),
    #[error("the mail service did not take the message: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Sender: Send + Sync {
    /// Sends `mail`; the transport's message id.
    async fn send(&self, mail: &Mail) -> Result<String, SendError>;
}

/// An SMTP relay: `smtp://host:port` (STARTTLS when offered; `?tls=required` to insist)
/// or `smtps://host:port`, with credentials in the URL if it needs them.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Smtp {
    pub fn new(url: &str, from: &str) -> Result<Self, SendError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| SendError::Invalid(format!("SMTP URL: {e}")))?
            .build();
        let from = from
            .parse()
            .map_err(|e| SendError::Invalid(format!("sender address: {e}")))?;
        Ok(Smtp { transport, from })
    }
}

#[async_trait]
impl Sender for Smtp {
    async fn send(&self, mail: &Mail) -> Result<String, SendError> {
        let to: Mailbox = mail
            .to
            .as_str()
            .parse()
            .map_err(|e| SendError::Invalid(format!("recipient: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| SendError::Invalid(e.to_string()))?;
        let response = self
            .transport
            .send(message)
            .await
            .map_err(|e| SendError::Unavailable(e.to_string()))?;
        Ok(response.message().collect::<Vec<_>>().join(" "))
    }
}
