//! The LLM mail service (DESIGN.md §6): `POST /v1/mail` drafts client mail with a
//! language model — personal data replaced by placeholders before the prompt leaves —
//! and sends it, recording every send on the client's stream. It runs in `crm serve`
//! (OpenAI-compatible endpoint, SMTP) and in AWS behind an ALB (Bedrock, SES).

#[cfg(feature = "aws")]
pub mod bedrock;
pub mod config;
pub mod drafter;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod redact;
pub mod request;
pub mod sender;
pub mod service;
#[cfg(feature = "aws")]
pub mod ses;

pub use config::MailSettings;
pub use drafter::{Drafter, OpenAiCompatible};
pub use sender::{Sender, Smtp};
pub use service::{router, MailDoc, MailState};
