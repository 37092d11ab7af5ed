//! What clients receive: [`ChatMessage`]s and [`ServerEvent`]s, serialized
//! once by [`encode`].

use bytestring::ByteString;
use serde::{Deserialize, Serialize};

use crate::domain::{Channel, MessageId, Ref, RoomName, SessionId, UserName};
use crate::error::{ChatError, ErrorCode};

/// A stored message, as clients see it: in `message` frames, in history and
/// in the HTTP API. Serialized with `"type":"message"`, so a history entry
/// can go through the same code as a live message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "message")]
pub struct ChatMessage {
    /// `id`: position in its room or conversation, from 1 with no holes.
    pub id: MessageId,
    /// `room`: the room, or the direct conversation (`@alice+bob`).
    pub room: Channel,
    /// `from`: the sender's name (the `from` of the POST for HTTP posts).
    pub from: UserName,
    /// `text`: exactly as sent and stored.
    pub text: String,
    /// RFC 3339 UTC with milliseconds.
    pub ts: String,
}

/// A server frame with the `ref` of the client frame it answers, if any:
/// the one place the wire's `ref` is written.
#[derive(Debug, Serialize)]
pub struct Answer<'a, T> {
    /// The frame, flattened.
    #[serde(flatten)]
    pub frame: T,
    /// `ref`: the answered frame's, echoed; absent on frames nobody asked
    /// for (a message's copies to others, presence...).
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<&'a Ref>,
}

/// A `message` frame: the message, plus the `ref` on the sender's copy,
/// which acknowledges the `say`.
pub type MessageFrame<'a> = Answer<'a, &'a ChatMessage>;

/// One entry of a `rooms` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomSummary {
    /// `name`: the room's name; `rooms` is sorted by it.
    pub name: RoomName,
    /// `members`: how many distinct names have a session in the room (0 if empty).
    pub members: usize,
}

/// One entry of an `inbox` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboxEntry {
    /// `room`: a room or a direct conversation.
    pub room: Channel,
    /// `last_id`: the latest message's id, 0 without messages.
    pub last_id: MessageId,
    /// `last_read`: the user's cursor.
    pub last_read: MessageId,
    /// `unread`: messages after `last_read` not sent by the user.
    pub unread: u64,
    /// `mentions`: unread messages that mention the user.
    pub mentions: u64,
}

/// `presence.event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceEvent {
    /// `"join"`: the name's first session entered the room.
    Join,
    /// `"leave"`: the name's last session left the room or disconnected.
    Leave,
}

/// Every frame the server sends but `message` ([`MessageFrame`]). Those
/// that answer a client frame go out as an [`Answer`], with its `ref`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent<'a> {
    /// `welcome`: always the first frame of a connection.
    Welcome {
        /// `session`: this connection's id, `s-<hex>`.
        session: SessionId,
        /// `name`: the name the session got (asked for, from the token, or a guest name).
        name: &'a UserName,
        /// `server`: the server's name and version, `walkie/<version>`.
        server: &'a str,
    },
    /// `joined`: the reply to `join`.
    Joined {
        /// `room`: the room joined.
        room: &'a RoomName,
        /// `members`: the distinct names in the room, sorted, this one included.
        members: &'a [UserName],
        /// `history`: `message` objects, oldest first (after `since` when given).
        history: &'a [ChatMessage],
        /// `more`: messages exist beyond `history` (newer with `since`, else older).
        more: bool,
        /// `last_read`: the user's read cursor in the room.
        last_read: MessageId,
        /// `unread`: messages after `last_read` not sent by the user.
        unread: u64,
    },
    /// `read`: the user's cursor in `room`, to every session of the user
    /// when it moves, and to the session that sent `read` in any case.
    Read {
        /// `room`: the room or conversation.
        room: &'a str,
        /// `id`: the cursor's position.
        id: MessageId,
    },
    /// `inbox`: the reply to `inbox`.
    Inbox {
        /// `conversations`: most recent message first.
        conversations: &'a [InboxEntry],
    },
    /// `left`: the reply to `leave`.
    Left {
        /// `room`: the room left.
        room: &'a RoomName,
    },
    /// `presence`: to the other members, when a name enters or leaves a room.
    Presence {
        /// `room`: where it happened.
        room: &'a RoomName,
        /// `name`: who joined or left.
        name: &'a UserName,
        /// `event`: `"join"` or `"leave"`.
        event: PresenceEvent,
    },
    /// `typing`: to the other users of a room or conversation, never the typer's tabs.
    Typing {
        /// `room`: a room's or a direct conversation's name.
        room: &'a str,
        /// `from`: who is typing.
        from: &'a UserName,
    },
    /// `history`: the reply to `history`.
    History {
        /// `room`: a room's or a direct conversation's name, as asked.
        room: &'a str,
        /// `messages`: `message` objects, oldest first.
        messages: &'a [ChatMessage],
        /// `more`: messages exist beyond this page (newer with `since`, else older).
        more: bool,
    },
    /// `rooms`: the reply to `rooms`.
    Rooms {
        /// `rooms`: every room that exists, empty ones included, sorted by name.
        rooms: &'a [RoomSummary],
    },
    /// `members`: the reply to `who`.
    Members {
        /// `room`: the room asked about.
        room: &'a RoomName,
        /// `members`: the distinct names with a session in the room, sorted.
        members: &'a [UserName],
    },
    /// `mention`: a stored room message names this user, who is not in the room.
    Mention {
        /// `room`: the room the message was posted in (never a conversation).
        room: &'a str,
        /// `id`: the message's id in that room, to fetch it with `join`/`history`.
        id: MessageId,
        /// `from`: the message's sender.
        from: &'a UserName,
        /// `text`: the message's whole text.
        text: &'a str,
    },
    /// `error`: a frame was refused; the connection stays open.
    Error {
        /// `code`: what kind of error, one of the protocol's codes.
        code: ErrorCode,
        /// `message`: a human-readable explanation, never an internal error's text.
        message: String,
    },
}

impl<'a> ServerEvent<'a> {
    /// This frame as the answer to the client frame whose `ref` is `reference`.
    pub fn answering(self, reference: Option<&'a Ref>) -> Answer<'a, Self> {
        Answer { frame: self, reference }
    }

    /// The `error` frame for `error`, echoing `reference`.
    pub fn error(error: &ChatError, reference: Option<&'a Ref>) -> Answer<'a, Self> {
        ServerEvent::Error { code: error.code(), message: error.to_string() }.answering(reference)
    }
}

/// Serializes a server frame once, into a buffer that every recipient can
/// share (cloning a `ByteString` only bumps a reference count).
pub fn encode<T: Serialize>(frame: &T) -> ByteString {
    // ok: our frames hold only strings, integers, booleans and lists of them,
    // which serde_json always serializes.
    let json = serde_json::to_string(frame).expect("server frames always serialize");
    ByteString::from(json)
}
