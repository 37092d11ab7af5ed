//! Queries as plain functions over a connection, so each can be tested on
//! a temp-file database without actors.

use std::collections::HashMap;

use diesel::dsl::max;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};
use diesel::sqlite::SqliteConnection;

use super::cursors;
use super::models::{to_message_id, to_stored_id, MessageRow, NewMessageRow, NewRoomRow};
use super::schema::{messages, rooms};
use crate::domain::{Conversation, IdempotencyKey, MessageId, RoomName};
use crate::protocol::ChatMessage;
use crate::store::{
    Appended, Batch, Committed, CursorKind, CursorOutcome, NewMessage, Page, PageQuery, RoomRecord,
};

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

/// Writes `batch` inside one immediate transaction: rooms, then messages
/// (each numbered after the latest id of its channel), then cursor moves.
///
/// `last_ids` caches the latest id per channel across calls. It is only
/// updated once the transaction commits, and the caller clears it when a
/// transaction fails, so it always equals what the database holds: this
/// function (run by the single writer) is the only code that inserts
/// messages.
pub fn commit(
    conn: &mut SqliteConnection,
    last_ids: &mut HashMap<String, MessageId>,
    batch: &Batch,
) -> QueryResult<Committed> {
    let now = now_timestamp();
    let (committed, advanced) = conn.immediate_transaction(|conn| {
        for room in &batch.rooms {
            ensure_room(conn, room.as_str(), &now)?;
        }
        let mut latest = Latest { cached: last_ids, advanced: HashMap::new() };
        let mut messages = Vec::with_capacity(batch.messages.len());
        // Joins start their cursors before the messages, so that a user's
        // first join and first message in one batch leave the cursor on
        // the message; reads move cursors after them.
        let mut cursors = vec![None; batch.cursors.len()];
        for pass in [CursorKind::Start, CursorKind::Read] {
            if pass == CursorKind::Read {
                for message in &batch.messages {
                    messages.push(append(conn, &mut latest, message, &now)?);
                }
                cursors::follow_own_messages(conn, &messages)?;
                cursors::record_mentions(conn, &messages)?;
            }
            for (slot, cursor) in cursors.iter_mut().zip(&batch.cursors) {
                if cursor.kind == pass {
                    let latest_id = latest.peek(conn, cursor.channel.as_str())?;
                    *slot = Some(cursors::apply(conn, cursor, latest_id)?);
                }
            }
        }
        let cursors = cursors.into_iter().map(|c| c.unwrap_or(CursorOutcome::NotJoined)).collect();
        Ok::<_, diesel::result::Error>((Committed { messages, cursors }, latest.advanced))
    })?;
    last_ids.extend(advanced);
    Ok(committed)
}

/// The latest id of each channel inside one transaction: what it stored
/// so far, else the cache, else the database.
struct Latest<'a> {
    cached: &'a HashMap<String, MessageId>,
    advanced: HashMap<String, MessageId>,
}

impl Latest<'_> {
    /// The latest id without creating the channel (a read of a room that
    /// does not exist must not create it).
    fn peek(&mut self, conn: &mut SqliteConnection, channel: &str) -> QueryResult<MessageId> {
        match self.advanced.get(channel).or_else(|| self.cached.get(channel)) {
            Some(id) => Ok(*id),
            None => last_id(conn, channel),
        }
    }

    fn get(
        &mut self,
        conn: &mut SqliteConnection,
        channel: &str,
        now: &str,
    ) -> QueryResult<MessageId> {
        if let Some(id) = self.advanced.get(channel).or_else(|| self.cached.get(channel)) {
            return Ok(*id);
        }
        ensure_room(conn, channel, now)?;
        let id = last_id(conn, channel)?;
        self.advanced.insert(channel.to_owned(), id);
        Ok(id)
    }
}

/// Stores one message unless its sender already stored one with the same
/// idempotency key: the insert then does nothing (`ON CONFLICT DO
/// NOTHING`, which every backend words the same way), and the stored one
/// answers.
fn append(
    conn: &mut SqliteConnection,
    latest: &mut Latest<'_>,
    message: &NewMessage,
    now: &str,
) -> QueryResult<Appended> {
    let channel = message.channel.as_str();
    let id = latest.get(conn, channel, now)? + 1;
    let key = message.idempotency_key.as_ref().map(IdempotencyKey::as_str);
    let inserted = diesel::insert_into(messages::table)
        .values(&NewMessageRow {
            room: channel,
            id: to_stored_id(id),
            sender: message.from.as_str(),
            body: message.text.as_str(),
            created_at: now,
            idempotency_key: key,
        })
        .on_conflict_do_nothing()
        .execute(conn)?;
    if inserted == 0 {
        return resent(conn, message, id);
    }
    latest.advanced.insert(channel.to_owned(), id);
    Ok(Appended::Stored(ChatMessage {
        id,
        room: message.channel.clone(),
        from: message.from.clone(),
        text: message.text.as_str().to_owned(),
        ts: now.to_owned(),
    }))
}

/// What an insert that did nothing means: the sender's earlier message
/// with the same key answers, as a duplicate when it has the same room
/// and text, else as a conflict. Without such a message the clash was on
/// `id`, which the single writer never reuses: an error, not a resend.
fn resent(
    conn: &mut SqliteConnection,
    message: &NewMessage,
    id: MessageId,
) -> QueryResult<Appended> {
    let existing = match &message.idempotency_key {
        Some(key) => messages::table
            .filter(messages::sender.eq(message.from.as_str()))
            .filter(messages::idempotency_key.eq(key.as_str()))
            .select(MessageRow::as_select())
            .first(conn)
            .optional()?,
        None => None,
    };
    let Some(existing) = existing else {
        let clash = format!("message {id} of {} is stored already", message.channel);
        return Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, Box::new(clash)));
    };
    let existing = existing.into_message()?;
    Ok(if existing.room == message.channel && existing.text == message.text.as_str() {
        Appended::Duplicate(existing)
    } else {
        Appended::Conflict
    })
}

/// One page of a channel's history; see [`PageQuery`].
pub fn page(conn: &mut SqliteConnection, query: &PageQuery) -> QueryResult<Page> {
    let mut select = messages::table
        .filter(messages::room.eq(query.channel.as_str()))
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
    let messages = rows.into_iter().map(MessageRow::into_message).collect::<QueryResult<_>>()?;
    Ok(Page { messages, more })
}

/// Every room (direct conversations excluded) with its latest id.
pub fn rooms(conn: &mut SqliteConnection) -> QueryResult<Vec<RoomRecord>> {
    let latest = messages::table
        .filter(messages::room.eq(rooms::name))
        .select(max(messages::id))
        .single_value();
    let rows: Vec<(String, Option<i64>)> = rooms::table
        .filter(rooms::name.not_like(Conversation::LIKE_PATTERN))
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::domain::{Channel, Text, UserName};
    use crate::store::NewMessage;

    pub(crate) fn channel(name: &str) -> Channel {
        Channel::parse(name).unwrap()
    }

    pub(crate) fn database() -> (tempfile::TempDir, super::super::DbPool) {
        let dir = tempfile::TempDir::new().unwrap();
        let url = dir.path().join("test.db").to_string_lossy().into_owned();
        let pool = super::super::open(&url, 2).unwrap();
        (dir, pool)
    }

    fn message(channel: &str, text: &str) -> NewMessage {
        NewMessage {
            channel: self::channel(channel),
            from: UserName::parse("alice").unwrap(),
            text: Text::parse(text, 4000).unwrap(),
            idempotency_key: None,
        }
    }

    pub(crate) fn batch(messages: &[(&str, &str)]) -> Batch {
        Batch {
            messages: messages.iter().map(|(c, t)| message(c, t)).collect(),
            ..Batch::default()
        }
    }

    fn stored_ids(committed: &Committed) -> Vec<MessageId> {
        committed.messages.iter().map(|m| m.message().unwrap().id).collect()
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
            commit(&mut conn, &mut cache, &batch(&[("a", "1"), ("b", "1"), ("a", "2")])).unwrap();
        assert_eq!(stored_ids(&stored), [1, 1, 2]);
        let mut cold = HashMap::new(); // as after a restart
        let stored = commit(&mut conn, &mut cold, &batch(&[("a", "3"), ("@x+y", "dm")])).unwrap();
        assert_eq!(stored_ids(&stored), [3, 1]);
    }

    fn from(sender: &str, channel: &str, text: &str) -> NewMessage {
        NewMessage { from: UserName::parse(sender).unwrap(), ..message(channel, text) }
    }

    fn state(conn: &mut SqliteConnection, reader: &str, channel: &str) -> Option<(u64, u64)> {
        let reader = UserName::parse(reader).unwrap();
        let state = cursors::read_state(conn, &reader, &self::channel(channel)).unwrap();
        state.map(|s| (s.last_read, s.unread))
    }

    #[test]
    fn a_senders_cursor_ends_on_their_latest_message_of_the_batch() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        let mut cache = HashMap::new();
        let join = crate::store::CursorMove {
            reader: UserName::parse("alice").unwrap(),
            channel: channel("a"),
            to: 0,
            kind: CursorKind::Start,
        };
        let rooms = vec![RoomName::parse("a").unwrap()];
        commit(&mut conn, &mut cache, &Batch { rooms, cursors: vec![join], ..Batch::default() })
            .unwrap();
        let messages =
            vec![from("alice", "a", "1"), from("alice", "a", "2"), from("bob", "a", "3")];
        commit(&mut conn, &mut cache, &Batch { messages, ..Batch::default() }).unwrap();
        // Her own two are read; bob's is unread. Bob never joined: no cursor.
        assert_eq!(state(&mut conn, "alice", "a"), Some((2, 1)));
        assert_eq!(state(&mut conn, "bob", "a"), None);
    }

    #[test]
    fn a_join_behind_the_users_own_message_starts_past_it() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        let mut cache = HashMap::new();
        // Alice posts without a cursor (over HTTP, say), then joins with
        // the position the server had delivered before her message: 0.
        let rooms = vec![RoomName::parse("a").unwrap()];
        let messages = vec![from("bob", "a", "1"), from("alice", "a", "2")];
        commit(&mut conn, &mut cache, &Batch { rooms, messages, ..Batch::default() }).unwrap();
        let join = crate::store::CursorMove {
            reader: UserName::parse("alice").unwrap(),
            channel: channel("a"),
            to: 0,
            kind: CursorKind::Start,
        };
        let joined =
            commit(&mut conn, &mut cache, &Batch { cursors: vec![join], ..Batch::default() });
        assert_eq!(joined.unwrap().cursors, [CursorOutcome::Unchanged(2)]);
        assert_eq!(state(&mut conn, "alice", "a"), Some((2, 0)));
    }

    #[test]
    fn a_messages_mentions_are_counted_from_its_own_commit() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        let mut cache = HashMap::new();
        let join = |reader: &str| crate::store::CursorMove {
            reader: UserName::parse(reader).unwrap(),
            channel: channel("a"),
            to: 0,
            kind: CursorKind::Start,
        };
        let rooms = vec![RoomName::parse("a").unwrap()];
        let cursors = vec![join("bob"), join("carol")];
        commit(&mut conn, &mut cache, &Batch { rooms, cursors, ..Batch::default() }).unwrap();
        // Nothing but the commit runs: no notification worker, as after a
        // kill -9 right behind it.
        let messages = vec![from("alice", "a", "hi @bob and @carol"), from("alice", "a", "@bob!")];
        commit(&mut conn, &mut cache, &Batch { messages, ..Batch::default() }).unwrap();
        let mut mentions = |reader: &str| {
            let reader = UserName::parse(reader).unwrap();
            cursors::read_state(&mut conn, &reader, &channel("a"))
                .unwrap()
                .map(|s| (s.unread, s.mentions))
        };
        assert_eq!(mentions("bob"), Some((2, 2)));
        assert_eq!(mentions("carol"), Some((2, 1)));
        let direct = vec![from("alice", "@alice+bob", "@bob")];
        commit(&mut conn, &mut cache, &Batch { messages: direct, ..Batch::default() }).unwrap();
        let reader = UserName::parse("bob").unwrap();
        let state =
            cursors::read_state(&mut conn, &reader, &channel("@alice+bob")).unwrap().unwrap();
        assert_eq!((state.unread, state.mentions), (1, 0), "direct messages mention nobody");
    }

    #[test]
    fn a_conversations_first_message_gives_both_users_a_cursor() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        let mut cache = HashMap::new();
        let messages = vec![from("bob", "@alice+bob", "hi"), from("bob", "@alice+bob", "there")];
        commit(&mut conn, &mut cache, &Batch { messages, ..Batch::default() }).unwrap();
        assert_eq!(state(&mut conn, "alice", "@alice+bob"), Some((0, 2)));
        assert_eq!(state(&mut conn, "bob", "@alice+bob"), Some((2, 0)));
    }

    #[test]
    fn duplicates_and_conflicts_inside_one_batch_fail_nothing_else() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        let keyed = |text: &str, key: &str| NewMessage {
            idempotency_key: Some(IdempotencyKey::parse(key).unwrap()),
            ..message("r", text)
        };
        let keys = Batch {
            messages: vec![keyed("a", "k"), message("r", "x"), keyed("a", "k"), keyed("b", "k")],
            ..Batch::default()
        };
        let committed = commit(&mut conn, &mut HashMap::new(), &keys).unwrap();
        let first = committed.messages[0].message().unwrap().clone();
        assert_eq!(first.id, 1);
        assert_eq!(committed.messages[1].message().unwrap().id, 2);
        assert_eq!(committed.messages[2], Appended::Duplicate(first));
        assert_eq!(committed.messages[3], Appended::Conflict);
        let next = commit(&mut conn, &mut HashMap::new(), &batch(&[("r", "y")])).unwrap();
        assert_eq!(stored_ids(&next), [3], "no id was taken by the duplicate or the conflict");
    }

    #[test]
    fn a_failed_batch_stores_nothing_and_uses_no_id() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        let mut cache = HashMap::new();
        commit(&mut conn, &mut cache, &batch(&[("a", "1")])).unwrap();
        // A row already holding the id the next message would take makes
        // the whole batch fail.
        diesel::sql_query("INSERT INTO messages (room, id, sender, body, created_at) VALUES ('a', 3, 'x', 'y', 'z')")
            .execute(&mut conn)
            .unwrap();
        cache.insert("a".to_owned(), 2);
        assert!(commit(&mut conn, &mut cache, &batch(&[("b", "1"), ("a", "2")])).is_err());
        assert_eq!(last_id(&mut conn, "b").unwrap(), 0, "the whole batch rolled back");
    }

    #[test]
    fn rooms_lists_rooms_with_their_latest_id_but_no_conversations() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        let mut cache = HashMap::new();
        let mut with_empty_room = batch(&[("lobby", "1"), ("lobby", "2"), ("@a+b", "dm")]);
        with_empty_room.rooms.push(RoomName::parse("empty").unwrap());
        commit(&mut conn, &mut cache, &with_empty_room).unwrap();
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
        commit(&mut conn, &mut HashMap::new(), &batch(&all)).unwrap();
        let query = |since, before, upto, limit| PageQuery {
            channel: channel("r"),
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
}
