//! `POST /v1/mail`: the two actions, each checked against the policy — an agent drafts
//! for and writes to their own clients only — and every send recorded as a
//! `CommunicationSent` event (recipient, subject, the body's SHA-256; the actor in the
//! metadata) on the client's stream, after the transport took the message.

use api_kit::{ApiError, Authenticator};
use axum::body::Bytes;
use axum::extract::{FromRef, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use command_api::context::CommandContext;
use domain::client::{Client, ClientCommand};
use domain::contact::Email;
use domain::policy::Action;
use domain::{ClientId, StaffId};
use event_store::{EventStore, Expected};
use projections::ReadStore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use utoipa::ToSchema;

use crate::drafter::{self, DraftError, Drafter};
use crate::redact::{redact, Known};
use crate::request::MailRequest;
use crate::sender::{Mail, SendError, Sender};

#[derive(Clone)]
pub struct MailState {
    pub store: Arc<EventStore>,
    pub auth: Arc<Authenticator>,
    /// Finds clients by email address (the read models).
    pub read: Arc<ReadStore>,
    /// `None`: no model configured; drafting answers 503.
    pub drafter: Option<Arc<dyn Drafter>>,
    /// `None`: no transport configured; sending answers 503.
    pub sender: Option<Arc<dyn Sender>>,
}

impl FromRef<MailState> for Arc<Authenticator> {
    fn from_ref(state: &MailState) -> Self {
        state.auth.clone()
    }
}

impl FromRef<MailState> for Arc<EventStore> {
    fn from_ref(state: &MailState) -> Self {
        state.store.clone()
    }
}

/// The mail route's part of the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(handle), components(schemas(MailAnswer, crate::request::Raw)))]
pub struct MailDoc;

/// The mail route, with `Idempotency-Key` support (a retried send goes out once), run
/// apart from its connection as commands are (a hang-up cancels no send half-done).
pub fn router(state: MailState) -> Router {
    Router::new()
        .route("/v1/mail", command_api::command(&state, post(handle)))
        .with_state(state)
}

/// What the mail service answers: a draft, or a sent message.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum MailAnswer {
    Draft {
        /// The drafted text, with the client's details restored.
        draft: String,
        /// How many pieces of personal data were redacted before the model saw them.
        redactions: usize,
        model: String,
    },
    Sent {
        /// `sent`.
        status: String,
        client_id: String,
        message_id: String,
        /// The client's version after `CommunicationSent`.
        version: u64,
    },
}

/// Draft client mail with the language model, or send it (agents, to their own clients).
#[utoipa::path(post, path = "/v1/mail", tag = "mail",
    request_body(content = crate::request::Raw, content_type = "application/json"),
    responses((status = 200, body = MailAnswer, description = "Drafted or sent"),
        (status = 400, description = "Unknown action or field, a missing, empty, oversized or badly formed field"),
        (status = 403, description = "Only agents draft and send client mail"),
        (status = 404, description = "None of the caller's clients has this address or id"),
        (status = 409, description = "The client is deactivated or erased: nothing is sent"),
        (status = 503, description = "No language model or mail transport configured, or the model did not answer")),
    security(("bearer" = [])))]
pub(crate) async fn handle(
    State(state): State<MailState>,
    context: CommandContext,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    api_kit::json::require_json(&headers)?;
    match MailRequest::parse(&body)? {
        MailRequest::Generate { prompt, client_id } => {
            let mut answer = generate(&state, &context, &prompt, client_id)
                .await?
                .into_response();
            // A draft holds the client's details: never kept as an idempotent answer.
            answer
                .extensions_mut()
                .insert(command_api::idempotency::NotKept);
            Ok(answer)
        }
        MailRequest::Send {
            recipient,
            subject,
            body,
        } => Ok(send(&state, &context, recipient, subject, body)
            .await?
            .into_response()),
    }
}

async fn load_client(store: &EventStore, id: ClientId) -> Result<Client, ApiError> {
    let loaded = store.load::<Client>(&id.to_string()).await?;
    if !loaded.exists() {
        return Err(ApiError::NotFound(format!("no client with id {id}")));
    }
    Ok(loaded.aggregate)
}

/// The caller as an agent: mail is drafted and sent by agents only.
fn own_agent_id(context: &CommandContext) -> Result<StaffId, ApiError> {
    context
        .caller
        .id
        .parse()
        .map_err(|_| ApiError::Forbidden("only agents draft and send client mail".into()))
}

async fn generate(
    state: &MailState,
    context: &CommandContext,
    prompt: &str,
    client_id: Option<ClientId>,
) -> Result<Json<MailAnswer>, ApiError> {
    let mut known = Known::default();
    match client_id {
        Some(id) => {
            let client = load_client(&state.store, id).await?;
            context.caller.authorize(Action::DraftMail {
                agent: client.agent_id,
            })?;
            if let Some(details) = &client.details {
                known.names = vec![
                    format!("{} {}", details.first_name, details.last_name),
                    details.first_name.clone(),
                    details.last_name.clone(),
                ];
                known.other = vec![
                    details.email.as_str().to_string(),
                    details.phone.as_str().to_string(),
                    details.address.line1.clone(),
                ];
            }
        }
        None => context.caller.authorize(Action::DraftMail {
            agent: own_agent_id(context)?,
        })?,
    }
    let drafter = state.drafter.as_ref().ok_or_else(|| {
        ApiError::NotConfigured(
            "no language model is configured (CRM_MAIL_PROVIDER and CRM_MAIL_MODEL)".into(),
        )
    })?;
    let (redacted, redaction) = redact(prompt, &known);
    let draft = drafter::draft(drafter.as_ref(), &redacted)
        .await
        .map_err(|error| match error {
            DraftError::Refused(_) | DraftError::Unreadable(_) | DraftError::Unreachable(_) => {
                tracing::error!(%error, model = %drafter.name(), "drafting failed");
                ApiError::Unavailable(format!("the language model did not answer: {error}"))
            }
        })?;
    Ok(Json(MailAnswer::Draft {
        draft: redaction.restore(&draft),
        redactions: redaction.count(),
        model: drafter.name(),
    }))
}

/// The client `recipient` belongs to, and the caller may write to: found through the
/// read models, confirmed on the client's stream.
async fn recipient_client(
    state: &MailState,
    context: &CommandContext,
    recipient: &Email,
) -> Result<(ClientId, Client), ApiError> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM clients WHERE LOWER(email) = LOWER($1) ORDER BY id")
            .bind(recipient.as_str())
            .fetch_all(&state.read.pool())
            .await
            .map_err(|e| ApiError::Unavailable(format!("read models: {e}")))?;
    let mut candidates = Vec::new();
    for (id,) in rows {
        let Ok(id) = id.parse::<ClientId>() else {
            continue;
        };
        let client = load_client(&state.store, id).await?;
        let matches = client
            .details
            .as_ref()
            .is_some_and(|d| d.email.as_str().eq_ignore_ascii_case(recipient.as_str()));
        if matches {
            candidates.push((id, client));
        }
    }
    let own = candidates
        .iter()
        .position(|(_, client)| context.caller.id == client.agent_id.to_string());
    match own {
        Some(index) => Ok(candidates.swap_remove(index)),
        // Another agent's client and no client at all get the same answer, so that an
        // agent cannot learn which addresses belong to the bank's clients. Who may not
        // send mail at all is told so first.
        None => {
            context.caller.authorize(Action::SendMail {
                agent: own_agent_id(context)?,
            })?;
            Err(ApiError::NotFound(
                "none of your clients has this email address; mail goes to your own clients only"
                    .into(),
            ))
        }
    }
}

async fn send(
    state: &MailState,
    context: &CommandContext,
    recipient: Email,
    subject: String,
    body: String,
) -> Result<Json<MailAnswer>, ApiError> {
    let (client_id, client) = recipient_client(state, context, &recipient).await?;
    context.caller.authorize(Action::SendMail {
        agent: client.agent_id,
    })?;
    let command = ClientCommand::RecordCommunication {
        recipient: recipient.clone(),
        subject: subject.clone(),
        body_sha256: hex::encode(Sha256::digest(body.as_bytes())),
    };
    // Refused before anything is sent if it could not be recorded (deactivated, erased).
    client
        .decide(command.clone())
        .map_err(|refusal| ApiError::refused(&refusal))?;
    let sender = state.sender.as_ref().ok_or_else(|| {
        ApiError::NotConfigured("no mail transport is configured (CRM_SMTP_URL)".into())
    })?;
    let mail = Mail {
        to: recipient,
        subject,
        body,
    };
    let message_id = sender.send(&mail).await.map_err(|error| match error {
        SendError::Invalid(detail) => ApiError::BadRequest {
            code: "invalid-mail",
            detail,
        },
        SendError::Unavailable(detail) => ApiError::Unavailable(detail),
    })?;
    let committed = state
        .store
        .execute::<Client>(
            &client_id.to_string(),
            Expected::Any,
            &context.metadata,
            command,
        )
        .await
        .inspect_err(|error| {
            tracing::error!(%error, client = %client_id, message_id, "mail sent but not recorded")
        })?;
    Ok(Json(MailAnswer::Sent {
        status: "sent".into(),
        client_id: client_id.to_string(),
        message_id,
        version: committed.version,
    }))
}
