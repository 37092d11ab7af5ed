//! Read-only views of a database for operators: `walkie rooms` and
//! `walkie history ROOM` print these tables. They open the store as the
//! server does, beside a server that may be running on it (SQLite's WAL
//! lets both read; Postgres serves many), and never create a SQLite file.

use std::fmt::Write as _;

use crate::db::{self, Create, OpenError};
use crate::domain::{Channel, Limit, MessageId};
use crate::store::{PageQuery, StoreError};

/// Why an admin view could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A read failed (a corrupt or locked file, say).
    #[error("reading the database failed: {0}")]
    Read(#[from] StoreError),
    /// The operator's fault: a `--limit` out of range.
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

/// Every room with how many messages it holds.
pub fn rooms(database_url: &str) -> Result<String, AdminError> {
    let rooms = db::start(database_url, Create::No)?.rooms;
    let rows: Vec<Vec<String>> =
        rooms.iter().map(|room| vec![room.name.to_string(), room.last_id.to_string()]).collect();
    Ok(table(&["ROOM", "MESSAGES"], &rows))
}

/// The latest `limit` messages of `room` (a room, or a direct
/// conversation's name), oldest first, one line each. Call inside a
/// running actix system (the store's readers are actors).
pub async fn history(
    database_url: &str,
    room: &str,
    limit: u64,
    before: Option<MessageId>,
) -> Result<String, AdminError> {
    let limit = Limit::try_from(limit).map_err(AdminError::Usage)?;
    let channel = Channel::parse(room).map_err(AdminError::Usage)?;
    let store = db::start(database_url, Create::No)?.store;
    let query = PageQuery { channel, since: None, before, upto: None, limit: limit.get() };
    let page = store.page(query).await?;
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
            // ignore: writing to a String cannot fail.
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
