//! Queries as plain functions over a connection to either store, so each
//! can be tested on a temp-file database without actors.

use std::collections::{BTreeMap, HashMap, HashSet};

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};

use super::connection::{row_lock, write_transaction, AnyConnection};
use super::cursors;
use super::models::{to_message_id, to_stored_id, MessageRow};
use super::schema::{messages, rooms};
use super::sql::{execute_rows, in_chunks, Value};
use crate::domain::{Channel, Conversation, IdempotencyKey, MessageId, RoomName, UserName};
use crate::protocol::ChatMessage;
use crate::store::{
    Appended, Batch, Committed, CursorKind, CursorOutcome, NewMessage, Page, PageQuery, RoomRecord,
};

/// The current time as the protocol writes it: RFC 3339 UTC, milliseconds.
pub fn now_timestamp() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Writes `batch` inside one write transaction: rooms, then messages, then
/// cursor moves.
///
/// Ids come from each room's counter (`rooms.last_id`), never from a
/// sequence: the transaction first locks the counter row of every channel
/// the batch touches, in name order (`SELECT ... ORDER BY name FOR NO KEY
/// UPDATE` on Postgres), numbers its messages after it, and writes the
/// last id back before it commits. A
/// message that is not stored (a resend) takes no id; a batch that fails
/// rolls back its ids with its messages. On Postgres several writers (one
/// per node) may commit into one room at once: the row lock makes the
/// second wait for the first's commit, so ids are gapless and in commit
/// order, and a visible message means every smaller id of its room is
/// visible too. Taking every counter lock first, in one order, keeps two
/// writers from deadlocking over rooms, cursors and mentions (each cursor
/// and mention row belongs to one channel, so it is only written under
/// that channel's lock). One wait is left outside that order: an insert
/// whose idempotency key another writer has just inserted waits for that
/// writer's commit, so one user sending the same keys through two nodes
/// in opposite orders can deadlock; Postgres then rolls one batch back and
/// the writer runs it again (`connection::lost_a_race`).
pub fn commit(conn: &mut AnyConnection, batch: &Batch) -> QueryResult<Committed> {
    let now = now_timestamp();
    write_transaction(conn, |conn| {
        let mut counters = Counters::lock(conn, batch, &now)?;
        let mut messages = Vec::new();
        // Joins start their cursors before the messages, so that a user's
        // first join and first message in one batch leave the cursor on
        // the message; reads move cursors after them.
        let mut cursors = vec![None; batch.cursors.len()];
        for pass in [CursorKind::Start, CursorKind::Read] {
            if pass == CursorKind::Read {
                messages = append_all(conn, &mut counters, &batch.messages, &now)?;
                cursors::follow_own_messages(conn, &messages)?;
                cursors::record_mentions(conn, &messages)?;
            }
            for (slot, cursor) in cursors.iter_mut().zip(&batch.cursors) {
                if cursor.kind == pass {
                    let latest = counters.latest(cursor.channel.as_str());
                    *slot = Some(cursors::apply(conn, cursor, latest)?);
                }
            }
        }
        counters.write_back(conn)?;
        let cursors = cursors.into_iter().map(|c| c.unwrap_or(CursorOutcome::NotJoined)).collect();
        Ok(Committed { messages, cursors })
    })
}

/// A room's counter, as [`Counters::lock`] reads it.
#[derive(QueryableByName)]
struct Counter {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    last_id: i64,
}

/// The id counters of the channels one batch touches, locked for its
/// transaction; see [`commit`].
#[derive(Clone)]
struct Counters {
    /// Latest id per existing channel: as locked, then as advanced.
    latest: HashMap<String, MessageId>,
    /// The channels whose counter moved, to write back.
    advanced: HashSet<String>,
}

impl Counters {
    /// Creates the rooms the batch creates or writes to, then locks the
    /// counter of every channel it touches, in name order: both a few
    /// statements ([`execute_rows`], [`in_chunks`]), however many rooms the
    /// batch touches. A channel that only a cursor names is not created
    /// (reading a room that does not exist must not make it).
    fn lock(conn: &mut AnyConnection, batch: &Batch, now: &str) -> QueryResult<Self> {
        let mut channels: BTreeMap<&str, bool> = BTreeMap::new();
        for cursor in &batch.cursors {
            channels.insert(cursor.channel.as_str(), false);
        }
        let created = batch.rooms.iter().map(RoomName::as_str);
        for name in created.chain(batch.messages.iter().map(|m| m.channel.as_str())) {
            channels.insert(name, true);
        }
        let created: Vec<_> = (channels.iter())
            .filter(|(_, create)| **create)
            .map(|(channel, _)| [Value::Text(channel), Value::Text(now)])
            .collect();
        let insert = "INSERT INTO rooms (name, created_at) VALUES ";
        execute_rows(conn, insert, &created, " ON CONFLICT DO NOTHING")?;
        let names: Vec<_> = channels.keys().map(|channel| [Value::Text(channel)]).collect();
        let mut latest = HashMap::with_capacity(channels.len());
        let select = "SELECT name, last_id FROM rooms WHERE name IN (VALUES ";
        for statement in in_chunks(select, &names) {
            let locked: Vec<Counter> =
                statement.sql(") ORDER BY name").sql(row_lock(conn)).load(conn)?;
            for Counter { name, last_id } in locked {
                latest.insert(name, to_message_id(last_id));
            }
        }
        Ok(Self { latest, advanced: HashSet::new() })
    }

    /// The latest id of `channel`, 0 for a channel that does not exist.
    fn latest(&self, channel: &str) -> MessageId {
        self.latest.get(channel).copied().unwrap_or(0)
    }

    /// Takes the next id of `channel` (locked by [`Counters::lock`]).
    fn take(&mut self, channel: &str) -> MessageId {
        let id = self.latest(channel) + 1;
        self.latest.insert(channel.to_owned(), id);
        if !self.advanced.contains(channel) {
            self.advanced.insert(channel.to_owned());
        }
        id
    }

    /// Writes each moved counter back, in the transaction.
    fn write_back(self, conn: &mut AnyConnection) -> QueryResult<()> {
        let rows: Vec<_> = (self.advanced.iter())
            .map(|channel| {
                [Value::Text(channel), Value::BigInt(to_stored_id(self.latest(channel)))]
            })
            .collect();
        let before = "UPDATE rooms SET last_id = v.column2 FROM (VALUES ";
        execute_rows(conn, before, &rows, ") AS v WHERE rooms.name = v.column1").map(drop)
    }
}

/// Stores a batch's messages: all at once when none is a resend (the
/// usual case), else one by one.
///
/// All at once is a few multi-row inserts ([`execute_rows`]), in a
/// savepoint: on Postgres each statement is a round trip, and one per
/// message bounded a node at about 19,000 msgs/s (docs/performance.md,
/// "Postgres"). Ids are taken before the inserts know whether a row goes
/// in; if one did not (its idempotency key was used), the savepoint is
/// rolled back, the counters restored, and [`append`] does them one at a
/// time, so a resend takes no id.
fn append_all(
    conn: &mut AnyConnection,
    counters: &mut Counters,
    messages: &[NewMessage],
    now: &str,
) -> QueryResult<Vec<Appended>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let before = counters.clone();
    let at_once = conn.transaction(|conn| insert_at_once(conn, counters, messages, now));
    match at_once {
        Ok(stored) => Ok(stored),
        Err(AtOnce::Resent) => {
            *counters = before;
            messages.iter().map(|message| append(conn, counters, message, now)).collect()
        }
        Err(AtOnce::Failed(error)) => Err(error),
    }
}

/// Why [`insert_at_once`] gave up.
enum AtOnce {
    /// A message was not inserted: a resend, to be answered one by one.
    Resent,
    /// The database failed.
    Failed(Error),
}

impl From<Error> for AtOnce {
    fn from(error: Error) -> Self {
        AtOnce::Failed(error)
    }
}

fn insert_at_once(
    conn: &mut AnyConnection,
    counters: &mut Counters,
    messages: &[NewMessage],
    now: &str,
) -> Result<Vec<Appended>, AtOnce> {
    let ids: Vec<MessageId> = messages.iter().map(|m| counters.take(m.channel.as_str())).collect();
    let rows: Vec<_> = messages.iter().zip(&ids).map(|(m, id)| message_row(m, *id, now)).collect();
    let inserted = execute_rows(conn, INSERT_MESSAGES, &rows, " ON CONFLICT DO NOTHING")?;
    if inserted != messages.len() {
        return Err(AtOnce::Resent);
    }
    Ok(messages.iter().zip(ids).map(|(message, id)| stored(message, id, now)).collect())
}

const INSERT_MESSAGES: &str =
    "INSERT INTO messages (room, id, sender, body, created_at, idempotency_key) VALUES ";

/// One row's values for [`INSERT_MESSAGES`].
fn message_row<'a>(message: &'a NewMessage, id: MessageId, now: &'a str) -> [Value<'a>; 6] {
    let key = message.idempotency_key.as_ref().map(IdempotencyKey::as_str);
    [
        Value::Text(message.channel.as_str()),
        Value::BigInt(to_stored_id(id)),
        Value::Text(message.from.as_str()),
        Value::Text(message.text.as_str()),
        Value::Text(now),
        Value::NullableText(key),
    ]
}

/// The message as stored under `id`.
fn stored(message: &NewMessage, id: MessageId, now: &str) -> Appended {
    Appended::Stored(ChatMessage {
        id,
        room: message.channel.clone(),
        from: message.from.clone(),
        text: message.text.as_str().to_owned(),
        ts: now.to_owned(),
    })
}

/// Stores one message unless its sender already stored one with the same
/// idempotency key: the insert then does nothing (`ON CONFLICT DO
/// NOTHING`), the id it would have taken stays free, and the stored one
/// answers.
fn append(
    conn: &mut AnyConnection,
    counters: &mut Counters,
    message: &NewMessage,
    now: &str,
) -> QueryResult<Appended> {
    let channel = message.channel.as_str();
    let id = counters.latest(channel) + 1;
    let row = [message_row(message, id, now)];
    let inserted = execute_rows(conn, INSERT_MESSAGES, &row, " ON CONFLICT DO NOTHING")?;
    if inserted == 0 {
        return resent(conn, message, id);
    }
    counters.take(channel);
    Ok(stored(message, id, now))
}

/// What an insert that did nothing means: the sender's earlier message
/// with the same key answers, as a duplicate when it has the same room
/// and text, else as a conflict. Without such a message the clash was on
/// `id`, which the locked counter never hands out twice: an error (the
/// counter is behind the messages), not a resend.
fn resent(conn: &mut AnyConnection, message: &NewMessage, id: MessageId) -> QueryResult<Appended> {
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
pub fn page(conn: &mut AnyConnection, query: &PageQuery) -> QueryResult<Page> {
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
pub fn rooms(conn: &mut AnyConnection) -> QueryResult<Vec<RoomRecord>> {
    let rows: Vec<(String, i64)> = rooms::table
        .filter(rooms::name.not_like(Conversation::LIKE_PATTERN))
        .select((rooms::name, rooms::last_id))
        .order(rooms::name.asc())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(name, last)| {
            let name = RoomName::parse(name).ok()?;
            Some(RoomRecord { name, last_id: to_message_id(last) })
        })
        .collect())
}

/// How many names one `IN` list holds, well under SQLite's limit on
/// bound values.
const NAMES_PER_QUERY: usize = 500;

/// The latest id of each of `channels` that has a counter (a channel
/// without messages may have none, or 0).
pub fn last_ids(
    conn: &mut AnyConnection,
    channels: &[Channel],
) -> QueryResult<Vec<(Channel, MessageId)>> {
    let mut found = Vec::with_capacity(channels.len());
    for chunk in channels.chunks(NAMES_PER_QUERY) {
        let names: Vec<&str> = chunk.iter().map(Channel::as_str).collect();
        let rows: Vec<(String, i64)> = rooms::table
            .filter(rooms::name.eq_any(names))
            .select((rooms::name, rooms::last_id))
            .load(conn)?;
        found.extend(
            rows.into_iter().filter_map(|(name, last)| {
                Some((Channel::parse(&name).ok()?, to_message_id(last)))
            }),
        );
    }
    Ok(found)
}

/// Every direct conversation of `user` (both users of a conversation get
/// a read cursor with its first message) and its latest id.
pub fn conversations(
    conn: &mut AnyConnection,
    user: &UserName,
) -> QueryResult<Vec<(Channel, MessageId)>> {
    use super::schema::read_cursors;
    let rows: Vec<(String, i64)> = read_cursors::table
        .inner_join(rooms::table)
        .filter(read_cursors::reader.eq(user.as_str()))
        .filter(read_cursors::room.like(Conversation::LIKE_PATTERN))
        .select((rooms::name, rooms::last_id))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(name, last)| Some((Channel::parse(&name).ok()?, to_message_id(last))))
        .collect())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::domain::{Channel, Text, UserName};
    use crate::store::NewMessage;

    /// The counter of `channel`: its latest id, 0 when it has none.
    pub(crate) fn last_id(conn: &mut AnyConnection, channel: &str) -> QueryResult<MessageId> {
        let last: Option<i64> = rooms::table
            .filter(rooms::name.eq(channel))
            .select(rooms::last_id)
            .first(conn)
            .optional()?;
        Ok(last.map_or(0, to_message_id))
    }

    pub(crate) fn channel(name: &str) -> Channel {
        Channel::parse(name).unwrap()
    }

    /// A fresh database on the store the tests run on: a SQLite file, or
    /// with `WALKIE_TEST_STORE=postgres` a new database in the cluster at
    /// `WALKIE_PG_URL` (as the integration suite, tests/it/databases.rs).
    pub(crate) fn database() -> (tempfile::TempDir, super::super::DbPool) {
        use diesel::connection::SimpleConnection;
        use std::sync::atomic::{AtomicUsize, Ordering};

        let dir = tempfile::TempDir::new().unwrap();
        let mut url = dir.path().join("test.db").to_string_lossy().into_owned();
        if std::env::var("WALKIE_TEST_STORE").as_deref() == Ok("postgres") {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let cluster = std::env::var("WALKIE_PG_URL").expect("WALKIE_PG_URL");
            let name =
                format!("unit_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
            let mut admin = diesel::PgConnection::establish(&cluster).unwrap();
            admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
            url = format!("{}/{name}", cluster.rsplit_once('/').unwrap().0);
        }
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
    fn ids_are_gapless_per_channel_and_continue_across_batches() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        let stored = commit(&mut conn, &batch(&[("a", "1"), ("b", "1"), ("a", "2")])).unwrap();
        assert_eq!(stored_ids(&stored), [1, 1, 2]);
        let stored = commit(&mut conn, &batch(&[("a", "3"), ("@x+y", "dm")])).unwrap();
        assert_eq!(stored_ids(&stored), [3, 1]);
    }

    /// The cursor a join of `channel` by `reader` starts.
    fn join(reader: &str, channel: &str) -> crate::store::CursorMove {
        crate::store::CursorMove {
            reader: UserName::parse(reader).unwrap(),
            channel: self::channel(channel),
            to: 0,
            kind: CursorKind::Start,
        }
    }

    fn from(sender: &str, channel: &str, text: &str) -> NewMessage {
        NewMessage { from: UserName::parse(sender).unwrap(), ..message(channel, text) }
    }

    fn state(conn: &mut AnyConnection, reader: &str, channel: &str) -> Option<(u64, u64)> {
        let reader = UserName::parse(reader).unwrap();
        let state = cursors::read_state(conn, &reader, &self::channel(channel)).unwrap();
        state.map(|s| (s.last_read, s.unread))
    }

    #[test]
    fn a_senders_cursor_ends_on_their_latest_message_of_the_batch() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        let join = join("alice", "a");
        let rooms = vec![RoomName::parse("a").unwrap()];
        commit(&mut conn, &Batch { rooms, cursors: vec![join], ..Batch::default() }).unwrap();
        let messages =
            vec![from("alice", "a", "1"), from("alice", "a", "2"), from("bob", "a", "3")];
        commit(&mut conn, &Batch { messages, ..Batch::default() }).unwrap();
        // Her own two are read; bob's is unread. Bob never joined: no cursor.
        assert_eq!(state(&mut conn, "alice", "a"), Some((2, 1)));
        assert_eq!(state(&mut conn, "bob", "a"), None);
    }

    #[test]
    fn a_join_behind_the_users_own_message_starts_past_it() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        // Alice posts without a cursor (over HTTP, say), then joins with
        // the position the server had delivered before her message: 0.
        let rooms = vec![RoomName::parse("a").unwrap()];
        let messages = vec![from("bob", "a", "1"), from("alice", "a", "2")];
        commit(&mut conn, &Batch { rooms, messages, ..Batch::default() }).unwrap();
        let join = join("alice", "a");
        let joined = commit(&mut conn, &Batch { cursors: vec![join], ..Batch::default() });
        assert_eq!(joined.unwrap().cursors, [CursorOutcome::Unchanged(2)]);
        assert_eq!(state(&mut conn, "alice", "a"), Some((2, 0)));
    }

    #[test]
    fn a_messages_mentions_are_counted_from_its_own_commit() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        let rooms = vec![RoomName::parse("a").unwrap()];
        let cursors = vec![join("bob", "a"), join("carol", "a")];
        commit(&mut conn, &Batch { rooms, cursors, ..Batch::default() }).unwrap();
        // Nothing but the commit runs: no notification worker, as after a
        // kill -9 right behind it.
        let messages = vec![from("alice", "a", "hi @bob and @carol"), from("alice", "a", "@bob!")];
        commit(&mut conn, &Batch { messages, ..Batch::default() }).unwrap();
        let mut mentions = |reader: &str| {
            let reader = UserName::parse(reader).unwrap();
            cursors::read_state(&mut conn, &reader, &channel("a"))
                .unwrap()
                .map(|s| (s.unread, s.mentions))
        };
        assert_eq!(mentions("bob"), Some((2, 2)));
        assert_eq!(mentions("carol"), Some((2, 1)));
        let direct = vec![from("alice", "@alice+bob", "@bob")];
        commit(&mut conn, &Batch { messages: direct, ..Batch::default() }).unwrap();
        let reader = UserName::parse("bob").unwrap();
        let state =
            cursors::read_state(&mut conn, &reader, &channel("@alice+bob")).unwrap().unwrap();
        assert_eq!((state.unread, state.mentions), (1, 0), "direct messages mention nobody");
    }

    #[test]
    fn a_conversations_first_message_gives_both_users_a_cursor() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        let messages = vec![from("bob", "@alice+bob", "hi"), from("bob", "@alice+bob", "there")];
        commit(&mut conn, &Batch { messages, ..Batch::default() }).unwrap();
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
        let committed = commit(&mut conn, &keys).unwrap();
        let first = committed.messages[0].message().unwrap().clone();
        assert_eq!(first.id, 1);
        assert_eq!(committed.messages[1].message().unwrap().id, 2);
        assert_eq!(committed.messages[2], Appended::Duplicate(first));
        assert_eq!(committed.messages[3], Appended::Conflict);
        let next = commit(&mut conn, &batch(&[("r", "y")])).unwrap();
        assert_eq!(stored_ids(&next), [3], "no id was taken by the duplicate or the conflict");
    }

    /// Every statement of a commit is prepared once per connection and
    /// then reused: each is cached the first time, and a second batch of
    /// the same kinds prepares nothing (docs/performance.md, item 9).
    /// diesel caches most of its own queries by type (not `update`s, so
    /// those are `db::sql::Sql` statements too), and `Sql` statements by
    /// their text.
    #[test]
    fn a_commit_prepares_its_statements_once() {
        use diesel::connection::{Connection, InstrumentationEvent};
        use std::sync::{Arc, Mutex};

        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        let join = join("bob", "a");
        let read = crate::store::CursorMove { kind: CursorKind::Read, to: 1, ..join.clone() };
        let every_kind = |keyed: &str| Batch {
            rooms: vec![RoomName::parse("a").unwrap()],
            messages: vec![
                from("alice", "a", "hi @bob"),
                from("alice", "@alice+bob", "dm"),
                NewMessage {
                    idempotency_key: Some(IdempotencyKey::parse(keyed).unwrap()),
                    ..message("a", "once")
                },
            ],
            cursors: vec![join.clone(), read.clone()],
        };
        let events = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        let seen = events.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            let mut seen = seen.lock().unwrap();
            match event {
                InstrumentationEvent::StartQuery { query, .. } => seen.0.push(query.to_string()),
                InstrumentationEvent::CacheQuery { sql, .. } => seen.1.push(sql.to_owned()),
                _ => {}
            }
        });
        commit(&mut conn, &every_kind("k1")).unwrap();
        let (run, cached) = std::mem::take(&mut *events.lock().unwrap());
        for statement in run.iter().filter_map(|query| query.split_once(" -- binds")) {
            assert!(cached.contains(&statement.0.to_owned()), "not kept prepared: {}", statement.0);
        }
        commit(&mut conn, &every_kind("k2")).unwrap();
        commit(&mut conn, &every_kind("k2")).unwrap(); // a resend, looked up
        let (_, cached) = std::mem::take(&mut *events.lock().unwrap());
        // Only the resend's lookup is new.
        assert!(cached.len() == 1 && cached[0].starts_with("SELECT"), "{cached:?}");
    }

    /// A resend among many messages: the multi-row inserts give way to one
    /// by one, and the resend takes no id.
    #[test]
    fn a_resend_inside_a_large_batch_takes_no_id() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        let keyed = NewMessage {
            idempotency_key: Some(IdempotencyKey::parse("k").unwrap()),
            ..message("r", "once")
        };
        let first = Batch { messages: vec![keyed.clone()], ..Batch::default() };
        assert_eq!(stored_ids(&commit(&mut conn, &first).unwrap()), [1]);
        let texts: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        let mut messages: Vec<_> = texts.iter().map(|t| message("r", t)).collect();
        messages.insert(50, keyed);
        let committed = commit(&mut conn, &Batch { messages, ..Batch::default() }).unwrap();
        let ids: Vec<_> = committed.messages.iter().map(|m| m.message().unwrap().id).collect();
        let expected: Vec<MessageId> = (2..52).chain([1]).chain(52..102).collect();
        assert_eq!(ids, expected);
        assert!(matches!(committed.messages[50], Appended::Duplicate(_)));
        assert_eq!(last_id(&mut conn, "r").unwrap(), 101);
    }

    #[test]
    fn a_failed_batch_stores_nothing_and_uses_no_id() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        commit(&mut conn, &batch(&[("a", "1")])).unwrap();
        // A row already holding the id the next message would take (written
        // behind the counter's back) makes the whole batch fail.
        diesel::sql_query("INSERT INTO messages (room, id, sender, body, created_at) VALUES ('a', 2, 'x', 'y', 'z')")
            .execute(&mut *conn)
            .unwrap();
        assert!(commit(&mut conn, &batch(&[("b", "1"), ("a", "2")])).is_err());
        assert_eq!(last_id(&mut conn, "b").unwrap(), 0, "the whole batch rolled back");
        assert_eq!(last_id(&mut conn, "a").unwrap(), 1, "its ids too");
    }

    #[test]
    fn rooms_lists_rooms_with_their_latest_id_but_no_conversations() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        let mut with_empty_room = batch(&[("lobby", "1"), ("lobby", "2"), ("@a+b", "dm")]);
        with_empty_room.rooms.push(RoomName::parse("empty").unwrap());
        commit(&mut conn, &with_empty_room).unwrap();
        let listed: Vec<_> = rooms(&mut conn)
            .unwrap()
            .into_iter()
            .map(|r| (r.name.to_string(), r.last_id))
            .collect();
        assert_eq!(listed, [("empty".to_owned(), 0), ("lobby".to_owned(), 2)]);
    }

    #[test]
    fn a_users_conversations_come_with_their_latest_ids() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        let two = batch(&[("@a+b", "1"), ("@a+b", "2"), ("@b+c", "3"), ("lobby", "4")]);
        commit(&mut conn, &two).unwrap();
        let mut of = |name: &str| {
            let mut found = conversations(&mut conn, &UserName::parse(name).unwrap()).unwrap();
            found.sort_by(|x, y| x.0.as_str().cmp(y.0.as_str()));
            found
        };
        assert_eq!(of("b"), [(channel("@a+b"), 2), (channel("@b+c"), 1)]);
        assert_eq!(of("a"), [(channel("@a+b"), 2)]);
        assert_eq!(of("nobody"), []);
    }

    #[test]
    fn last_ids_cover_rooms_and_conversations_and_skip_unknown_ones() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        commit(&mut conn, &batch(&[("lobby", "1"), ("lobby", "2"), ("@a+b", "dm")])).unwrap();
        let asked = [channel("lobby"), channel("@a+b"), channel("nowhere")];
        let mut found = last_ids(&mut conn, &asked).unwrap();
        found.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        assert_eq!(found, [(channel("@a+b"), 1), (channel("lobby"), 2)]);
    }

    #[test]
    fn pages_go_backwards_forwards_and_between() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        let texts: Vec<String> = (1..=10).map(|i| i.to_string()).collect();
        let all: Vec<(&str, &str)> = texts.iter().map(|t| ("r", t.as_str())).collect();
        commit(&mut conn, &batch(&all)).unwrap();
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
