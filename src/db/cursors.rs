//! Read cursors, unread counts and the inbox, as queries over a connection.
//!
//! Counting never loads messages: unread is a range count over the index
//! `messages_by_room_id_sender` (room, id > cursor, sender in the index),
//! mentions a range count over the primary key of `mentions`, and the
//! latest message a single step down the primary key of `messages`.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::sqlite::SqliteConnection;

use super::models::{to_message_id, to_stored_id};
use crate::domain::{Conversation, MessageId, UserName};
use crate::store::{CursorKind, CursorMove, CursorOutcome, NewMessage, ReadState};

/// Applies one cursor move; `latest` is the channel's latest id.
pub fn apply(
    conn: &mut SqliteConnection,
    cursor: &CursorMove,
    latest: MessageId,
) -> QueryResult<CursorOutcome> {
    let reader = cursor.reader.as_str();
    let target = cursor.to.min(latest);
    let current = position(conn, reader, &cursor.channel)?;
    let current = match (current, cursor.kind) {
        (Some(current), CursorKind::Start) => return Ok(CursorOutcome::Unchanged(current)),
        (None, CursorKind::Start) => {
            write(conn, UPSERT, reader, &cursor.channel, target)?;
            return Ok(CursorOutcome::Unchanged(target));
        }
        (Some(current), CursorKind::Read) => current,
        // A conversation's cursor is made by its first message; before
        // that there is nothing to read (and nothing is created).
        (None, CursorKind::Read) if cursor.channel.starts_with('@') => {
            if latest == 0 {
                return Ok(CursorOutcome::Unchanged(0));
            }
            write(conn, UPSERT, reader, &cursor.channel, 0)?;
            0
        }
        (None, CursorKind::Read) => return Ok(CursorOutcome::NotJoined),
    };
    if target <= current {
        return Ok(CursorOutcome::Unchanged(current));
    }
    write(conn, UPSERT, reader, &cursor.channel, target)?;
    Ok(CursorOutcome::Moved(target))
}

/// After a stored message: its sender has read up to it (in a room only if
/// they have a cursor there), and both users of a conversation have a
/// cursor in it, so it shows in their inbox.
pub fn follow_own_message(
    conn: &mut SqliteConnection,
    message: &NewMessage,
    id: MessageId,
) -> QueryResult<()> {
    let sender = message.from.as_str();
    if let Ok(conversation) = Conversation::parse(&message.channel) {
        for user in conversation.users() {
            if user != &message.from {
                write(conn, INSERT_IF_MISSING, user.as_str(), &message.channel, 0)?;
            }
        }
        write(conn, INSERT_IF_MISSING, sender, &message.channel, 0)?;
    }
    diesel::sql_query(
        "UPDATE read_cursors SET last_read = MAX(last_read, ?) WHERE reader = ? AND room = ?",
    )
    .bind::<BigInt, _>(to_stored_id(id))
    .bind::<Text, _>(sender)
    .bind::<Text, _>(&message.channel)
    .execute(conn)
    .map(drop)
}

fn position(conn: &mut SqliteConnection, reader: &str, channel: &str) -> QueryResult<Option<u64>> {
    use crate::schema::read_cursors::dsl;
    let found: Option<i64> = dsl::read_cursors
        .filter(dsl::reader.eq(reader))
        .filter(dsl::room.eq(channel))
        .select(dsl::last_read)
        .first(conn)
        .optional()?;
    Ok(found.map(to_message_id))
}

/// Moves (or creates) a cursor forward to `at`; never back.
const UPSERT: &str = "INSERT INTO read_cursors (reader, room, last_read) VALUES (?, ?, ?) \
     ON CONFLICT (reader, room) DO UPDATE SET last_read = MAX(last_read, excluded.last_read)";

/// Creates a cursor at `at` unless one exists.
const INSERT_IF_MISSING: &str =
    "INSERT OR IGNORE INTO read_cursors (reader, room, last_read) VALUES (?, ?, ?)";

fn write(
    conn: &mut SqliteConnection,
    sql: &str,
    reader: &str,
    channel: &str,
    at: MessageId,
) -> QueryResult<()> {
    diesel::sql_query(sql)
        .bind::<Text, _>(reader)
        .bind::<Text, _>(channel)
        .bind::<BigInt, _>(to_stored_id(at))
        .execute(conn)
        .map(drop)
}

/// Records that message `id` of `room` mentions `users`.
pub fn add_mentions(
    conn: &mut SqliteConnection,
    room: &str,
    id: MessageId,
    users: &[UserName],
) -> QueryResult<()> {
    for user in users {
        diesel::sql_query(
            "INSERT OR IGNORE INTO mentions (mentioned, room, message_id) VALUES (?, ?, ?)",
        )
        .bind::<Text, _>(user.as_str())
        .bind::<Text, _>(room)
        .bind::<BigInt, _>(to_stored_id(id))
        .execute(conn)?;
    }
    Ok(())
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
     (SELECT COUNT(*) FROM messages m INDEXED BY messages_by_room_id_sender \
        WHERE m.room = c.room AND m.id > c.last_read AND m.sender <> c.reader) AS unread, \
     (SELECT COUNT(*) FROM mentions x WHERE x.mentioned = c.reader AND x.room = c.room \
        AND x.message_id > c.last_read) AS mentions \
     FROM read_cursors c WHERE c.reader = ?";

fn into_state(row: StateRow) -> ReadState {
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    ReadState {
        room: row.room,
        last_id: row.last_id.map_or(0, to_message_id),
        last_ts: row.last_ts,
        last_read: to_message_id(row.last_read),
        unread: count(row.unread),
        mentions: count(row.mentions),
    }
}

/// The read state of `reader` in `channel`, if they have a cursor there.
pub fn read_state(
    conn: &mut SqliteConnection,
    reader: &UserName,
    channel: &str,
) -> QueryResult<Option<ReadState>> {
    let rows: Vec<StateRow> = diesel::sql_query(format!("{STATE} AND c.room = ?"))
        .bind::<Text, _>(reader.as_str())
        .bind::<Text, _>(channel)
        .load(conn)?;
    Ok(rows.into_iter().next().map(into_state))
}

/// Every channel `reader` has a cursor in, the one with the most recent
/// message first, those without messages last.
pub fn inbox(conn: &mut SqliteConnection, reader: &UserName) -> QueryResult<Vec<ReadState>> {
    let rows: Vec<StateRow> =
        diesel::sql_query(STATE).bind::<Text, _>(reader.as_str()).load(conn)?;
    let mut states: Vec<ReadState> = rows.into_iter().map(into_state).collect();
    // RFC 3339 timestamps of one format sort as text; ties by name.
    states.sort_by(|a, b| b.last_ts.cmp(&a.last_ts).then_with(|| a.room.cmp(&b.room)));
    Ok(states)
}
