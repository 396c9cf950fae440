//! Staff management: the root admin manages admins; admins manage agents and auditors.
//! The StaffUser stream is the record; the directory (who may sign in) follows it.

use api_kit::{ApiError, AppJson};
use axum::extract::{Path, State};
use domain::policy::{Action, Role};
use domain::staff::{NewStaff, StaffCommand, StaffError, StaffStatus, StaffUser};
use domain::{StaffId, ValidationErrors};
use event_store::{Committed, ExecuteError, Loaded};
use identity::{DirectoryError, NewDirectoryUser};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::context::CommandContext;
use crate::input::path_id;
use crate::reply::{CommandResult, Reply};
use crate::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateStaffRequest {
    pub username: String,
    pub email: String,
    pub full_name: String,
    /// `admin` (root admin only), `agent` or `auditor` (admins).
    pub role: String,
    /// At least 12 characters.
    pub password: String,
}

fn directory_error(error: DirectoryError) -> ApiError {
    match error {
        DirectoryError::DuplicateUsername => ApiError::Conflict {
            code: "username-taken",
            detail: "a member of staff already has this username".into(),
        },
        DirectoryError::WeakPassword(reason) => ApiError::validation("password", reason),
        DirectoryError::NotFound => {
            ApiError::NotFound("no such member of staff in the directory".into())
        }
        other => ApiError::Unavailable(other.to_string()),
    }
}

/// Create a member of staff.
#[utoipa::path(post, path = "/v1/staff", tag = "staff", request_body = CreateStaffRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 201, body = CommandResult), (status = 403, description = "Role may not create this role"),
        (status = 409, description = "Username taken"), (status = 422, description = "Invalid fields")),
    security(("bearer" = [])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    context: CommandContext,
    AppJson(request): AppJson<CreateStaffRequest>,
) -> Result<Reply<CommandResult>, ApiError> {
    // Refuse callers who manage nobody before looking at the body.
    if !matches!(context.caller.role, Role::RootAdmin | Role::Admin) {
        return Err(ApiError::Forbidden(
            "only admins and the root admin manage staff".into(),
        ));
    }
    let built = NewStaff::builder()
        .username(&request.username)
        .email(&request.email)
        .full_name(&request.full_name)
        .role(&request.role)
        .build();
    let staff = match built {
        Ok(staff) => staff,
        Err(mut errors) => {
            add_password_error(&request, &mut errors);
            return Err(errors.into());
        }
    };
    let mut errors = ValidationErrors::new();
    add_password_error(&request, &mut errors);
    errors.finish(|| ())?;
    context
        .caller
        .authorize(Action::CreateStaff { role: staff.role })?;
    // The directory has the last word on the id: Cognito assigns its own `sub`.
    let wanted = context.new_id(StaffId::from_uuid);
    let new_user = || NewDirectoryUser {
        id: wanted,
        username: staff.username.as_str().to_string(),
        role: staff.role,
        password: request.password.clone(),
    };
    let id = match state.directory.create_user(new_user()).await {
        Ok(id) => id,
        // A recovery of a request that died after creating the sign-in: the username is
        // ours if our id holds it (the embedded directory keeps the id it is given).
        Err(DirectoryError::DuplicateUsername) if event_store::is_recovering() => {
            if state
                .store
                .load::<StaffUser>(&wanted.to_string())
                .await?
                .exists()
            {
                wanted
            } else {
                state
                    .directory
                    .delete_user(wanted)
                    .await
                    .map_err(|_| directory_error(DirectoryError::DuplicateUsername))?;
                state
                    .directory
                    .create_user(new_user())
                    .await
                    .map_err(directory_error)?
            }
        }
        Err(error) => return Err(directory_error(error)),
    };
    let result = state
        .store
        .execute::<StaffUser>(
            &id.to_string(),
            context.expected,
            &context.metadata,
            StaffCommand::Create {
                staff_id: id,
                staff,
            },
        )
        .await;
    match result {
        Ok(committed) => Ok(Reply::created(
            format!("/v1/staff/{id}"),
            committed.version,
            CommandResult {
                id: id.to_string(),
                version: committed.version,
            },
        )),
        Err(error) => {
            // The event is the record: without it, the sign-in must not exist either.
            if let Err(undo) = state.directory.delete_user(id).await {
                tracing::error!(%id, error = %undo, "could not remove a directory entry whose StaffCreated failed");
            }
            Err(error.into())
        }
    }
}

/// The password rule (identity's), with the person's own names as context.
fn add_password_error(request: &CreateStaffRequest, errors: &mut ValidationErrors) {
    let context = [
        request.username.as_str(),
        request.email.as_str(),
        request.full_name.as_str(),
    ];
    if let Err(reason) = identity::check_strength(&request.password, &context) {
        errors.add("password", reason);
    }
}

/// Runs a management command on `id` after checking the caller manages its role, then
/// brings the directory in line with the stream (also after a refusal, which may be a
/// retry whose directory update failed the first time).
async fn manage(
    state: &AppState,
    context: CommandContext,
    id: &str,
    command: StaffCommand,
) -> Result<Reply<CommandResult>, ApiError> {
    let (id, loaded) = managed(state, &context, id).await?;
    let result = state
        .store
        .execute::<StaffUser>(
            &id.to_string(),
            context.expected,
            &context.metadata,
            command,
        )
        .await;
    match result {
        Ok(Committed {
            aggregate, version, ..
        }) => {
            sync_directory(state, id, &aggregate).await?;
            Ok(Reply::ok(
                version,
                CommandResult {
                    id: id.to_string(),
                    version,
                },
            ))
        }
        Err(ExecuteError::Refused(
            refusal @ (StaffError::AlreadyDisabled
            | StaffError::AlreadyEnabled
            | StaffError::Deleted),
        )) => {
            sync_directory(state, id, &loaded.aggregate).await?;
            Err(ApiError::refused(&refusal))
        }
        Err(error) => Err(error.into()),
    }
}

/// The member of staff `id`, once the caller is shown to manage their role.
async fn managed(
    state: &AppState,
    context: &CommandContext,
    id: &str,
) -> Result<(StaffId, Loaded<StaffUser>), ApiError> {
    let id: StaffId = path_id(id, "member of staff")?;
    let loaded = state.store.load::<StaffUser>(&id.to_string()).await?;
    let (Some(role), true) = (loaded.aggregate.role, loaded.exists()) else {
        return Err(ApiError::NotFound(format!(
            "no member of staff with id {id}"
        )));
    };
    context.caller.authorize(Action::ManageStaff { role })?;
    Ok((id, loaded))
}

async fn sync_directory(state: &AppState, id: StaffId, staff: &StaffUser) -> Result<(), ApiError> {
    let result = match staff.status {
        StaffStatus::Enabled => state.directory.set_enabled(id, true).await,
        StaffStatus::Disabled => state.directory.set_enabled(id, false).await,
        StaffStatus::Deleted => state.directory.delete_user(id).await,
    };
    match result {
        Ok(()) | Err(DirectoryError::NotFound) => Ok(()),
        Err(error) => Err(ApiError::Unavailable(format!(
            "the directory could not be updated: {error}"
        ))),
    }
}

/// Disable a member of staff: sign-in and existing tokens stop working.
#[utoipa::path(post, path = "/v1/staff/{id}/disable", tag = "staff",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = CommandResult), (status = 403), (status = 404), (status = 409), (status = 412)),
    security(("bearer" = [])))]
pub(crate) async fn disable(
    State(state): State<AppState>,
    context: CommandContext,
    Path(id): Path<String>,
) -> Result<Reply<CommandResult>, ApiError> {
    manage(&state, context, &id, StaffCommand::Disable).await
}

/// Enable a disabled member of staff.
#[utoipa::path(post, path = "/v1/staff/{id}/enable", tag = "staff",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = CommandResult), (status = 403), (status = 404), (status = 409), (status = 412)),
    security(("bearer" = [])))]
pub(crate) async fn enable(
    State(state): State<AppState>,
    context: CommandContext,
    Path(id): Path<String>,
) -> Result<Reply<CommandResult>, ApiError> {
    manage(&state, context, &id, StaffCommand::Enable).await
}

/// Delete a member of staff for good.
#[utoipa::path(delete, path = "/v1/staff/{id}", tag = "staff",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = CommandResult), (status = 403), (status = 404), (status = 412)),
    security(("bearer" = [])))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    context: CommandContext,
    Path(id): Path<String>,
) -> Result<Reply<CommandResult>, ApiError> {
    manage(&state, context, &id, StaffCommand::Delete).await
}

/// Lift the waits that failed sign-ins put on a member of staff (after a guessing
/// attack from some address, say). Same rule as disabling them.
#[utoipa::path(post, path = "/v1/staff/{id}/unlock", tag = "staff",
    params(("id" = String, Path)),
    responses((status = 200, body = CommandResult), (status = 403), (status = 404),
        (status = 503, description = "The directory cannot unlock (Cognito lifts its own waits)")),
    security(("bearer" = [])))]
pub(crate) async fn unlock(
    State(state): State<AppState>,
    context: CommandContext,
    Path(id): Path<String>,
) -> Result<Reply<CommandResult>, ApiError> {
    let (id, loaded) = managed(&state, &context, &id).await?;
    state
        .directory
        .unlock_sign_in(id)
        .await
        .map_err(directory_error)?;
    tracing::info!(staff = %id, by = %context.caller.id, "sign-in waits lifted");
    Ok(Reply::ok(
        loaded.version,
        CommandResult {
            id: id.to_string(),
            version: loaded.version,
        },
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeStaffRequest {
    pub email: Option<String>,
    /// 1 to 200 characters.
    pub full_name: Option<String>,
}

/// Correct a member of staff's email or name (the username and role stay; roles change
/// by their own command).
#[utoipa::path(patch, path = "/v1/staff/{id}", tag = "staff", request_body = ChangeStaffRequest,
    params(("id" = String, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = CommandResult), (status = 403), (status = 404),
        (status = 409, description = "Nothing differs from the current details"), (status = 412), (status = 422)),
    security(("bearer" = [])))]
pub(crate) async fn change(
    State(state): State<AppState>,
    context: CommandContext,
    Path(id): Path<String>,
    AppJson(request): AppJson<ChangeStaffRequest>,
) -> Result<Reply<CommandResult>, ApiError> {
    let mut errors = ValidationErrors::new();
    let email = request
        .email
        .as_deref()
        .and_then(|text| errors.check("email", domain::contact::Email::parse(text)));
    let full_name = request
        .full_name
        .as_deref()
        .and_then(|text| errors.check("full_name", domain::contact::bounded_text(text, 200)));
    if request.email.is_none() && request.full_name.is_none() {
        errors.add("body", "give the email, the full name or both");
    }
    errors.finish(|| ())?;
    manage(
        &state,
        context,
        &id,
        StaffCommand::ChangeDetails { email, full_name },
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetPasswordRequest {
    /// The new password: at least 12 characters, not built from the member's username,
    /// email or name. Tell it to them through a channel of its own.
    pub password: String,
}

/// Set a new password for a member of staff who lost theirs: their sessions end, any
/// sign-in wait is lifted, and the reset (never the password) is recorded.
#[utoipa::path(post, path = "/v1/staff/{id}/password", tag = "staff", request_body = ResetPasswordRequest,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = CommandResult), (status = 403), (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub(crate) async fn reset_password(
    State(state): State<AppState>,
    context: CommandContext,
    Path(id): Path<String>,
    AppJson(request): AppJson<ResetPasswordRequest>,
) -> Result<Reply<CommandResult>, ApiError> {
    let (id, loaded) = managed(&state, &context, &id).await?;
    let member = &loaded.aggregate;
    if member.status == StaffStatus::Deleted {
        return Err(ApiError::refused(&StaffError::Deleted));
    }
    let context_words = [
        member.username.as_str(),
        member.email.as_str(),
        member.full_name.as_str(),
    ];
    identity::check_strength(&request.password, &context_words)
        .map_err(|reason| ApiError::validation("password", reason))?;
    // The directory first: the record says a reset happened only once it has. Setting
    // the same password again on a retry is harmless.
    state
        .directory
        .reset_password(id, &request.password)
        .await
        .map_err(directory_error)?;
    let committed = state
        .store
        .execute::<StaffUser>(
            &id.to_string(),
            event_store::Expected::Any,
            &context.metadata,
            StaffCommand::RecordPasswordReset,
        )
        .await?;
    Ok(Reply::ok(
        committed.version,
        CommandResult {
            id: id.to_string(),
            version: committed.version,
        },
    ))
}
