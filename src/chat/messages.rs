//! The messages the [`ChatServer`](super::ChatServer) handles.
//!
//! Sessions send them with `do_send` when they need no answer (the answer,
//! if any, comes back as a [`SessionEvent`]), and with `send` when they
//! need one (`Join`). HTTP routes use `send`.

use actix::Message;

use crate::domain::{Channel, MessageId, Ref, RoomName, SessionId, Text, UserName};
use crate::error::ChatError;
use crate::protocol::{ChatMessage, RoomSummary};
use crate::session::SessionHandle;

/// A new connection. Sent by a session as it starts.
///
/// The server answers with `SessionEvent::PendingMentions` (empty when
/// there are none), after which the session may send its other frames.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Connect {
    pub session: SessionId,
    pub name: UserName,
    pub handle: SessionHandle,
}

/// A connection ended. Sent by a session as it stops, whatever the reason.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    pub session: SessionId,
}

/// Puts a session in a room, creating the room on first use.
///
/// Sent by a session for `join`. Replies with the members and the last
/// message id delivered in the room: the session reads history up to that id,
/// and every later message reaches it live.
#[derive(Debug, Message)]
#[rtype(result = "Result<JoinReply, ChatError>")]
pub struct Join {
    pub session: SessionId,
    pub room: RoomName,
}

/// The answer to [`Join`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinReply {
    pub members: Vec<UserName>,
    pub last_id: MessageId,
}

/// Takes a session out of a room. Sent by a session for `leave`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Leave {
    pub session: SessionId,
    pub room: RoomName,
}

/// Posts a message from a session to a room or a direct conversation.
///
/// Sent by a session for `say` and `direct`. Once stored the message is
/// delivered; the sending session's copy carries `reference` and is the
/// acknowledgement. If it cannot be stored, the session gets `internal`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Say {
    pub session: SessionId,
    pub channel: Channel,
    pub text: Text,
    pub reference: Option<Ref>,
}

/// Posts a message to a room from outside a socket, creating the room if
/// needed. Sent by the HTTP API (and by embedding apps through
/// [`crate::Walkie::post`]). Replies once the message is stored.
#[derive(Debug, Message)]
#[rtype(result = "Result<ChatMessage, ChatError>")]
pub struct Post {
    pub room: RoomName,
    pub from: UserName,
    pub text: Text,
}

/// Tells the others in a room or conversation that a session's user types.
/// Sent by a session for `typing`; nothing is stored.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Typing {
    pub session: SessionId,
    pub channel: Channel,
}

/// Every room with its member count, sorted by name. For `rooms` and the
/// HTTP API.
#[derive(Debug, Message)]
#[rtype(result = "Vec<RoomSummary>")]
pub struct ListRooms;

/// The distinct names in a room, sorted (empty for an unknown room). For
/// `who`.
#[derive(Debug, Message)]
#[rtype(result = "Vec<UserName>")]
pub struct Who {
    pub room: RoomName,
}

/// Figures for `/metrics`: rooms, sessions in rooms, writes waiting.
#[derive(Debug, Message)]
#[rtype(result = "Stats")]
pub struct GetStats;

/// The answer to [`GetStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, actix::MessageResponse)]
pub struct Stats {
    pub rooms: usize,
    pub members: usize,
    pub waiting_writes: usize,
}

/// Whether a room exists. For the HTTP API's 404.
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub struct RoomExists {
    pub room: RoomName,
}

/// A stored message and the users it mentions.
#[derive(Debug, Clone)]
pub struct Mention {
    pub message: ChatMessage,
    pub users: Vec<UserName>,
}

/// Mentions worked out by the notification worker, to deliver now to the
/// users' sessions outside the room, or keep for users who are offline.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RouteMentions {
    pub mentions: Vec<Mention>,
}

/// A session confirms it acts on no more client frames (shutdown has
/// begun). Sent by a session in answer to `SessionEvent::Quiesce`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Quiesced {
    pub session: SessionId,
}

/// Graceful shutdown: sessions stop acting on client frames; everything
/// already received is stored and acknowledged; then every session is
/// closed with 1001. Replies when that is done.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown;
