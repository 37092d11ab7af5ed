//! Mentions kept for users who were offline: [`PendingMentionsTable`],
//! walkie's [`PendingMentions`] in either store.

use diesel::prelude::*;

use super::connection::{write_transaction, AnyConnection};
use super::sql::{execute_rows, Sql, Value};

use super::models::{to_stored_id, MessageRow, PendingMentionRow};
use super::DbPool;
use crate::domain::UserName;
use crate::protocol::ChatMessage;
use crate::store::{PendingMentions, StoreError};

/// The `pending_mentions` table, through the pool.
pub struct PendingMentionsTable {
    pool: DbPool,
}

impl PendingMentionsTable {
    /// The table in `pool`'s database.
    pub fn new(pool: DbPool) -> Self {
        Self { pool }
    }
}

impl PendingMentions for PendingMentionsTable {
    fn keep(&self, recipients: &[UserName], message: &ChatMessage) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        Ok(add_pending_mentions(&mut conn, recipients, message)?)
    }

    fn take(&self, recipient: &UserName) -> Result<Vec<ChatMessage>, StoreError> {
        let mut conn = self.pool.get()?;
        Ok(take_pending_mentions(&mut conn, recipient)?)
    }
}

/// Keeps `message`'s mention of each of `recipients` for their next
/// connection, in one transaction.
pub fn add_pending_mentions(
    conn: &mut AnyConnection,
    recipients: &[UserName],
    message: &ChatMessage,
) -> QueryResult<()> {
    let id = to_stored_id(message.id);
    let rows: Vec<_> = (recipients.iter())
        .map(|recipient| {
            [
                Value::Text(recipient.as_str()),
                Value::Text(message.room.as_str()),
                Value::BigInt(id),
                Value::Text(message.from.as_str()),
                Value::Text(&message.text),
            ]
        })
        .collect();
    let insert = "INSERT INTO pending_mentions (recipient, room, message_id, sender, body) VALUES ";
    write_transaction(conn, |conn| execute_rows(conn, insert, &rows, "").map(drop))
}

/// Removes and returns the mentions kept for `recipient`, oldest first.
///
/// One statement (`DELETE ... RETURNING`): a mention kept meanwhile by
/// another connection (another node's worker, on Postgres) is either taken
/// now or left for next time, never deleted unseen.
pub fn take_pending_mentions(
    conn: &mut AnyConnection,
    recipient: &UserName,
) -> QueryResult<Vec<ChatMessage>> {
    let mut rows: Vec<PendingMentionRow> =
        Sql::new("DELETE FROM pending_mentions WHERE recipient = ")
            .text(recipient.as_str())
            .sql(" RETURNING id, room, message_id, sender, body")
            .load(conn)?;
    rows.sort_unstable_by_key(|row| row.id);
    Ok(rows
        .into_iter()
        .map(|row| MessageRow {
            room: row.room,
            id: row.message_id,
            sender: row.sender,
            body: row.body,
            created_at: String::new(),
        })
        .filter_map(|row| {
            let message = row.into_message();
            message.map_err(|error| log::warn!("a kept mention was skipped: {error}")).ok()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::queries::commit;
    use crate::db::queries::tests::{batch, database};

    #[test]
    fn pending_mentions_are_taken_once() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        let stored = commit(&mut conn, &batch(&[("r", "@bob hi")])).unwrap();
        let bob = UserName::parse("bob").unwrap();
        add_pending_mentions(
            &mut conn,
            std::slice::from_ref(&bob),
            stored.messages[0].message().unwrap(),
        )
        .unwrap();
        let taken = take_pending_mentions(&mut conn, &bob).unwrap();
        assert_eq!((taken.len(), taken[0].id, taken[0].text.as_str()), (1, 1, "@bob hi"));
        assert!(take_pending_mentions(&mut conn, &bob).unwrap().is_empty());
    }
}
