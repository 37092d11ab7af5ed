//! Rows of the tables in `schema.rs`, and their conversion to protocol
//! types. Ids are `BIGINT` (i64) in both stores and `u64` on the wire; both
//! conversions are checked.

use diesel::prelude::*;

use super::schema::{messages, pending_mentions};
use crate::domain::{Channel, MessageId, UserName};
use crate::protocol::ChatMessage;

/// A message as stored.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = messages, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct MessageRow {
    pub room: String,
    pub id: i64,
    pub sender: String,
    pub body: String,
    pub created_at: String,
}

impl MessageRow {
    /// The message as clients see it. A row whose sender is not a valid
    /// name (written by something other than walkie) keeps its text but is
    /// shown as from `unknown`; a row whose room is not a valid channel
    /// name is an error (it belongs to no room anyone can ask for).
    pub fn into_message(self) -> QueryResult<ChatMessage> {
        let from = UserName::parse(self.sender).unwrap_or_else(|_| unknown_sender());
        let room = Channel::parse(&self.room).map_err(|error| {
            diesel::result::Error::DeserializationError(
                format!("a stored message's room is not a channel name: {error}").into(),
            )
        })?;
        Ok(ChatMessage {
            id: to_message_id(self.id),
            room,
            from,
            text: self.body,
            ts: self.created_at,
        })
    }
}

fn unknown_sender() -> UserName {
    // ok: "unknown" is a valid name by the rules of `UserName::parse`.
    UserName::parse("unknown").expect("a valid literal name")
}

/// A mention waiting for its user to come online.
#[derive(Debug, QueryableByName)]
#[diesel(table_name = pending_mentions)]
pub struct PendingMentionRow {
    pub id: i32,
    pub room: String,
    pub message_id: i64,
    pub sender: String,
    pub body: String,
}

/// A stored id as a protocol id; stored ids are never negative.
pub fn to_message_id(id: i64) -> MessageId {
    MessageId::try_from(id).unwrap_or(0)
}

/// A protocol id as a query bound, saturating: ids beyond `i64::MAX` are
/// beyond every stored id anyway.
pub fn to_stored_id(id: MessageId) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}
