//! Clients: searchable by name and email, listed per agent.

use domain::client::ClientEvent;
use domain::contact::PersonalDetails;
use domain::personal::Personal;
use serde::Serialize;
use sqlx::{AnyConnection, AnyPool, FromRow};
use std::sync::LazyLock;

use crate::envelope::Envelope;
use crate::error::ProjectionError;
use crate::page::{bind_all, count, decode_cursor, paginate, Order, Page, Param, Select};

#[derive(Debug, Clone, FromRow)]
struct Row {
    id: String,
    agent_id: String,
    first_name: Option<String>,
    last_name: Option<String>,
    date_of_birth: Option<String>,
    gender: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    address_line1: Option<String>,
    address_city: Option<String>,
    address_state: Option<String>,
    address_country: Option<String>,
    address_postal_code: Option<String>,
    status: String,
    verified: i64,
    erased: i64,
    version: i64,
    created_at: String,
    updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AddressView {
    pub line1: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
    pub postal_code: Option<String>,
}

/// A client as the API shows it. Personal fields are null once erased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ClientView {
    pub id: String,
    pub agent_id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub date_of_birth: Option<String>,
    pub gender: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: AddressView,
    pub status: String,
    pub verified: bool,
    pub erased: bool,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Row> for ClientView {
    fn from(row: Row) -> Self {
        ClientView {
            id: row.id,
            agent_id: row.agent_id,
            first_name: row.first_name,
            last_name: row.last_name,
            date_of_birth: row.date_of_birth,
            gender: row.gender,
            email: row.email,
            phone: row.phone,
            address: AddressView {
                line1: row.address_line1,
                city: row.address_city,
                state: row.address_state,
                country: row.address_country,
                postal_code: row.address_postal_code,
            },
            status: row.status,
            verified: row.verified != 0,
            erased: row.erased != 0,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

fn enum_text<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// The text the search index holds for a client, from its name and email columns.
fn search_of(first_name: &str, last_name: &str, email: &str) -> String {
    format!("LOWER(COALESCE({first_name}, '') || ' ' || COALESCE({last_name}, '') || ' ' || COALESCE({email}, ''))")
}

static SEARCH: LazyLock<String> = LazyLock::new(|| search_of("first_name", "last_name", "email"));

/// A batch's onboardings in one statement ([`onboarding`] makes the rows): the new
/// clients as a `VALUES` list, their search text made by the same expression as
/// [`apply`]'s, so the index is written once per client.
pub(crate) static ONBOARD: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO clients (id, agent_id, first_name, last_name, date_of_birth, gender, email, phone, \
         address_line1, address_city, address_state, address_country, address_postal_code, status, verified, erased, \
         search, version, created_at, updated_at) \
         SELECT column1, column2, column3, column4, column5, column6, column7, column8, column9, column10, column11, \
         column12, column13, 'active', 0, 0, {}, column14, column15, column15 FROM (VALUES",
        search_of("column3", "column4", "column7")
    )
});
pub(crate) const ONBOARD_COLUMNS: usize = 15;
pub(crate) const ONBOARD_TAIL: &str = ") AS v";

/// Accounts projected before their client (unordered delivery, or opened in the same
/// batch as the client's onboarding) get the agent of the clients onboarded: rows of
/// (client id, agent id).
pub(crate) const FILL_AGENTS: &str = "UPDATE accounts SET agent_id = u.column2 FROM (VALUES";
pub(crate) const FILL_AGENTS_TAIL: &str =
    ") AS u WHERE accounts.client_id = u.column1 AND accounts.agent_id = ''";

/// An onboarding's `ONBOARD` row and its `FILL_AGENTS` row.
pub(crate) struct Onboarding {
    pub(crate) client: Vec<Param>,
    pub(crate) agent: Vec<Param>,
}

/// For an onboarding, its rows; `None` for any other client event (applied at once by
/// [`apply`]).
pub(crate) fn onboarding(e: &Envelope<'_>) -> Result<Option<Onboarding>, ProjectionError> {
    let ClientEvent::ClientOnboarded {
        agent_id, details, ..
    } = e.payload::<ClientEvent>()?
    else {
        return Ok(None);
    };
    let id = e.aggregate_id().to_string();
    let agent = agent_id.to_string();
    let mut row = vec![Param::Text(id.clone()), Param::Text(agent.clone())];
    row.extend(
        personal_columns(details.as_known())
            .into_iter()
            .map(Param::OptText),
    );
    row.extend([Param::Int(e.sequence()), Param::Text(e.occurred_at.clone())]);
    Ok(Some(Onboarding {
        client: row,
        agent: vec![Param::Text(id), Param::Text(agent)],
    }))
}

/// The personal columns of a client, from `first_name` to `address_postal_code`: all
/// null when the details were shredded (an erased client's onboarding, replayed).
fn personal_columns(details: Option<&PersonalDetails>) -> [Option<String>; 11] {
    let Some(d) = details else {
        return Default::default();
    };
    [
        d.first_name.clone(),
        d.last_name.clone(),
        d.date_of_birth.to_string(),
        enum_text(&d.gender),
        d.email.as_str().to_string(),
        d.phone.as_str().to_string(),
        d.address.line1.clone(),
        d.address.city.clone(),
        d.address.state.clone(),
        d.address.country.clone(),
        d.address.postal_code.clone(),
    ]
    .map(Some)
}

pub(crate) async fn apply(
    conn: &mut AnyConnection,
    e: &Envelope<'_>,
) -> Result<(), ProjectionError> {
    let id = e.aggregate_id();
    match e.payload::<ClientEvent>()? {
        ClientEvent::ClientOnboarded {
            agent_id, details, ..
        } => {
            let mut insert = sqlx::query(
                "INSERT INTO clients (id, agent_id, first_name, last_name, date_of_birth, gender, email, phone, \
                 address_line1, address_city, address_state, address_country, address_postal_code, status, verified, erased, \
                 search, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'active', 0, 0, '', $14, $15, $15)"
            )
            .bind(id)
            .bind(agent_id.to_string());
            for column in personal_columns(details.as_known()) {
                insert = insert.bind(column);
            }
            insert
                .bind(e.sequence())
                .bind(&e.occurred_at)
                .execute(&mut *conn)
                .await?;
            // Accounts projected before their client (unordered delivery) get their agent now.
            sqlx::query("UPDATE accounts SET agent_id = $1 WHERE client_id = $2 AND agent_id = ''")
                .bind(agent_id.to_string())
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
        ClientEvent::ContactDetailsUpdated(Personal::Shredded) => {}
        ClientEvent::ContactDetailsUpdated(Personal::Known(change)) => {
            if let Some(email) = change.email {
                sqlx::query("UPDATE clients SET email = $1 WHERE id = $2")
                    .bind(email.as_str())
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            }
            if let Some(phone) = change.phone {
                sqlx::query("UPDATE clients SET phone = $1 WHERE id = $2")
                    .bind(phone.as_str())
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            }
            if let Some(address) = change.address {
                sqlx::query(
                    "UPDATE clients SET address_line1 = $1, address_city = $2, address_state = $3, address_country = $4, \
                     address_postal_code = $5 WHERE id = $6",
                )
                .bind(address.line1)
                .bind(address.city)
                .bind(address.state)
                .bind(address.country)
                .bind(address.postal_code)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            }
        }
        ClientEvent::ClientReassigned { to, .. } => {
            for table in ["clients", "accounts"] {
                let key = if table == "clients" {
                    "id"
                } else {
                    "client_id"
                };
                sqlx::query(&format!(
                    "UPDATE {table} SET agent_id = $1 WHERE {key} = $2"
                ))
                .bind(to.to_string())
                .bind(id)
                .execute(&mut *conn)
                .await?;
            }
        }
        ClientEvent::ClientVerified { .. } => {
            sqlx::query("UPDATE clients SET verified = 1 WHERE id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
        ClientEvent::ClientDeactivated { .. } => {
            sqlx::query("UPDATE clients SET status = 'deactivated' WHERE id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
        ClientEvent::ClientErased { .. } => {
            sqlx::query(
                "UPDATE clients SET first_name = NULL, last_name = NULL, date_of_birth = NULL, gender = NULL, email = NULL, \
                 phone = NULL, address_line1 = NULL, address_city = NULL, address_state = NULL, address_country = NULL, \
                 address_postal_code = NULL, erased = 1 WHERE id = $1",
            )
            .bind(id)
            .execute(&mut *conn)
            .await?;
            sqlx::query("UPDATE client_communications SET recipient = NULL WHERE client_id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
        ClientEvent::CommunicationSent {
            recipient,
            subject,
            body_sha256,
        } => {
            sqlx::query(
                "INSERT INTO client_communications (client_id, sequence, sent_at, recipient, subject, body_sha256, sent_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (client_id, sequence) DO NOTHING",
            )
            .bind(id)
            .bind(e.sequence())
            .bind(&e.occurred_at)
            .bind(recipient.as_known().map(|r| r.as_str()))
            .bind(&subject)
            .bind(&body_sha256)
            .bind(&e.actor_id)
            .execute(&mut *conn)
            .await?;
        }
    }
    let updated = sqlx::query(&format!(
        "UPDATE clients SET search = {}, version = $1, updated_at = $2 WHERE id = $3",
        *SEARCH
    ))
    .bind(e.sequence())
    .bind(&e.occurred_at)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(ProjectionError::Poison(format!(
            "client {id} is not in the read model"
        )));
    }
    Ok(())
}

const COLUMNS: &str = "SELECT id, agent_id, first_name, last_name, date_of_birth, gender, email, phone, address_line1, \
     address_city, address_state, address_country, address_postal_code, status, verified, erased, version, created_at, \
     updated_at FROM clients";

pub async fn get(pool: &AnyPool, id: &str) -> Result<Option<ClientView>, ProjectionError> {
    let row: Option<Row> = sqlx::query_as(&format!("{COLUMNS} WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(ClientView::from))
}

/// What to list: `agent` restricts to one agent's clients; `q` searches name and email.
#[derive(Debug, Clone, Default)]
pub struct ClientFilter {
    pub sort: ClientSort,
    pub agent: Option<String>,
    pub q: Option<String>,
    pub status: Option<String>,
    pub cursor: Option<String>,
    pub limit: i64,
}

/// The orders a client list comes in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientSort {
    #[default]
    Newest,
    Oldest,
    /// By last name, then first name (erased clients, without names, first).
    Name,
}

impl ClientSort {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "newest" => Some(ClientSort::Newest),
            "oldest" => Some(ClientSort::Oldest),
            "name" => Some(ClientSort::Name),
            _ => None,
        }
    }

    /// The keyset: names lower-cased so "de Vries" sorts among the Ds.
    fn order(self) -> Order {
        const NAME: &[&str] = &[
            "LOWER(COALESCE(last_name, ''))",
            "LOWER(COALESCE(first_name, ''))",
            "id",
        ];
        match self {
            ClientSort::Newest => Order {
                columns: &["id"],
                descending: true,
            },
            ClientSort::Oldest => Order {
                columns: &["id"],
                descending: false,
            },
            ClientSort::Name => Order {
                columns: NAME,
                descending: false,
            },
        }
    }

    fn key(self, client: &ClientView) -> Vec<String> {
        let lower = |name: &Option<String>| name.as_deref().unwrap_or_default().to_lowercase();
        match self {
            ClientSort::Newest | ClientSort::Oldest => vec![client.id.clone()],
            ClientSort::Name => vec![
                lower(&client.last_name),
                lower(&client.first_name),
                client.id.clone(),
            ],
        }
    }
}

/// A search of every client needs this many characters (or an account number): the
/// text index finds no shorter text, and reading every client to look for one takes
/// seconds at a million clients. An agent's search of their own clients takes any
/// length; their index bounds it.
pub const SHORTEST_SEARCH_OF_ALL: usize = super::client_search::SHORTEST_INDEXED;

/// Whether `q` can search every client (see [`SHORTEST_SEARCH_OF_ALL`]).
pub fn searchable_among_all(q: &str) -> bool {
    let q = q.trim();
    q.is_empty()
        || q.chars().count() >= SHORTEST_SEARCH_OF_ALL
        || q.parse::<domain::AccountNumber>().is_ok()
}

/// In `filter.sort` order, with the total.
pub async fn list(
    pool: &AnyPool,
    filter: ClientFilter,
) -> Result<Page<ClientView>, ProjectionError> {
    use super::client_search::{self, Lead, Sizes};
    let text = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    // An account number finds the client who holds the account.
    let number = text.and_then(|q| q.parse::<domain::AccountNumber>().ok());
    // A text the SQLite index finds is measured first; the plan follows from the sizes.
    let sizes = match text {
        Some(q) if number.is_none() && client_search::indexes(pool, q) => {
            Some(Sizes::measure(pool, q, filter.agent.as_deref()).await?)
        }
        _ => None,
    };
    let filtered = |lead: Option<Lead>, columns: &str| {
        let mut select = Select::new(columns);
        match (&number, text) {
            (Some(number), _) => {
                select.and(
                    "id IN (SELECT client_id FROM accounts WHERE account_number = ?)",
                    [Param::Text(number.compact())],
                );
            }
            (None, Some(q)) => client_search::narrow(&mut select, q, lead),
            (None, None) => {}
        }
        if let Some(agent) = &filter.agent {
            // Led by the matches, the agent filters them: SQLite's unary `+` keeps it
            // from walking every client of the agent instead.
            let condition = if lead == Some(Lead::Matches) {
                "+agent_id = ?"
            } else {
                "agent_id = ?"
            };
            select.and(condition, [Param::Text(agent.clone())]);
        }
        if let Some(status) = &filter.status {
            select.and("status = ?", [Param::Text(status.clone())]);
        }
        select
    };
    let total = match sizes {
        // The text is the only condition: the index counted its matches.
        Some(sizes) if filter.agent.is_none() && filter.status.is_none() => sizes.matches,
        _ => {
            let lead = sizes.map(|sizes| sizes.count());
            count(pool, filtered(lead, "").count("FROM clients")).await?
        }
    };
    let sort = filter.sort;
    let order = sort.order();
    let mut select = filtered(sizes.map(|sizes| sizes.page(filter.limit)), COLUMNS);
    if let Some(cursor) = &filter.cursor {
        order.after(&mut select, cursor)?;
    }
    let (sql, params) = select.build(&order.by(), filter.limit);
    let rows: Vec<Row> = bind_all(sqlx::query_as(&sql), params)
        .fetch_all(pool)
        .await?;
    let views = rows.into_iter().map(ClientView::from).collect();
    Ok(paginate(views, filter.limit, |c: &ClientView| sort.key(c)).counted(total))
}

/// One message sent to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow, utoipa::ToSchema)]
pub struct CommunicationView {
    pub client_id: String,
    /// The client stream's event that recorded it.
    pub sequence: i64,
    pub sent_at: String,
    /// `null` once the client's personal data is erased.
    pub recipient: Option<String>,
    pub subject: String,
    pub body_sha256: String,
    /// The staff id of the sender.
    pub sent_by: String,
    /// The sender's username, from the staff read model.
    pub sent_by_username: Option<String>,
}

/// The mail sent to a client, newest first.
pub async fn communications(
    pool: &AnyPool,
    client_id: &str,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Page<CommunicationView>, ProjectionError> {
    let mut select = Select::new(
        "SELECT client_id, sequence, sent_at, recipient, subject, body_sha256, sent_by, staff.username AS sent_by_username \
         FROM client_communications LEFT JOIN staff ON staff.id = client_communications.sent_by",
    );
    select.and("client_id = ?", [Param::Text(client_id.to_string())]);
    if let Some(cursor) = cursor {
        let key = decode_cursor(cursor, 1)?;
        let sequence: i64 = key[0].parse().map_err(|_| ProjectionError::InvalidCursor)?;
        select.and("sequence < ?", [Param::Int(sequence)]);
    }
    let (sql, params) = select.build("sequence DESC", limit);
    let rows: Vec<CommunicationView> = bind_all(sqlx::query_as(&sql), params)
        .fetch_all(pool)
        .await?;
    Ok(paginate(rows, limit, |c: &CommunicationView| {
        vec![c.sequence.to_string()]
    }))
}
