//! The narrow interface to stored messages: [`MessageStore`].
//!
//! Sessions, the `ChatServer` and the HTTP routes store and read messages
//! only through this trait, and the notification worker keeps mentions
//! through [`PendingMentions`]; nothing outside `db` holds a database
//! handle or names a database crate. [`crate::db::DieselStore`] (SQLite or
//! Postgres, opened by `db::start`) is the one walkie ships; a store of
//! another kind would implement both traits.
//!
//! Every method returns a future: callers inside actors run it with
//! `ctx.spawn`, so no actor ever blocks on the disk.

use std::future::Future;
use std::pin::Pin;

use crate::domain::{Channel, IdempotencyKey, MessageId, RoomName, Text, UserName};
use crate::protocol::ChatMessage;

/// A message to store; the store gives it its id and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The room or the direct conversation.
    pub channel: Channel,
    /// The sender: a session's user, or the `from` of an HTTP POST.
    pub from: UserName,
    /// The text as validated, stored verbatim.
    pub text: Text,
    /// The client's key for exactly-once sending: a second message of the
    /// same sender with the same key is not stored again.
    pub idempotency_key: Option<IdempotencyKey>,
}

/// A change to a user's read cursor in a room or conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorMove {
    /// Whose cursor.
    pub reader: UserName,
    /// The room or the direct conversation.
    pub channel: Channel,
    /// Where to put it (clamped to the channel's latest id).
    pub to: MessageId,
    /// What kind of change this is.
    pub kind: CursorKind,
}

/// The two ways a cursor changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorKind {
    /// A join: the cursor starts at `to` (the room's latest id) unless the
    /// user has one already. This is also how "has ever joined" is kept.
    Start,
    /// A `read`: the cursor moves forward to `to`, never back. A room the
    /// user never joined has no cursor to move.
    Read,
}

/// What became of one message of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored now, with a new id.
    Stored(ChatMessage),
    /// Its sender stored a message with this key before: that message.
    Duplicate(ChatMessage),
    /// Its sender used this key before for another room or text.
    Conflict,
}

impl Appended {
    /// The message stored now or before; `None` for a conflict.
    pub fn message(&self) -> Option<&ChatMessage> {
        match self {
            Appended::Stored(message) | Appended::Duplicate(message) => Some(message),
            Appended::Conflict => None,
        }
    }
}

/// What became of one cursor move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorOutcome {
    /// The cursor moved to this id.
    Moved(MessageId),
    /// The cursor stays at this id.
    Unchanged(MessageId),
    /// A `read` of a room the user never joined.
    NotJoined,
}

/// What one commit did: an outcome per message and per cursor move, in
/// the batch's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// One per message of the batch.
    pub messages: Vec<Appended>,
    /// One per cursor move of the batch.
    pub cursors: Vec<CursorOutcome>,
}

/// A user's read state in one room or conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadState {
    /// The room's or the direct conversation's name.
    pub room: Channel,
    /// The latest message's id (0 without messages).
    pub last_id: MessageId,
    /// When the latest message was stored (RFC 3339), for ordering.
    pub last_ts: Option<String>,
    /// The user's cursor.
    pub last_read: MessageId,
    /// Messages after the cursor not sent by the user.
    pub unread: u64,
    /// Those of them that mention the user.
    pub mentions: u64,
}

/// What one commit writes: rooms to create (if they do not exist yet) and
/// messages to append, all in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Rooms made by a first `join` or POST, so `rooms` lists them after a restart.
    pub rooms: Vec<RoomName>,
    /// Messages in the order the server will deliver them; ids follow that order.
    pub messages: Vec<NewMessage>,
    /// Cursor moves, applied after the messages.
    pub cursors: Vec<CursorMove>,
}

/// Which messages of a channel to read.
///
/// `since` alone: the first `limit` messages after it, oldest first.
/// `before` alone or nothing: the last `limit` messages before it (or the
/// latest), oldest first. Both: the first `limit` between them. `upto`
/// bounds the page from above: a session reads history only up to the last
/// message it was sent live, so history and live frames meet exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    /// The room or the direct conversation.
    pub channel: Channel,
    /// Only messages with a larger id (exclusive), oldest first.
    pub since: Option<MessageId>,
    /// Only messages with a smaller id (exclusive).
    pub before: Option<MessageId>,
    /// Only messages up to this id (inclusive): the last one the session got live.
    pub upto: Option<MessageId>,
    /// Most messages in the page, from a validated `limit` (1 to 200).
    pub limit: usize,
}

/// A page of history; `more` says whether messages exist beyond it in the
/// direction asked for (newer with `since`, older otherwise).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// The messages, oldest first, at most the query's `limit`.
    pub messages: Vec<ChatMessage>,
    /// The wire's `more`: messages exist beyond this page in the direction asked for.
    pub more: bool,
}

/// A stored room and the id of its latest message (0 when it has none,
/// which is also how many messages it holds: ids have no holes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    /// The room's name (direct conversations are never listed).
    pub name: RoomName,
    /// The id of the room's latest message, so new ids continue after it.
    pub last_id: MessageId,
}

/// Why the store could not do what was asked. Logged where it is handled;
/// clients only ever see `internal`.
///
/// Backend-neutral: each backend turns its own errors into these (for
/// diesel's, in `db`), so nothing above the store names a database crate.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed a query (a full disk, a locked file,
    /// a lost connection to Postgres...).
    #[error("database query failed: {0}")]
    Query(BoxError),
    /// No connection to the database came free in time.
    #[error("no database connection available: {0}")]
    Unavailable(BoxError),
    /// The database actor is gone, or did not answer in time.
    #[error("the database worker stopped: {0}")]
    Worker(#[from] actix::MailboxError),
    /// The database actor panicked on this request (nothing was committed) and was restarted.
    #[error("the database worker panicked; it was restarted")]
    Panicked,
}

/// A backend's own error, kept as the source of a [`StoreError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A result computed off the caller's thread.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>>>>;

/// Stores and reads messages. See the module doc.
pub trait MessageStore: Send + Sync {
    /// Writes `batch` in one transaction and returns what became of each
    /// message and cursor move, in the batch's order. Either all of it is
    /// written or none (and then no id was used).
    fn commit(&self, batch: Batch) -> StoreFuture<Committed>;

    /// Reads one page of a channel's history.
    fn page(&self, query: PageQuery) -> StoreFuture<Page>;

    /// Every room (never a direct conversation) with its latest id.
    fn rooms(&self) -> StoreFuture<Vec<RoomRecord>>;

    /// The latest id of each of `channels` the store has (0 for a room
    /// without messages; a channel never written to is left out). Nodes
    /// sharing a database compare these with what they delivered, to catch
    /// up on what they missed.
    fn last_ids(&self, channels: Vec<Channel>) -> StoreFuture<Vec<(Channel, MessageId)>>;

    /// Every direct conversation of `user` with its latest id, so that a
    /// node follows them from where they are when the user connects.
    fn conversations(&self, user: UserName) -> StoreFuture<Vec<(Channel, MessageId)>>;

    /// Succeeds when the database answers a query.
    fn check(&self) -> StoreFuture<()>;

    /// The read state of `reader` in one channel; `None` if they have no
    /// cursor there (never joined the room, no message in the conversation).
    fn read_state(&self, reader: UserName, channel: Channel) -> StoreFuture<Option<ReadState>>;

    /// The read state of `reader` in every channel they have a cursor in.
    fn inbox(&self, reader: UserName) -> StoreFuture<Vec<ReadState>>;
}

/// Mentions kept for users who were offline, until their next connection.
///
/// Blocking, unlike [`MessageStore`]: the notification worker calls it from
/// its own `SyncArbiter` thread, one request at a time, which is what keeps
/// a mention kept before a user connects in what that connection takes.
pub trait PendingMentions: Send + Sync {
    /// Keeps `message`'s mention of each of `recipients`, all or none.
    fn keep(&self, recipients: &[UserName], message: &ChatMessage) -> Result<(), StoreError>;

    /// Removes and returns the mentions kept for `recipient`, oldest first.
    fn take(&self, recipient: &UserName) -> Result<Vec<ChatMessage>, StoreError>;
}
