//! The messages the [`ChatServer`](super::ChatServer) handles.
//!
//! `Connect`, `Join`, `Say` and `Leave` travel through the
//! [`Inbox`](super::Inbox), which keeps a session's commands in order; the
//! others are actix messages, and the handlers of those a session sends
//! take the inbox first, so they never overtake its earlier commands.
//! Sessions send them with `do_send` when they need no answer (the answer,
//! if any, comes back as a [`SessionEvent`]); HTTP routes use `send`.
//!
//! [`SessionEvent`]: crate::outbound::SessionEvent

use actix::Message;
use tokio::sync::oneshot;

pub use super::outbox::Posted;
use crate::domain::{Channel, IdempotencyKey, MessageId, Ref, RoomName, SessionId, Text, UserName};
use crate::error::ChatError;
use crate::outbound::SessionHandle;
use crate::protocol::RoomSummary;

/// A new connection. Sent by a session as it starts, through the inbox,
/// ahead of its commands.
///
/// The server answers with `SessionEvent::PendingMentions` (empty when
/// there are none), until which the session holds back what it sends
/// its client after `welcome`.
#[derive(Debug)]
pub struct Connect {
    /// The new connection's id, as sent in its `welcome`.
    pub session: SessionId,
    /// The user it speaks for; other sessions may share the name.
    pub name: UserName,
    /// Where the server sends the session's frames, counting its queued bytes.
    pub handle: SessionHandle,
}

/// A connection ended. Sent by a session as it stops, whatever the reason.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    /// The connection that ended; its rooms get `presence` `leave` where due.
    pub session: SessionId,
}

/// Puts a session in a room, creating the room on first use.
///
/// Sent by a session for `join`, through the inbox. Answered with the
/// members and the last message id delivered in the room: the session
/// reads history up to that id, and every later message reaches it live.
#[derive(Debug)]
pub struct Join {
    /// The session joining; joining a room it is already in changes nothing.
    pub session: SessionId,
    /// The room to join, created (and stored) on first use.
    pub room: RoomName,
    /// Where the answer goes (nobody listens if the session has gone).
    pub reply: oneshot::Sender<Result<JoinReply, ChatError>>,
}

/// The answer to [`Join`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinReply {
    /// The distinct names in the room, sorted, the joiner's included: `joined.members`.
    pub members: Vec<UserName>,
    /// The last id delivered in the room (0 if none): history ends here, live begins after.
    pub last_id: MessageId,
}

/// Takes a session out of a room. Sent by a session for `leave`, through
/// the inbox.
#[derive(Debug)]
pub struct Leave {
    /// The session leaving; the last of its name to go sends `presence` `leave`.
    pub session: SessionId,
    /// The room to leave; the session checks membership and answers `left` itself.
    pub room: RoomName,
}

/// Posts a message from a session to a room or a direct conversation.
///
/// Sent by a session for `say` and `direct`, through the inbox. Once
/// stored the message is delivered; the sending session's copy carries
/// `reference` and is the acknowledgement. If it cannot be stored, the
/// session gets `internal`.
#[derive(Debug)]
pub struct Say {
    /// The sending session; its user is the message's `from`.
    pub session: SessionId,
    /// A joined room for `say`, or the conversation with `to` for `direct`.
    pub channel: Channel,
    /// The message text, already checked against the length limit.
    pub text: Text,
    /// The frame's `ref`, put on the sending session's copy only.
    pub reference: Option<Ref>,
    /// The client's key: a resend gets the stored message back, once.
    pub idempotency_key: Option<IdempotencyKey>,
}

/// Posts a message to a room from outside a socket, creating the room if
/// needed. Sent by the HTTP API (and by embedding apps through
/// [`crate::Walkie::post`]). Replies once the message is stored.
#[derive(Debug, Message)]
#[rtype(result = "Result<Posted, ChatError>")]
pub struct Post {
    /// The room to post to; created if it does not exist yet.
    pub room: RoomName,
    /// The sender as given by the caller (the POST body's `from`); needs no session.
    pub from: UserName,
    /// The message text, already checked against the length limit.
    pub text: Text,
    /// The body's `idempotency_key`: a resend gets the stored message (200).
    pub idempotency_key: Option<IdempotencyKey>,
}

/// Moves the read cursor of a session's user. Sent by a session for
/// `read`; answered with `read` frames once stored.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Read {
    /// The session that sent `read`: its user's cursor moves.
    pub session: SessionId,
    /// A room, or one of the user's own conversations (checked by the session).
    pub channel: Channel,
    /// Read up to here.
    pub id: MessageId,
    /// The frame's `ref`, on the requesting session's answer.
    pub reference: Option<Ref>,
}

/// Tells the others in a room or conversation that a session's user types.
/// Sent by a session for `typing`; nothing is stored.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Typing {
    /// The typing session; its user's own sessions are not told.
    pub session: SessionId,
    /// A joined room, or one of the user's own direct conversations.
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
    /// Any room name; the asking session need not have joined it.
    pub room: RoomName,
}

/// Figures for `/metrics`: rooms, sessions in rooms, writes waiting.
#[derive(Debug, Message)]
#[rtype(result = "Stats")]
pub struct GetStats;

/// The answer to [`GetStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, actix::MessageResponse)]
pub struct Stats {
    /// Rooms that exist, empty ones included.
    pub rooms: usize,
    /// Sessions in rooms, summed over rooms (a session in 3 rooms counts 3 times).
    pub members: usize,
    /// Messages and room creations queued for the writer, not counting the batch in flight.
    pub waiting_writes: usize,
}

/// Whether a room exists. For the HTTP API's 404.
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub struct RoomExists {
    /// The room asked about; a room exists once joined or posted to, even if empty.
    pub room: RoomName,
}

/// A session confirms it acts on no more client frames (shutdown has
/// begun). Sent by a session in answer to `SessionEvent::Quiesce`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Quiesced {
    /// The session that has stopped acting on frames; shutdown waits for all of them.
    pub session: SessionId,
}

/// Graceful shutdown: sessions stop acting on client frames; everything
/// already received is stored and acknowledged; then every session is
/// closed with 1001. Replies when that is done.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown;
