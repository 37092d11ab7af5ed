//! Queries as plain functions over a connection, so each can be tested on
//! a temp-file database without actors.

use std::collections::HashMap;

use diesel::dsl::max;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::models::{
    to_message_id, to_stored_id, MessageRow, NewMessageRow, NewPendingMentionRow, NewRoomRow,
    PendingMentionRow,
};
use crate::domain::{MessageId, RoomName, UserName};
use crate::protocol::ChatMessage;
use crate::schema::{messages, pending_mentions, rooms};
use crate::store::{Batch, Page, PageQuery, RoomRecord};

/// The current time as the protocol writes it: RFC 3339 UTC, milliseconds.
pub fn now_timestamp() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Creates a room (or conversation) row unless it exists.
pub fn ensure_room(conn: &mut SqliteConnection, name: &str, now: &str) -> QueryResult<()> {
    diesel::insert_or_ignore_into(rooms::table)
        .values(&NewRoomRow {
            name,
            created_at: now,
        })
        .execute(conn)
        .map(drop)
}

/// The id of the latest message of `channel`, 0 when it has none.
pub fn last_id(conn: &mut SqliteConnection, channel: &str) -> QueryResult<MessageId> {
    let last: Option<i64> = messages::table
        .filter(messages::room.eq(channel))
        .select(max(messages::id))
        .first(conn)?;
    Ok(last.map_or(0, to_message_id))
}

/// Appends `batch` inside one immediate transaction, numbering each message
/// after the latest id of its channel.
///
/// `last_ids` caches the latest id per channel across calls. It is only
/// updated once the transaction commits, and the caller clears it when a
/// transaction fails, so it always equals what the database holds: this
/// function (run by the single writer) is the only code that inserts
/// messages.
pub fn append(
    conn: &mut SqliteConnection,
    last_ids: &mut HashMap<String, MessageId>,
    batch: &Batch,
) -> QueryResult<Vec<ChatMessage>> {
    let now = now_timestamp();
    let (stored, advanced) = conn.immediate_transaction(|conn| {
        for room in &batch.rooms {
            ensure_room(conn, room.as_str(), &now)?;
        }
        let mut advanced: HashMap<&str, MessageId> = HashMap::new();
        let mut stored = Vec::with_capacity(batch.messages.len());
        for message in &batch.messages {
            let channel = message.channel.as_str();
            let last = match advanced.get(channel).or_else(|| last_ids.get(channel)) {
                Some(last) => *last,
                None => {
                    ensure_room(conn, channel, &now)?;
                    last_id(conn, channel)?
                }
            };
            let id = last + 1;
            diesel::insert_into(messages::table)
                .values(&NewMessageRow {
                    room: channel,
                    id: to_stored_id(id),
                    sender: message.from.as_str(),
                    body: &message.text,
                    created_at: &now,
                })
                .execute(conn)?;
            advanced.insert(channel, id);
            stored.push(ChatMessage {
                id,
                room: message.channel.clone(),
                from: message.from.clone(),
                text: message.text.clone(),
                ts: now.clone(),
            });
        }
        Ok::<_, diesel::result::Error>((stored, advanced))
    })?;
    for (channel, id) in advanced {
        last_ids.insert(channel.to_owned(), id);
    }
    Ok(stored)
}

/// One page of a channel's history; see [`PageQuery`].
pub fn page(conn: &mut SqliteConnection, query: &PageQuery) -> QueryResult<Page> {
    let mut select = messages::table
        .filter(messages::room.eq(&query.channel))
        .select(MessageRow::as_select())
        .into_boxed();
    if let Some(upto) = query.upto {
        select = select.filter(messages::id.le(to_stored_id(upto)));
    }
    if let Some(before) = query.before {
        select = select.filter(messages::id.lt(to_stored_id(before)));
    }
    let oldest_first = query.since.is_some();
    select = match query.since {
        Some(since) => select
            .filter(messages::id.gt(to_stored_id(since)))
            .order(messages::id.asc()),
        None => select.order(messages::id.desc()),
    };
    let fetch = i64::try_from(query.limit)
        .unwrap_or(i64::MAX)
        .saturating_add(1);
    let mut rows: Vec<MessageRow> = select.limit(fetch).load(conn)?;
    let more = rows.len() > query.limit;
    rows.truncate(query.limit);
    if !oldest_first {
        rows.reverse();
    }
    let messages = rows.into_iter().map(MessageRow::into_message).collect();
    Ok(Page { messages, more })
}

/// Every room (direct conversations excluded) with its latest id.
pub fn rooms(conn: &mut SqliteConnection) -> QueryResult<Vec<RoomRecord>> {
    let latest = messages::table
        .filter(messages::room.eq(rooms::name))
        .select(max(messages::id))
        .single_value();
    let rows: Vec<(String, Option<i64>)> = rooms::table
        .filter(rooms::name.not_like("@%"))
        .select((rooms::name, latest))
        .order(rooms::name.asc())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(name, last)| {
            let name = RoomName::parse(name).ok()?;
            Some(RoomRecord {
                name,
                last_id: last.map_or(0, to_message_id),
            })
        })
        .collect())
}

/// Keeps a mention of `recipient` for their next connection.
pub fn add_pending_mention(
    conn: &mut SqliteConnection,
    recipient: &UserName,
    message: &ChatMessage,
) -> QueryResult<()> {
    diesel::insert_into(pending_mentions::table)
        .values(&NewPendingMentionRow {
            recipient: recipient.as_str(),
            room: &message.room,
            message_id: to_stored_id(message.id),
            sender: message.from.as_str(),
            body: &message.text,
        })
        .execute(conn)
        .map(drop)
}

/// Removes and returns the mentions kept for `recipient`, oldest first.
pub fn take_pending_mentions(
    conn: &mut SqliteConnection,
    recipient: &UserName,
) -> QueryResult<Vec<ChatMessage>> {
    let rows: Vec<PendingMentionRow> = pending_mentions::table
        .filter(pending_mentions::recipient.eq(recipient.as_str()))
        .order(pending_mentions::id.asc())
        .select(PendingMentionRow::as_select())
        .load(conn)?;
    if let Some(newest) = rows.last() {
        diesel::delete(
            pending_mentions::table
                .filter(pending_mentions::recipient.eq(recipient.as_str()))
                .filter(pending_mentions::id.le(newest.id)),
        )
        .execute(conn)?;
    }
    Ok(rows
        .into_iter()
        .map(|row| MessageRow {
            room: row.room,
            id: row.message_id,
            sender: row.sender,
            body: row.body,
            created_at: String::new(),
        })
        .map(MessageRow::into_message)
        .collect())
}
