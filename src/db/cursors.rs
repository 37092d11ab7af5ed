//! Read cursors, unread counts and the inbox, as queries over a connection.
//!
//! Counting never loads messages: unread is a range count over the primary
//! key of `messages` (room, id > cursor), mentions a range count over the
//! primary key of `mentions`, and the latest message a single step down the
//! primary key of `messages`.
//!
//! Unread counts "messages after the cursor not sent by the reader" without
//! looking at senders, because of an invariant: no one's own message is
//! ever after their cursor. It holds because storing a message moves its
//! sender's cursor to it in the same transaction
//! ([`follow_own_messages`]), cursors never move back, and a cursor made
//! later starts past its reader's own messages (`past_own_messages`).
//! Migration 3 made the cursors of older databases obey it.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use super::connection::AnyConnection;
use super::models::{to_message_id, to_stored_id};
use super::schema::read_cursors::dsl;
use super::sql::{execute_rows, Sql, Value};
use crate::domain::{Channel, Conversation, MessageId, UserName};
use crate::mentions::mentioned_users;
use crate::store::{Appended, CursorKind, CursorMove, CursorOutcome, ReadState};

/// Applies one cursor move; `latest` is the channel's latest id.
///
/// It reads the cursor first, in the same transaction and under the lock
/// `queries::commit` holds on the channel's counter (so no other writer
/// moves it in between), and only ever writes a position ahead of the
/// current one.
pub fn apply(
    conn: &mut AnyConnection,
    cursor: &CursorMove,
    latest: MessageId,
) -> QueryResult<CursorOutcome> {
    let reader = cursor.reader.as_str();
    let target = cursor.to.min(latest);
    let current = position(conn, reader, cursor.channel.as_str())?;
    let current = match (current, cursor.kind) {
        (Some(current), CursorKind::Start) => return Ok(CursorOutcome::Unchanged(current)),
        (None, CursorKind::Start) => {
            let start = past_own_messages(conn, reader, cursor.channel.as_str(), target)?;
            set(conn, reader, cursor.channel.as_str(), start)?;
            return Ok(CursorOutcome::Unchanged(start));
        }
        (Some(current), CursorKind::Read) => current,
        // A conversation's cursor is made by its first message; before
        // that there is nothing to read (and nothing is created).
        (None, CursorKind::Read) if matches!(cursor.channel, Channel::Direct(_)) => {
            if latest == 0 {
                return Ok(CursorOutcome::Unchanged(0));
            }
            let start = past_own_messages(conn, reader, cursor.channel.as_str(), 0)?;
            set(conn, reader, cursor.channel.as_str(), start)?;
            start
        }
        (None, CursorKind::Read) => return Ok(CursorOutcome::NotJoined),
    };
    if target <= current {
        return Ok(CursorOutcome::Unchanged(current));
    }
    set(conn, reader, cursor.channel.as_str(), target)?;
    Ok(CursorOutcome::Moved(target))
}

/// After a batch's messages are stored: each sender has read up to their
/// latest message in each channel they wrote to (in a room only if they
/// have a cursor there), and both users of a conversation have a cursor in
/// it, so it shows in their inbox.
///
/// One write per sender and channel of the batch, rather than per message;
/// the cursors end where per-message moves would leave them. The moves
/// (and the conversations' new cursors) are a few multi-row statements
/// ([`execute_rows`]), each kept prepared: they run for nearly every
/// message (docs/performance.md, items 9 and "Postgres").
pub fn follow_own_messages(conn: &mut AnyConnection, stored: &[Appended]) -> QueryResult<()> {
    let mut latest: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for message in stored {
        if let Appended::Stored(message) = message {
            let id = latest.entry((message.from.as_str(), message.room.as_str())).or_default();
            *id = (*id).max(to_stored_id(message.id));
        }
    }
    let conversations: Vec<(Conversation, &str)> = (latest.keys())
        .filter_map(|(_, room)| Some((Conversation::parse(room).ok()?, *room)))
        .collect();
    let conversation_cursors: Vec<_> = (conversations.iter())
        .flat_map(|(conversation, room)| {
            (conversation.users().into_iter())
                .map(|user| [Value::Text(user.as_str()), Value::Text(room), Value::BigInt(0)])
        })
        .collect();
    let insert = "INSERT INTO read_cursors (reader, room, last_read) VALUES ";
    execute_rows(conn, insert, &conversation_cursors, " ON CONFLICT DO NOTHING")?;
    let moves: Vec<_> = (latest.into_iter())
        .map(|((reader, room), at)| [Value::BigInt(at), Value::Text(reader), Value::Text(room)])
        .collect();
    execute_rows(
        conn,
        "UPDATE read_cursors SET last_read = v.column1 FROM (VALUES ",
        &moves,
        ") AS v WHERE read_cursors.reader = v.column2 AND read_cursors.room = v.column3 \
         AND read_cursors.last_read < v.column1",
    )
    .map(drop)
}

/// Where a new cursor starts: at `at`, or on the reader's own latest
/// message of the channel if that is later, so that the invariant of the
/// module doc holds. `at` can be behind the reader's own messages: a
/// join's position is the latest id the `ChatServer` has delivered, and the
/// reader may have posted (over HTTP, say) in a batch committed since. Only
/// messages after `at` are read, once per new cursor.
fn past_own_messages(
    conn: &mut AnyConnection,
    reader: &str,
    channel: &str,
    at: MessageId,
) -> QueryResult<MessageId> {
    use super::schema::messages;
    let own: Option<i64> = messages::table
        .filter(messages::room.eq(channel))
        .filter(messages::id.gt(to_stored_id(at)))
        .filter(messages::sender.eq(reader))
        .select(diesel::dsl::max(messages::id))
        .first(conn)?;
    Ok(own.map_or(at, to_message_id).max(at))
}

fn position(conn: &mut AnyConnection, reader: &str, channel: &str) -> QueryResult<Option<u64>> {
    let found: Option<i64> = dsl::read_cursors
        .filter(dsl::reader.eq(reader))
        .filter(dsl::room.eq(channel))
        .select(dsl::last_read)
        .first(conn)
        .optional()?;
    Ok(found.map(to_message_id))
}

/// Puts the cursor at `at`, creating it if needed. Callers check that
/// `at` is ahead of the current position: cursors never move back.
fn set(conn: &mut AnyConnection, reader: &str, channel: &str, at: MessageId) -> QueryResult<()> {
    Sql::new("INSERT INTO read_cursors (reader, room, last_read) VALUES ")
        .row([Value::Text(reader), Value::Text(channel), Value::BigInt(to_stored_id(at))])
        .sql(" ON CONFLICT (reader, room) DO UPDATE SET last_read = excluded.last_read")
        .execute(conn)
        .map(drop)
}

/// Records whom each stored room message mentions, for unread mention
/// counts. Called in the messages' own transaction, so a message and the
/// counts made from it are stored together or not at all. Only a text with
/// an `@` is looked at; direct messages mention nobody.
pub fn record_mentions(conn: &mut AnyConnection, stored: &[Appended]) -> QueryResult<()> {
    let mut mentions = Vec::new();
    let mut users = Vec::new();
    for message in stored {
        let Appended::Stored(message) = message else {
            continue;
        };
        if !message.text.contains('@') || message.room.room().is_none() {
            continue;
        }
        for user in mentioned_users(&message.text, &message.from) {
            users.push((user, message.room.as_str(), to_stored_id(message.id)));
        }
    }
    for (user, room, id) in &users {
        mentions.push([Value::Text(user.as_str()), Value::Text(room), Value::BigInt(*id)]);
    }
    let insert = "INSERT INTO mentions (mentioned, room, message_id) VALUES ";
    execute_rows(conn, insert, &mentions, " ON CONFLICT DO NOTHING").map(drop)
}

/// One row of [`STATE`].
#[derive(QueryableByName)]
struct StateRow {
    #[diesel(sql_type = Text)]
    room: String,
    #[diesel(sql_type = BigInt)]
    last_read: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    last_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    last_ts: Option<String>,
    #[diesel(sql_type = BigInt)]
    unread: i64,
    #[diesel(sql_type = BigInt)]
    mentions: i64,
}

/// A reader's state per cursor; every sub-query is an index lookup or an
/// index range count (see the module doc).
const STATE: &str = "SELECT c.room AS room, c.last_read AS last_read, \
     (SELECT m.id FROM messages m WHERE m.room = c.room ORDER BY m.id DESC LIMIT 1) AS last_id, \
     (SELECT m.created_at FROM messages m WHERE m.room = c.room ORDER BY m.id DESC LIMIT 1) \
        AS last_ts, \
     (SELECT COUNT(*) FROM messages m WHERE m.room = c.room AND m.id > c.last_read) \
        AS unread, \
     (SELECT COUNT(*) FROM mentions x WHERE x.mentioned = c.reader AND x.room = c.room \
        AND x.message_id > c.last_read) AS mentions \
     FROM read_cursors c WHERE c.reader = ";

/// The row as a [`ReadState`]; `None` (and a warning) for a cursor whose
/// channel name walkie would never write.
fn into_state(row: StateRow) -> Option<ReadState> {
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let room = Channel::parse(&row.room)
        .map_err(|error| log::warn!("a read cursor names no channel, skipped: {error}"))
        .ok()?;
    Some(ReadState {
        room,
        last_id: row.last_id.map_or(0, to_message_id),
        last_ts: row.last_ts,
        last_read: to_message_id(row.last_read),
        unread: count(row.unread),
        mentions: count(row.mentions),
    })
}

/// The read state of `reader` in `channel`, if they have a cursor there.
pub fn read_state(
    conn: &mut AnyConnection,
    reader: &UserName,
    channel: &Channel,
) -> QueryResult<Option<ReadState>> {
    let rows: Vec<StateRow> = Sql::new(STATE)
        .text(reader.as_str())
        .sql(" AND c.room = ")
        .text(channel.as_str())
        .load(conn)?;
    Ok(rows.into_iter().next().and_then(into_state))
}

/// Every channel `reader` has a cursor in, the one with the most recent
/// message first, those without messages last.
pub fn inbox(conn: &mut AnyConnection, reader: &UserName) -> QueryResult<Vec<ReadState>> {
    let rows: Vec<StateRow> = Sql::new(STATE).text(reader.as_str()).load(conn)?;
    let mut states: Vec<ReadState> = rows.into_iter().filter_map(into_state).collect();
    // RFC 3339 timestamps of one format sort as text; ties by name.
    states.sort_by(|a, b| {
        b.last_ts.cmp(&a.last_ts).then_with(|| a.room.as_str().cmp(b.room.as_str()))
    });
    Ok(states)
}
