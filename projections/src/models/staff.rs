//! Members of staff, for the admins' lists.

use domain::staff::StaffEvent;
use serde::Serialize;
use sqlx::{AnyConnection, AnyPool, FromRow};

use crate::envelope::Envelope;
use crate::error::ProjectionError;
use crate::page::{bind_all, count, paginate, Order, Page, Param, Select};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, utoipa::ToSchema)]
pub struct StaffView {
    pub id: String,
    pub username: String,
    pub email: String,
    pub full_name: String,
    pub role: String,
    pub status: String,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    /// When they last signed in, from the system log (in lists; `null` in a single
    /// member's answer, whose ETag is its version).
    #[sqlx(default)]
    pub last_sign_in_at: Option<String>,
}

pub(crate) async fn apply(
    conn: &mut AnyConnection,
    e: &Envelope<'_>,
) -> Result<(), ProjectionError> {
    let id = e.aggregate_id();
    let mut details: (Option<String>, Option<String>) = (None, None);
    let (role, status) = match e.payload::<StaffEvent>()? {
        StaffEvent::StaffCreated {
            username,
            email,
            full_name,
            role,
            ..
        } => {
            sqlx::query(
                "INSERT INTO staff (id, username, email, full_name, role, status, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, 'enabled', $6, $7, $7)",
            )
            .bind(id)
            .bind(username.as_str())
            .bind(email.as_str())
            .bind(full_name)
            .bind(role.as_str())
            .bind(e.sequence())
            .bind(&e.occurred_at)
            .execute(&mut *conn)
            .await?;
            return Ok(());
        }
        StaffEvent::StaffDisabled => (None, Some("disabled")),
        StaffEvent::StaffEnabled => (None, Some("enabled")),
        StaffEvent::StaffDeleted => (None, Some("deleted")),
        StaffEvent::StaffRoleChanged { to, .. } => (Some(to.as_str()), None),
        StaffEvent::StaffDetailsChanged { email, full_name } => {
            details = (email.map(String::from), full_name);
            (None, None)
        }
        // The version moves; nothing shown changes.
        StaffEvent::StaffPasswordReset => (None, None),
    };
    let updated = sqlx::query(
        "UPDATE staff SET role = COALESCE($1, role), status = COALESCE($2, status), email = COALESCE($3, email), \
         full_name = COALESCE($4, full_name), version = $5, updated_at = $6 WHERE id = $7",
    )
    .bind(role)
    .bind(status)
    .bind(details.0)
    .bind(details.1)
    .bind(e.sequence())
    .bind(&e.occurred_at)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(ProjectionError::Poison(format!(
            "staff {id} is not in the read model"
        )));
    }
    Ok(())
}

const COLUMNS: &str = "SELECT id, username, email, full_name, role, status, version, created_at, updated_at FROM staff";

pub async fn get(pool: &AnyPool, id: &str) -> Result<Option<StaffView>, ProjectionError> {
    Ok(sqlx::query_as(&format!("{COLUMNS} WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?)
}

#[derive(Debug, Clone, Default)]
pub struct StaffFilter {
    pub sort: StaffSort,
    pub role: Option<String>,
    pub status: Option<String>,
    pub cursor: Option<String>,
    pub limit: i64,
}

/// The orders a staff list comes in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StaffSort {
    #[default]
    Username,
    Name,
    Role,
}

impl StaffSort {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "username" => Some(StaffSort::Username),
            "name" => Some(StaffSort::Name),
            "role" => Some(StaffSort::Role),
            _ => None,
        }
    }

    fn order(self) -> Order {
        let columns: &'static [&'static str] = match self {
            StaffSort::Username => &["username", "id"],
            StaffSort::Name => &["LOWER(full_name)", "id"],
            StaffSort::Role => &["role", "username", "id"],
        };
        Order {
            columns,
            descending: false,
        }
    }

    fn key(self, member: &StaffView) -> Vec<String> {
        let id = member.id.clone();
        match self {
            StaffSort::Username => vec![member.username.clone(), id],
            StaffSort::Name => vec![member.full_name.to_lowercase(), id],
            StaffSort::Role => vec![member.role.clone(), member.username.clone(), id],
        }
    }
}

/// In `filter.sort` order, with the total.
pub async fn list(pool: &AnyPool, filter: StaffFilter) -> Result<Page<StaffView>, ProjectionError> {
    let mut select = Select::new(COLUMNS);
    if let Some(role) = filter.role {
        select.and("role = ?", [Param::Text(role)]);
    }
    if let Some(status) = filter.status {
        select.and("status = ?", [Param::Text(status)]);
    }
    let total = count(pool, select.count("FROM staff")).await?;
    let order = filter.sort.order();
    if let Some(cursor) = &filter.cursor {
        order.after(&mut select, cursor)?;
    }
    let (sql, params) = select.build(&order.by(), filter.limit);
    let rows: Vec<StaffView> = bind_all(sqlx::query_as(&sql), params)
        .fetch_all(pool)
        .await?;
    Ok(paginate(rows, filter.limit, |s: &StaffView| filter.sort.key(s)).counted(total))
}

/// The usernames of the staff among `ids` (others are left out).
pub async fn usernames(
    pool: &AnyPool,
    ids: &[String],
) -> Result<std::collections::HashMap<String, String>, ProjectionError> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let sql = format!(
        "SELECT id, username FROM staff WHERE id IN ({})",
        crate::page::placeholders(ids.len())
    );
    let mut query = sqlx::query_as::<_, (String, String)>(&sql);
    for id in ids {
        query = query.bind(id);
    }
    Ok(query.fetch_all(pool).await?.into_iter().collect())
}

/// The id of the member of staff named `username`, if any.
pub async fn id_of(pool: &AnyPool, username: &str) -> Result<Option<String>, ProjectionError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM staff WHERE username = $1")
            .bind(username)
            .fetch_optional(pool)
            .await?,
    )
}
