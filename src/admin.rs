//! Read-only views of a database for operators: `walkie rooms` and
//! `walkie history ROOM` print these tables. They read the SQLite file
//! directly (a running server may be using it: WAL lets both read).

use std::fmt::Write as _;

use crate::db::{self, queries, OpenError};
use crate::domain::{Limit, MessageId};
use crate::store::PageQuery;

/// Why an admin view could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The database file could not be opened or migrated.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A read failed (a corrupt or locked file, say).
    #[error("reading the database failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// The connection pool gave no connection in time.
    #[error("no database connection: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// The operator's fault: no database at that path, or a `--limit` out of range.
    #[error("{0}")]
    Usage(String),
}

/// Formats rows as left-aligned columns under a header.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> =
            row.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        // ignore: writing to a String cannot fail.
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

/// Opens an existing database (an admin view never creates one).
fn open(database_url: &str) -> Result<db::DbPool, AdminError> {
    if !std::path::Path::new(database_url).exists() {
        return Err(AdminError::Usage(format!(
            "no database at {database_url}: pass --database-url (or DATABASE_URL)"
        )));
    }
    Ok(db::open(database_url, 1)?)
}

/// Every room with how many messages it holds.
pub fn rooms(database_url: &str) -> Result<String, AdminError> {
    let pool = open(database_url)?;
    let mut conn = pool.get()?;
    let rooms = queries::rooms(&mut conn)?;
    let rows: Vec<Vec<String>> =
        rooms.iter().map(|room| vec![room.name.to_string(), room.last_id.to_string()]).collect();
    Ok(table(&["ROOM", "MESSAGES"], &rows))
}

/// The latest `limit` messages of `room` (a room, or a direct
/// conversation's name), oldest first, one line each.
pub fn history(
    database_url: &str,
    room: &str,
    limit: u64,
    before: Option<MessageId>,
) -> Result<String, AdminError> {
    let limit = Limit::try_from(limit).map_err(AdminError::Usage)?;
    let pool = open(database_url)?;
    let query =
        PageQuery { channel: room.to_owned(), since: None, before, upto: None, limit: limit.get() };
    let mut conn = pool.get()?;
    let page = queries::page(&mut conn, &query)?;
    let rows: Vec<Vec<String>> = page
        .messages
        .iter()
        .map(|m| {
            let text = m.text.replace(['\n', '\r'], " ");
            vec![m.id.to_string(), m.ts.clone(), m.from.to_string(), text]
        })
        .collect();
    let mut out = table(&["ID", "TIME", "FROM", "TEXT"], &rows);
    if page.more {
        if let Some(first) = page.messages.first() {
            let _ = writeln!(out, "(older messages: --before {})", first.id);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_their_columns() {
        let rows = vec![vec!["1".into(), "alice".into()], vec!["22".into(), "bo".into()]];
        assert_eq!(table(&["ID", "FROM"], &rows), "ID  FROM\n1   alice\n22  bo\n");
    }
}
