//! Keyset pagination and a small builder for filtered SELECTs whose placeholders
//! (`$1`, `$2` …) both dialects accept.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use sqlx::any::AnyArguments;
use sqlx::query::QueryAs;
use sqlx::Any;

use crate::error::ProjectionError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

/// A total counts at most this many rows, so it costs the same on a table of any size.
pub const TOTAL_CAP: i64 = 10_000;

/// One page of a list: `{"items": [...], "next_cursor": "..." | null, "total"?: n}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
    /// How many items the filter matches on all pages, counted up to 10,000; lists that
    /// count give it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
    /// `false` when there are more than `total` (the count stopped at 10,000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_exact: Option<bool>,
}

impl<T> Page<T> {
    /// This page with the count [`Select::count`] made.
    pub fn counted(mut self, counted: i64) -> Self {
        self.total = Some(counted.min(TOTAL_CAP));
        self.total_exact = Some(counted <= TOTAL_CAP);
        self
    }
}

/// An opaque cursor: the sort key of the last item, as base64url JSON.
pub fn encode_cursor(key: &[String]) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

pub fn decode_cursor(cursor: &str, parts: usize) -> Result<Vec<String>, ProjectionError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| ProjectionError::InvalidCursor)?;
    let key: Vec<String> =
        serde_json::from_slice(&bytes).map_err(|_| ProjectionError::InvalidCursor)?;
    if key.len() == parts {
        Ok(key)
    } else {
        Err(ProjectionError::InvalidCursor)
    }
}

/// A bound value.
#[derive(Debug, Clone)]
pub enum Param {
    Text(String),
    Int(i64),
    OptText(Option<String>),
    OptInt(Option<i64>),
}

/// `SELECT … WHERE <conditions> ORDER BY … LIMIT …`, numbering placeholders as it goes.
pub struct Select {
    base: String,
    conditions: Vec<String>,
    params: Vec<Param>,
}

impl Select {
    pub fn new(base: &str) -> Self {
        Select {
            base: base.to_string(),
            conditions: Vec::new(),
            params: Vec::new(),
        }
    }

    /// Adds a condition; each `?` in it takes the next of `params`.
    pub fn and(&mut self, condition: &str, params: impl IntoIterator<Item = Param>) -> &mut Self {
        let mut numbered = String::with_capacity(condition.len() + 8);
        let mut params = params.into_iter();
        for c in condition.chars() {
            if c == '?' {
                self.params
                    .push(params.next().expect("a parameter for each placeholder"));
                numbered.push_str(&format!("${}", self.params.len()));
            } else {
                numbered.push(c);
            }
        }
        self.conditions.push(numbered);
        self
    }

    /// `SELECT COUNT(*)` over the rows the conditions so far match, stopping after
    /// [`TOTAL_CAP`] + 1; `from` is `FROM <table>` (call it before adding the cursor).
    pub fn count(&self, from: &str) -> (String, Vec<Param>) {
        let mut inner = format!("SELECT 1 {from}");
        if !self.conditions.is_empty() {
            inner.push_str(" WHERE ");
            inner.push_str(&self.conditions.join(" AND "));
        }
        (
            format!(
                "SELECT COUNT(*) FROM ({inner} LIMIT {}) AS capped",
                TOTAL_CAP + 1
            ),
            self.params.clone(),
        )
    }

    /// The final SQL (fetching one row more than `limit`, to know whether a next page
    /// exists) and its parameters.
    pub fn build(&self, order_by: &str, limit: i64) -> (String, Vec<Param>) {
        let mut sql = self.base.clone();
        if !self.conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&self.conditions.join(" AND "));
        }
        sql.push_str(&format!(" ORDER BY {order_by} LIMIT {}", limit + 1));
        (sql, self.params.clone())
    }
}

/// A keyset order: the text expressions a list sorts by (the last one unique), all one
/// way. A cursor holds the last row's values of them.
#[derive(Debug, Clone, Copy)]
pub struct Order {
    pub columns: &'static [&'static str],
    pub descending: bool,
}

impl Order {
    /// The ORDER BY clause.
    pub fn by(&self) -> String {
        let way = if self.descending { "DESC" } else { "ASC" };
        self.columns
            .iter()
            .map(|column| format!("{column} {way}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Restricts `select` to the rows after `cursor` in this order.
    pub fn after(&self, select: &mut Select, cursor: &str) -> Result<(), ProjectionError> {
        let key = decode_cursor(cursor, self.columns.len())?;
        let marks = vec!["?"; key.len()].join(", ");
        let compare = if self.descending { "<" } else { ">" };
        select.and(
            &format!("({}) {compare} ({marks})", self.columns.join(", ")),
            key.into_iter().map(Param::Text),
        );
        Ok(())
    }
}

/// Runs a [`Select::count`].
pub async fn count(
    pool: &sqlx::AnyPool,
    (sql, params): (String, Vec<Param>),
) -> Result<i64, ProjectionError> {
    let (counted,): (i64,) = bind_all(sqlx::query_as(&sql), params)
        .fetch_one(pool)
        .await?;
    Ok(counted)
}

pub fn bind_all<'q, O>(
    mut query: QueryAs<'q, Any, O, AnyArguments<'q>>,
    params: Vec<Param>,
) -> QueryAs<'q, Any, O, AnyArguments<'q>> {
    for param in params {
        query = match param {
            Param::Text(text) => query.bind(text),
            Param::Int(int) => query.bind(int),
            Param::OptText(text) => query.bind(text),
            Param::OptInt(int) => query.bind(int),
        };
    }
    query
}

/// Clamps a requested page size.
pub fn limit(requested: Option<i64>) -> i64 {
    requested.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
}

/// Cuts the extra row off and makes the cursor from the last item kept.
pub fn paginate<T>(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> Vec<String>) -> Page<T> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|last| encode_cursor(&key(last)))
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
        total: None,
        total_exact: None,
    }
}

/// Rows waiting to be written with multi-row statements: far fewer statements than one
/// per row, which is what the projector spends its time on. The rows go in as a
/// `VALUES` list: after an `INSERT`, or as a table an `UPDATE … FROM` joins.
pub(crate) struct PendingRows {
    /// What comes before the rows: `INSERT INTO t (a, b, c) VALUES`.
    head: &'static str,
    columns: usize,
    values: Vec<Param>,
}

impl PendingRows {
    pub(crate) fn new(head: &'static str, columns: usize) -> Self {
        PendingRows {
            head,
            columns,
            values: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, row: Vec<Param>) {
        debug_assert_eq!(row.len(), self.columns);
        self.values.extend(row);
    }

    pub(crate) async fn flush(
        &mut self,
        conn: &mut sqlx::AnyConnection,
    ) -> Result<(), ProjectionError> {
        self.flush_with(conn, "").await.map(|_| ())
    }

    /// Like `flush`, with `tail` after the values (an `ON CONFLICT …` clause, or the
    /// rest of an `UPDATE … FROM (VALUES`); the rows the statements affected.
    pub(crate) async fn flush_with(
        &mut self,
        conn: &mut sqlx::AnyConnection,
        tail: &str,
    ) -> Result<u64, ProjectionError> {
        let mut affected = 0;
        for (sql, params) in self.statements(anonymous_placeholders(conn), tail) {
            affected += bind_refs(sqlx::query(&sql), &params)
                .execute(&mut *conn)
                .await?
                .rows_affected();
        }
        Ok(affected)
    }

    /// Adds the statements writing the rows (with `tail`) to `script`.
    pub(crate) fn add_to(&mut self, script: &mut Script, tail: &str) {
        let statements = self.statements(script.anonymous, tail);
        script.statements.extend(statements);
    }

    /// The statements writing the rows, at most 100 to a statement; the rows are taken.
    fn statements(&mut self, anonymous: bool, tail: &str) -> Vec<(String, Vec<Param>)> {
        const ROWS_PER_STATEMENT: usize = 100;
        let mut values = std::mem::take(&mut self.values).into_iter();
        let mut statements = Vec::new();
        while values.len() > 0 {
            let chunk: Vec<Param> = values
                .by_ref()
                .take(self.columns * ROWS_PER_STATEMENT)
                .collect();
            let mut sql = String::from(self.head);
            sql.push(' ');
            sql.push_str(&values_list(
                chunk.len() / self.columns,
                self.columns,
                anonymous,
            ));
            if !tail.is_empty() {
                sql.push(' ');
                sql.push_str(tail);
            }
            statements.push((sql, chunk));
        }
        statements
    }
}

/// Statements that run together, in order. On SQLite they go to the connection's
/// thread as one query, their `?` placeholders bound in order across them: one hand-off
/// instead of one per statement, which is what a live projector's small batches spent
/// their time waiting on when the machine is busy (docs/performance.md). On PostgreSQL
/// they run one after another, and so do more than a few statements. What they affected
/// is not told apart: statements whose row counts matter run alone.
pub(crate) struct Script {
    anonymous: bool,
    statements: Vec<(String, Vec<Param>)>,
}

impl Script {
    pub(crate) fn new(conn: &sqlx::AnyConnection) -> Self {
        Script {
            anonymous: anonymous_placeholders(conn),
            statements: Vec::new(),
        }
    }

    /// Adds a statement of one row of `params`: `sql` makes its text around that row's
    /// placeholders, `(?, ?)` or `($1, $2)`.
    pub(crate) fn push(&mut self, sql: impl FnOnce(&str) -> String, params: Vec<Param>) {
        let values = values_list(1, params.len(), self.anonymous);
        self.statements.push((sql(&values), params));
    }

    pub(crate) async fn run(self, conn: &mut sqlx::AnyConnection) -> Result<(), ProjectionError> {
        // A rebuild's batches make hundreds of full statements: there one hand-off each
        // costs nothing beside them, and one text of them all (new every batch, kept in
        // the connection's statement cache) cost a sixth of the rebuild's speed and a
        // third more memory.
        const TOGETHER: usize = 5;
        if !self.anonymous || self.statements.len() > TOGETHER {
            for (sql, params) in &self.statements {
                bind_refs(sqlx::query(sql), params)
                    .execute(&mut *conn)
                    .await?;
            }
            return Ok(());
        }
        if self.statements.is_empty() {
            return Ok(());
        }
        let sql = self
            .statements
            .iter()
            .map(|(sql, _)| sql.as_str())
            .collect::<Vec<_>>()
            .join(";\n");
        let params: Vec<&Param> = self.statements.iter().flat_map(|(_, p)| p).collect();
        // Each mix of row counts is a new text: kept in the statement cache, they would
        // push out the statements that repeat.
        let mut query = sqlx::query(&sql).persistent(false);
        for param in params {
            query = bind_ref(query, param);
        }
        query.execute(&mut *conn).await?;
        Ok(())
    }
}

type AnyQuery<'q> = sqlx::query::Query<'q, Any, AnyArguments<'q>>;

fn bind_ref<'q>(query: AnyQuery<'q>, param: &'q Param) -> AnyQuery<'q> {
    match param {
        Param::Text(text) => query.bind(text.as_str()),
        Param::Int(int) => query.bind(*int),
        Param::OptText(text) => query.bind(text.as_deref()),
        Param::OptInt(int) => query.bind(*int),
    }
}

fn bind_refs<'q>(query: AnyQuery<'q>, params: &'q [Param]) -> AnyQuery<'q> {
    params.iter().fold(query, bind_ref)
}

/// Whether `conn` takes anonymous `?` placeholders. SQLite does: binding a named one
/// (`$n`) costs a linear search of the statement's names, quadratic over a 1,000-value
/// insert (two fifths of a rebuild's CPU went there). PostgreSQL needs `$n`.
pub(crate) fn anonymous_placeholders(conn: &sqlx::AnyConnection) -> bool {
    conn.backend_name() == "SQLite"
}

/// `(?, ?), (?, ?)` (or `($1, $2), ($3, $4)`): `rows` rows of `columns` placeholders.
pub(crate) fn values_list(rows: usize, columns: usize, anonymous: bool) -> String {
    let mut sql = String::with_capacity(rows * columns * 4);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            if anonymous {
                sql.push('?');
            } else {
                sql.push_str(&format!("${}", row * columns + column + 1));
            }
        }
        sql.push(')');
    }
    sql
}

/// `$1, $2, … $n`: the placeholders of an `IN (…)` list of `n` values.
pub fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_values_list_has_a_placeholder_per_value() {
        assert_eq!(values_list(2, 3, true), "(?, ?, ?), (?, ?, ?)");
        assert_eq!(values_list(2, 2, false), "($1, $2), ($3, $4)");
        assert_eq!(values_list(1, 1, false), "($1)");
    }

    #[test]
    fn placeholders_are_numbered_in_order() {
        let mut select = Select::new("SELECT * FROM t");
        select.and("a = ?", [Param::Int(1)]).and(
            "(b < ? OR (b = ? AND id < ?))",
            [
                Param::Text("x".into()),
                Param::Text("x".into()),
                Param::Text("y".into()),
            ],
        );
        let (sql, params) = select.build("b DESC", 10);
        assert_eq!(sql, "SELECT * FROM t WHERE a = $1 AND (b < $2 OR (b = $3 AND id < $4)) ORDER BY b DESC LIMIT 11");
        assert_eq!(params.len(), 4);
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = encode_cursor(&["2026-01-01T00:00:00Z".into(), "id-1".into()]);
        assert_eq!(decode_cursor(&cursor, 2).unwrap()[1], "id-1");
        assert!(decode_cursor(&cursor, 1).is_err());
        assert!(decode_cursor("!!!", 1).is_err());
    }

    #[test]
    fn limits_are_clamped() {
        assert_eq!(limit(None), 50);
        assert_eq!(limit(Some(0)), 1);
        assert_eq!(limit(Some(1000)), 200);
    }

    #[test]
    fn totals_count_the_filter_up_to_the_cap() {
        let mut select = Select::new("SELECT a, b FROM t");
        select.and("a = ?", [Param::Int(1)]);
        let (sql, params) = select.count("FROM t");
        assert_eq!(
            sql,
            "SELECT COUNT(*) FROM (SELECT 1 FROM t WHERE a = $1 LIMIT 10001) AS capped"
        );
        assert_eq!(params.len(), 1);
        let page = paginate(vec![1, 2], 50, |n: &i32| vec![n.to_string()]);
        let exact = page.clone().counted(2);
        assert_eq!((exact.total, exact.total_exact), (Some(2), Some(true)));
        let capped = page.counted(TOTAL_CAP + 1);
        assert_eq!(
            (capped.total, capped.total_exact),
            (Some(TOTAL_CAP), Some(false))
        );
    }
}
