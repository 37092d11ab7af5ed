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
        .values(&NewRoomRow { name, created_at: now })
        .execute(conn)
        .map(drop)
}

/// The id of the latest message of `channel`, 0 when it has none.
pub fn last_id(conn: &mut SqliteConnection, channel: &str) -> QueryResult<MessageId> {
    let last: Option<i64> =
        messages::table.filter(messages::room.eq(channel)).select(max(messages::id)).first(conn)?;
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
        Some(since) => {
            select.filter(messages::id.gt(to_stored_id(since))).order(messages::id.asc())
        }
        None => select.order(messages::id.desc()),
    };
    let fetch = i64::try_from(query.limit).unwrap_or(i64::MAX).saturating_add(1);
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
            Some(RoomRecord { name, last_id: last.map_or(0, to_message_id) })
        })
        .collect())
}

/// Keeps `message`'s mention of each of `recipients` for their next
/// connection, in one transaction.
pub fn add_pending_mentions(
    conn: &mut SqliteConnection,
    recipients: &[UserName],
    message: &ChatMessage,
) -> QueryResult<()> {
    let rows: Vec<NewPendingMentionRow> = recipients
        .iter()
        .map(|recipient| NewPendingMentionRow {
            recipient: recipient.as_str(),
            room: &message.room,
            message_id: to_stored_id(message.id),
            sender: message.from.as_str(),
            body: &message.text,
        })
        .collect();
    conn.immediate_transaction(|conn| {
        for row in &rows {
            diesel::insert_into(pending_mentions::table).values(row).execute(conn)?;
        }
        Ok(())
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewMessage;

    fn database() -> (tempfile::TempDir, super::super::DbPool) {
        let dir = tempfile::TempDir::new().unwrap();
        let url = dir.path().join("test.db").to_string_lossy().into_owned();
        let pool = super::super::open(&url, 2).unwrap();
        (dir, pool)
    }

    fn message(channel: &str, text: &str) -> NewMessage {
        NewMessage {
            channel: channel.into(),
            from: UserName::parse("alice").unwrap(),
            text: text.into(),
        }
    }

    fn batch(messages: &[(&str, &str)]) -> Batch {
        Batch { rooms: Vec::new(), messages: messages.iter().map(|(c, t)| message(c, t)).collect() }
    }

    fn ids(page: &Page) -> Vec<MessageId> {
        page.messages.iter().map(|m| m.id).collect()
    }

    #[test]
    fn ids_are_gapless_per_channel_and_survive_a_cold_cache() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        let mut cache = HashMap::new();
        let stored =
            append(&mut conn, &mut cache, &batch(&[("a", "1"), ("b", "1"), ("a", "2")])).unwrap();
        assert_eq!(stored.iter().map(|m| m.id).collect::<Vec<_>>(), [1, 1, 2]);
        let mut cold = HashMap::new(); // as after a restart
        let stored = append(&mut conn, &mut cold, &batch(&[("a", "3"), ("@x+y", "dm")])).unwrap();
        assert_eq!(stored.iter().map(|m| m.id).collect::<Vec<_>>(), [3, 1]);
    }

    #[test]
    fn a_failed_batch_stores_nothing_and_uses_no_id() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        let mut cache = HashMap::new();
        append(&mut conn, &mut cache, &batch(&[("a", "1")])).unwrap();
        // A row already holding the id the next message would take makes
        // the whole batch fail.
        diesel::sql_query("INSERT INTO messages (room, id, sender, body, created_at) VALUES ('a', 3, 'x', 'y', 'z')")
            .execute(&mut conn)
            .unwrap();
        cache.insert("a".to_owned(), 2);
        assert!(append(&mut conn, &mut cache, &batch(&[("b", "1"), ("a", "2")])).is_err());
        assert_eq!(last_id(&mut conn, "b").unwrap(), 0, "the whole batch rolled back");
    }

    #[test]
    fn rooms_lists_rooms_with_their_latest_id_but_no_conversations() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        let mut cache = HashMap::new();
        let mut with_empty_room = batch(&[("lobby", "1"), ("lobby", "2"), ("@a+b", "dm")]);
        with_empty_room.rooms.push(RoomName::parse("empty").unwrap());
        append(&mut conn, &mut cache, &with_empty_room).unwrap();
        let listed: Vec<_> = rooms(&mut conn)
            .unwrap()
            .into_iter()
            .map(|r| (r.name.to_string(), r.last_id))
            .collect();
        assert_eq!(listed, [("empty".to_owned(), 0), ("lobby".to_owned(), 2)]);
    }

    #[test]
    fn pages_go_backwards_forwards_and_between() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        let texts: Vec<String> = (1..=10).map(|i| i.to_string()).collect();
        let all: Vec<(&str, &str)> = texts.iter().map(|t| ("r", t.as_str())).collect();
        append(&mut conn, &mut HashMap::new(), &batch(&all)).unwrap();
        let query = |since, before, upto, limit| PageQuery {
            channel: "r".into(),
            since,
            before,
            upto,
            limit,
        };
        let latest = page(&mut conn, &query(None, None, None, 3)).unwrap();
        assert_eq!((ids(&latest), latest.more), (vec![8, 9, 10], true));
        let older = page(&mut conn, &query(None, Some(3), None, 3)).unwrap();
        assert_eq!((ids(&older), older.more), (vec![1, 2], false));
        let newer = page(&mut conn, &query(Some(7), None, None, 3)).unwrap();
        assert_eq!((ids(&newer), newer.more), (vec![8, 9, 10], false));
        let between = page(&mut conn, &query(Some(2), Some(9), None, 3)).unwrap();
        assert_eq!((ids(&between), between.more), (vec![3, 4, 5], true));
        let bounded = page(&mut conn, &query(Some(4), None, Some(6), 50)).unwrap();
        assert_eq!((ids(&bounded), bounded.more), (vec![5, 6], false));
        let beyond = page(&mut conn, &query(Some(u64::MAX), None, None, 5)).unwrap();
        assert!(beyond.messages.is_empty());
    }

    #[test]
    fn pending_mentions_are_taken_once() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        let stored = append(&mut conn, &mut HashMap::new(), &batch(&[("r", "@bob hi")])).unwrap();
        let bob = UserName::parse("bob").unwrap();
        add_pending_mentions(&mut conn, std::slice::from_ref(&bob), &stored[0]).unwrap();
        let taken = take_pending_mentions(&mut conn, &bob).unwrap();
        assert_eq!((taken.len(), taken[0].id, taken[0].text.as_str()), (1, 1, "@bob hi"));
        assert!(take_pending_mentions(&mut conn, &bob).unwrap().is_empty());
    }
}
