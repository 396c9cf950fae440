//! The client search's text index, so a search never reads every client.
//!
//! SQLite: an FTS5 table with the trigram tokenizer over `clients.search`, kept in step
//! by triggers; a phrase query of three or more characters is a substring match read
//! from the index. PostgreSQL: a trigram GIN index (`pg_trgm`), which serves the
//! `LIKE '%…%'` the query already uses. The DDL differs by dialect, so it runs here
//! rather than in the shared migrations; every statement is idempotent.

use sqlx::{AnyPool, Executor};

use crate::error::ProjectionError;
use crate::page::{Param, Select, TOTAL_CAP};

/// The FTS5 table's rows are the clients' rowids. SQLite keeps a table's rowids across
/// everything but VACUUM, which this database never runs; after one the index would be
/// rebuilt with `INSERT INTO clients_search(clients_search) VALUES ('rebuild')`.
const SQLITE: &str = "
CREATE VIRTUAL TABLE IF NOT EXISTS clients_search USING fts5(
    search, content = 'clients', content_rowid = 'rowid', tokenize = 'trigram');
CREATE TRIGGER IF NOT EXISTS clients_search_insert AFTER INSERT ON clients BEGIN
    INSERT INTO clients_search (rowid, search) VALUES (new.rowid, new.search);
END;
CREATE TRIGGER IF NOT EXISTS clients_search_update AFTER UPDATE OF search ON clients
WHEN old.search IS NOT new.search BEGIN
    INSERT INTO clients_search (clients_search, rowid, search) VALUES ('delete', old.rowid, old.search);
    INSERT INTO clients_search (rowid, search) VALUES (new.rowid, new.search);
END;
CREATE TRIGGER IF NOT EXISTS clients_search_delete AFTER DELETE ON clients BEGIN
    INSERT INTO clients_search (clients_search, rowid, search) VALUES ('delete', old.rowid, old.search);
END;
";

/// Every service and Lambda opens the read models, often at once on a new database:
/// the DDL runs under one advisory lock (as sqlx's migrations do), or two
/// `CREATE EXTENSION`s race. The key is arbitrary and ours alone.
const POSTGRES: &str = "
SELECT pg_advisory_xact_lock(7324158841);
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS clients_search_trigrams ON clients USING gin (search gin_trgm_ops);
";

/// The shortest text the trigram index can find; shorter text is matched by scanning.
pub(crate) const SHORTEST_INDEXED: usize = 3;

fn is_sqlite(pool: &AnyPool) -> bool {
    pool.connect_options().database_url.scheme() == "sqlite"
}

/// After a client's personal data was erased (SQLite): the index is merged whole, so no
/// older segment keeps the client's trigrams, and the write-ahead log is emptied, so no
/// earlier version of a page keeps their row; with `secure_delete` on (see
/// `db::open`), what that frees is zeroed. Rare, and seconds at a million clients.
/// PostgreSQL keeps old row versions until a vacuum and in its own log: docs/audit.md.
pub(crate) async fn forget_erased(pool: &AnyPool) -> Result<(), ProjectionError> {
    if !is_sqlite(pool) {
        return Ok(());
    }
    sqlx::query("INSERT INTO clients_search (clients_search) VALUES ('optimize')")
        .execute(pool)
        .await?;
    let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(pool)
        .await?;
    if busy != 0 {
        tracing::warn!("the read models' log could not be emptied after an erasure: readers held it; the next erasure retries");
    }
    Ok(())
}

/// Creates the index (and, on SQLite, fills it from the clients already projected).
pub(crate) async fn ensure(pool: &AnyPool) -> Result<(), ProjectionError> {
    if !is_sqlite(pool) {
        // Once made, nothing to do: no lock taken at every start.
        let made: Option<(String,)> = sqlx::query_as(
            "SELECT indexname::text FROM pg_indexes WHERE indexname = 'clients_search_trigrams'",
        )
        .fetch_optional(pool)
        .await?;
        if made.is_none() {
            let mut tx = pool.begin().await?;
            (&mut *tx).execute(sqlx::raw_sql(POSTGRES)).await?;
            tx.commit().await?;
        }
        return Ok(());
    }
    let existed: Option<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'clients_search'",
    )
    .fetch_optional(pool)
    .await?;
    let mut tx = pool.begin().await?;
    (&mut *tx).execute(sqlx::raw_sql(SQLITE)).await?;
    if existed.is_none() {
        // Clients projected before the index existed.
        sqlx::query("INSERT INTO clients_search (clients_search) VALUES ('rebuild')")
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A quoted FTS5 phrase: no operators or wildcards inside, `"` doubled.
fn phrase(lower: &str) -> String {
    format!("\"{}\"", lower.replace('"', "\"\""))
}

/// Whether the SQLite text index answers a search for `text`.
pub(crate) fn indexes(pool: &AnyPool, text: &str) -> bool {
    is_sqlite(pool) && text.chars().count() >= SHORTEST_INDEXED
}

/// Which side of an indexed search leads the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lead {
    /// The text index's matches, each client looked up by rowid (and, for a page, the
    /// matches sorted).
    Matches,
    /// An index of the clients (the list's order, or the agent's clients) walked in
    /// order, keeping the clients the text matches.
    Clients,
}

/// Looking a client up by rowid costs about this many steps along an index: measured on
/// 1,000,000 clients, 4.7 µs a lookup against 0.16 µs a step (docs/performance.md).
const LOOKUP_COST: i64 = 30;

/// What a search measures before it chooses its plan: a few index reads, each bounded.
/// SQLite's planner cannot make this choice itself: without statistics on the text
/// index it always leads with the matches, and sorting 7,400 of them for a page of 50
/// cost 20 ms at 1,000,000 clients where walking the order index costs 2 ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sizes {
    /// Clients the text matches, counted up to [`TOTAL_CAP`] + 1.
    pub matches: i64,
    /// Clients in all (the highest rowid: an estimate from above, read in one step).
    pub clients: i64,
    /// The agent's clients, when the search is an agent's and they hold no more
    /// clients than the text matches (counting further would cost more than it saves).
    pub agents_clients: Option<i64>,
}

impl Sizes {
    pub(crate) async fn measure(
        pool: &AnyPool,
        text: &str,
        agent: Option<&str>,
    ) -> Result<Sizes, ProjectionError> {
        let (matches, clients): (i64, i64) = sqlx::query_as(&format!(
            "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM clients_search WHERE clients_search MATCH $1 LIMIT {})), \
             (SELECT COALESCE(MAX(rowid), 0) FROM clients)",
            TOTAL_CAP + 1
        ))
        .bind(phrase(&text.to_lowercase()))
        .fetch_one(pool)
        .await?;
        let agents_clients = match agent {
            Some(agent) => {
                let (held,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM clients WHERE agent_id = $1 LIMIT $2)",
                )
                .bind(agent)
                .bind(matches + 1)
                .fetch_one(pool)
                .await?;
                (held <= matches).then_some(held)
            }
            None => None,
        };
        Ok(Sizes {
            matches,
            clients,
            agents_clients,
        })
    }

    /// How a page of `limit` is read. Walking an index in the list's order passes about
    /// (limit + 1) × clients / matches entries to fill it (the agent's clients at most);
    /// leading with the matches looks each one up.
    pub(crate) fn page(&self, limit: i64) -> Lead {
        let walk = ((limit + 1) * self.clients / self.matches.max(1))
            .min(self.agents_clients.unwrap_or(i64::MAX));
        if walk < LOOKUP_COST * self.matches {
            Lead::Clients
        } else {
            Lead::Matches
        }
    }

    /// How the total is counted: through the agent's index when they hold no more
    /// clients than the text matches, otherwise by looking up each match.
    pub(crate) fn count(&self) -> Lead {
        if self.agents_clients.is_some() {
            Lead::Clients
        } else {
            Lead::Matches
        }
    }
}

/// Narrows `select` (over `clients`) to clients whose name or email contains `text`:
/// through the SQLite text index led as `lead` says, or (`None`: PostgreSQL, whose
/// trigram index serves the LIKE, or text too short for the index) by LIKE.
pub(crate) fn narrow(select: &mut Select, text: &str, lead: Option<Lead>) {
    let lower = text.to_lowercase();
    match lead {
        // The unary `+` keeps SQLite from leading with the rowids (and sorting them).
        Some(lead) => select.and(
            &format!(
                "{}rowid IN (SELECT rowid FROM clients_search WHERE clients_search MATCH ?)",
                if lead == Lead::Clients { "+" } else { "" }
            ),
            [Param::Text(phrase(&lower))],
        ),
        None => select.and(
            "search LIKE ? ESCAPE '\\'",
            [Param::Text(super::like_pattern(&lower))],
        ),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(matches: i64, clients: i64, agents_clients: Option<i64>) -> Sizes {
        Sizes {
            matches,
            clients,
            agents_clients,
        }
    }

    #[test]
    fn a_common_text_walks_the_order_and_a_rare_one_leads_with_its_matches() {
        // 1,000,000 clients: a four-letter piece of a surname matches 7,400 of them,
        // six letters about 100.
        assert_eq!(sizes(7_400, 1_000_000, None).page(50), Lead::Clients);
        assert_eq!(sizes(10_001, 1_000_000, None).page(200), Lead::Clients);
        assert_eq!(sizes(100, 1_000_000, None).page(50), Lead::Matches);
        assert_eq!(sizes(0, 1_000_000, None).page(50), Lead::Matches);
        assert_eq!(sizes(0, 0, None).page(50), Lead::Matches);
        // Where the two cost the same: walk 51 × 1,000,000 / m = 30 × m at m ≈ 1,304.
        assert_eq!(sizes(1_250, 1_000_000, None).page(50), Lead::Matches);
        assert_eq!(sizes(1_350, 1_000_000, None).page(50), Lead::Clients);
    }

    #[test]
    fn an_agent_with_no_more_clients_than_matches_walks_them() {
        // 2,000 clients of their own against 7,400 matches in the bank.
        assert_eq!(sizes(7_400, 1_000_000, Some(2_000)).page(50), Lead::Clients);
        assert_eq!(sizes(7_400, 1_000_000, Some(2_000)).count(), Lead::Clients);
        // More clients of their own than matches: a rare text leads with its matches.
        assert_eq!(sizes(100, 1_000_000, None).page(50), Lead::Matches);
        assert_eq!(sizes(100, 1_000_000, None).count(), Lead::Matches);
    }
}
