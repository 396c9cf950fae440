//! What the service accepts: `{"action":"generate","prompt":…}` or
//! `{"action":"send","recipient":…,"subject":…,"body":…}`. Anything else — unknown
//! action or field, missing or empty field, bad address, oversized text — is a 400 that
//! names the field; nothing is drafted, sent or recorded.

use api_kit::ApiError;
use domain::contact::Email;
use domain::ClientId;
use serde::Deserialize;

/// The largest request body read.
pub const BODY_LIMIT: usize = 64 * 1024;
pub const PROMPT_LIMIT: usize = 4_000;
pub const SUBJECT_LIMIT: usize = 200;
pub const MAIL_BODY_LIMIT: usize = 20_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailRequest {
    /// Draft a message; with `client_id`, about (and for) that client.
    Generate {
        prompt: String,
        client_id: Option<ClientId>,
    },
    Send {
        recipient: Email,
        subject: String,
        body: String,
    },
}

/// A request as sent: what to do (`action`) and its fields.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Raw {
    /// Draft a message with the language model; personal data is redacted before the
    /// prompt leaves and restored in the draft.
    Generate {
        #[schema(min_length = 1, max_length = 4000)]
        prompt: String,
        /// The client the message is about (one of the caller's).
        #[schema(format = Uuid)]
        client_id: Option<String>,
    },
    /// Send a message to one of the caller's own clients, and record it on the client.
    Send {
        #[schema(format = Email)]
        recipient: String,
        /// One line.
        #[schema(min_length = 1, max_length = 200)]
        subject: String,
        #[schema(min_length = 1, max_length = 20000)]
        body: String,
    },
}

fn bad(detail: impl Into<String>) -> ApiError {
    ApiError::BadRequest {
        code: "invalid-mail-request",
        detail: detail.into(),
    }
}

/// Text of 1 to `limit` characters; `single_line` also refuses line breaks (a header).
fn text(
    errors: &mut Vec<String>,
    field: &'static str,
    value: String,
    limit: usize,
    single_line: bool,
) -> String {
    let count = value.chars().count();
    let message = if value.trim().is_empty() {
        Some("must not be empty".to_string())
    } else if count > limit {
        Some(format!("must be at most {limit} characters, not {count}"))
    } else if value
        .chars()
        .any(|c| c.is_control() && (single_line || !matches!(c, '\n' | '\r' | '\t')))
    {
        Some("must not contain control characters".to_string())
    } else {
        None
    };
    if let Some(message) = message {
        errors.push(format!("{field} {message}"));
    }
    value
}

impl MailRequest {
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        if body.len() > BODY_LIMIT {
            return Err(ApiError::PayloadTooLarge(BODY_LIMIT));
        }
        let raw: Raw = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
        let mut errors = Vec::new();
        let request = match raw {
            Raw::Generate { prompt, client_id } => {
                let prompt = text(&mut errors, "prompt", prompt, PROMPT_LIMIT, false);
                let client_id = client_id.and_then(|id| match id.parse::<ClientId>() {
                    Ok(id) => Some(id),
                    Err(_) => {
                        errors.push("client_id must be a client id".into());
                        None
                    }
                });
                MailRequest::Generate { prompt, client_id }
            }
            Raw::Send {
                recipient,
                subject,
                body,
            } => {
                let recipient = Email::parse(&recipient)
                    .map_err(|error| errors.push(format!("recipient {error}")))
                    .ok();
                let subject = text(&mut errors, "subject", subject, SUBJECT_LIMIT, true);
                let body = text(&mut errors, "body", body, MAIL_BODY_LIMIT, false);
                match recipient {
                    Some(recipient) => MailRequest::Send {
                        recipient,
                        subject,
                        body,
                    },
                    None => return Err(bad(errors.join("; "))),
                }
            }
        };
        if !errors.is_empty() {
            return Err(bad(errors.join("; ")));
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &str) -> String {
        match MailRequest::parse(body.as_bytes()) {
            Err(ApiError::BadRequest { detail, .. }) => detail,
            other => panic!("{body} was not refused: {other:?}"),
        }
    }

    #[test]
    fn reads_both_actions() {
        let generate =
            MailRequest::parse(br#"{"action":"generate","prompt":"Thank them"}"#).unwrap();
        assert!(matches!(
            generate,
            MailRequest::Generate {
                client_id: None,
                ..
            }
        ));
        let send = MailRequest::parse(
            br#"{"action":"send","recipient":"ada@example.com","subject":"Hello","body":"Dear Ada,\nthanks."}"#,
        )
        .unwrap();
        assert!(matches!(send, MailRequest::Send { .. }));
    }

    #[test]
    fn refuses_bad_input_naming_the_field() {
        assert!(refused(r#"{"action":"delete"}"#).contains("unknown variant"));
        assert!(
            refused(r#"{"action":"send","recipient":"a@b.example","subject":"x"}"#)
                .contains("body")
        );
        assert!(
            refused(r#"{"action":"send","recipient":"nobody","subject":"x","body":"y"}"#)
                .starts_with("recipient")
        );
        assert!(refused(
            r#"{"action":"send","recipient":"a@b.example","subject":"x\ny","body":"y"}"#
        )
        .contains("subject"));
        assert!(
            refused(r#"{"action":"generate","prompt":"  "}"#).contains("prompt must not be empty")
        );
        assert!(
            refused(r#"{"action":"generate","prompt":"x","extra":1}"#).contains("unknown field")
        );
        assert!(
            refused(r#"{"action":"generate","prompt":"x","client_id":"nope"}"#)
                .contains("client_id")
        );
        let long = format!(
            r#"{{"action":"generate","prompt":"{}"}}"#,
            "x".repeat(PROMPT_LIMIT + 1)
        );
        assert!(refused(&long).contains("at most"));
        let huge = format!(
            r#"{{"action":"generate","prompt":"{}"}}"#,
            "x".repeat(BODY_LIMIT)
        );
        assert!(matches!(
            MailRequest::parse(huge.as_bytes()),
            Err(ApiError::PayloadTooLarge(BODY_LIMIT))
        ));
        assert!(refused("not json").contains("expected"));
    }
}
