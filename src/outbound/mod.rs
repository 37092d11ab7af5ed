//! What the `ChatServer` (and the notification worker) send a session,
//! and the queue they send it through: the types on both sides of that
//! actor boundary. A leaf module: `chat` and `session` both use it, it
//! uses neither, so the layers import one way (session -> chat -> here).

mod handle;

use std::sync::Arc;

use actix::Message;
use bytestring::ByteString;

use crate::domain::MessageId;

pub use handle::{OutboundQueue, Overflow, SessionHandle, SLOW_CHECK_INTERVAL};

/// What the server tells a session. Sent by the `ChatServer` and the
/// notification worker; handled by the `WsSession`.
///
/// One enum rather than one message per kind, so that everything a session
/// receives travels through one mailbox in the order it was sent: the
/// shutdown `Close` always comes after the `Wake` for the last
/// acknowledgement.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub enum SessionEvent {
    /// Frames for the client are waiting in the session's
    /// [`OutboundQueue`]; one `Wake` stands for all of them.
    Wake,
    /// The mentions kept while the user was offline (maybe none). Until it
    /// arrives the session sends nothing after `welcome`.
    PendingMentions(Vec<ByteString>),
    /// Graceful shutdown has begun: stop acting on client frames (answer
    /// them `internal`) and confirm with `Quiesced`.
    Quiesce,
    /// Close the connection.
    Close(CloseReason),
}

/// A frame for the client, serialized once for all its recipients, with
/// what the session needs to place it.
#[derive(Debug)]
pub struct Delivery {
    /// The encoded JSON frame, shared by every recipient (cloning is cheap).
    pub frame: ByteString,
    /// The room the frame belongs to (messages, presence, typing): a
    /// session still loading that room's history holds it back, and one
    /// that has left the room drops it.
    pub room: Option<Arc<str>>,
    /// A message's id: a session drops a message it already sent in history.
    pub id: Option<MessageId>,
    /// The sender's own copy: always delivered.
    pub acknowledgement: bool,
}

impl Delivery {
    /// A message in a room (`room` set) or a direct conversation.
    pub fn message(frame: ByteString, room: Option<Arc<str>>, id: MessageId) -> Self {
        Self { frame, room, id: Some(id), acknowledgement: false }
    }

    /// The sending session's copy of its message.
    pub fn acknowledgement(frame: ByteString, room: Option<Arc<str>>, id: MessageId) -> Self {
        Self { frame, room, id: Some(id), acknowledgement: true }
    }

    /// Presence or typing in a room.
    pub fn room_event(frame: ByteString, room: Arc<str>) -> Self {
        Self { frame, room: Some(room), id: None, acknowledgement: false }
    }

    /// Anything else: errors, mentions, typing in a conversation.
    pub fn other(frame: ByteString) -> Self {
        Self { frame, room: None, id: None, acknowledgement: false }
    }
}

/// Why the server closes a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Graceful shutdown: 1001.
    ShuttingDown,
    /// The client does not read what it is sent: 1008.
    TooSlow,
}
