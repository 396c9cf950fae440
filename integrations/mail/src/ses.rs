//! Amazon SES (v2) as a [`Sender`] (feature `aws`).

use async_trait::async_trait;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

use crate::sender::{Mail, SendError, Sender};

pub struct Ses {
    client: aws_sdk_sesv2::Client,
    from: String,
}

impl Ses {
    pub fn new(client: aws_sdk_sesv2::Client, from: &str) -> Self {
        Ses {
            client,
            from: from.to_string(),
        }
    }
}

fn content(text: &str) -> Result<Content, SendError> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| SendError::Invalid(e.to_string()))
}

#[async_trait]
impl Sender for Ses {
    async fn send(&self, mail: &Mail) -> Result<String, SendError> {
        let message = Message::builder()
            .subject(content(&mail.subject)?)
            .body(Body::builder().text(content(&mail.body)?).build())
            .build();
        let sent = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(
                Destination::builder()
                    .to_addresses(mail.to.as_str())
                    .build(),
            )
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| {
                SendError::Unavailable(aws_sdk_sesv2::error::DisplayErrorContext(&e).to_string())
            })?;
        Ok(sent.message_id().unwrap_or_default().to_string())
    }
}
