//! What clients send: [`ClientCommand`]s, decoded once by [`decode`].

use serde::Deserialize;
use serde_json::{Map, Value};
use strum::VariantNames;

use crate::domain::{Channel, IdempotencyKey, Limit, MessageId, Ref, RoomName, Text, UserName};
use crate::error::ChatError;

/// What a client asks for, validated. Field names are the wire's.
///
/// `VariantNames` lists the wire's `type`s (`ClientCommand::VARIANTS`),
/// spelled by the same rule as serde's, so [`decode`] tells an unknown
/// `type` from a bad field without a second list to keep in step.
#[derive(Debug, Clone, PartialEq, Deserialize, strum::VariantNames)]
#[serde(tag = "type", rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ClientCommand {
    /// `join`: enter a room (created on first join); answered by `joined`.
    Join {
        /// `room`: a room name; a conversation's name is a `bad_request`.
        room: RoomName,
        /// `since`: the highest id the client has seen; `joined.history` resumes after it.
        since: Option<MessageId>,
        /// `limit`: at most this many messages in `joined.history` (default 50).
        limit: Option<Limit>,
    },
    /// `leave`: leave a joined room; answered by `left`.
    Leave {
        /// `room`: a room this session has joined, else `not_in_room`.
        room: RoomName,
    },
    /// `say`: post to a joined room; the sender's copy of `message` is the ack.
    Say {
        /// `room`: a room this session has joined, else `not_in_room`.
        room: RoomName,
        /// `text`: the message, checked against the server's length limit.
        text: Text,
        /// `idempotency_key`: resending with it never stores the message twice.
        idempotency_key: Option<IdempotencyKey>,
    },
    /// `direct`: post to the conversation with `to`, reaching all sessions of both.
    Direct {
        /// `to`: the other user; may be offline, or the sender themself.
        to: UserName,
        /// `text`: the message, checked against the server's length limit.
        text: Text,
        /// `idempotency_key`: resending with it never stores the message twice.
        idempotency_key: Option<IdempotencyKey>,
    },
    /// `history`: a page of older (or, with `since`, newer) messages; answered by `history`.
    History {
        /// `room`: a joined room, or one of the user's own direct conversations.
        room: Channel,
        /// `before`: return the messages just before this id (default: the latest).
        before: Option<MessageId>,
        /// An addition to the contract: the messages after this id, oldest
        /// first, so a client told `more` by a `join` with `since` can page
        /// forward.
        since: Option<MessageId>,
        /// `limit`: at most this many messages (default 50).
        limit: Option<Limit>,
    },
    /// `rooms`: list every room that exists; answered by `rooms`.
    Rooms {},
    /// `who`: list a room's members, without joining it; answered by `members`.
    Who {
        /// `room`: any room name; an unknown room has no members.
        room: RoomName,
    },
    /// `typing`: tell the other users of the room or conversation; not stored or answered.
    Typing {
        /// `room`: a joined room, or one of the user's own direct conversations.
        room: Channel,
    },
    /// `read`: the user has read `room` up to `id`; answered by `read`.
    Read {
        /// `room`: a room the user ever joined, or their own conversation.
        room: Channel,
        /// `id`: read up to here (clamped to the latest id; never moves back).
        id: MessageId,
    },
    /// `inbox`: every room and conversation of the user with its counts.
    Inbox {},
}

/// One decoded client frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The frame's `ref`, echoed on its reply and on every error it causes.
    pub reference: Option<Ref>,
    /// What the frame asks for, all fields validated.
    pub command: ClientCommand,
}

/// A frame that could not be decoded: the error, and the `ref` to echo when
/// the frame carried a valid one.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// Why: sent back as an `error` frame.
    pub error: ChatError,
    /// The frame's `ref`, if it had a valid one; `None` when the `ref` itself was bad.
    pub reference: Option<Ref>,
}

/// Decodes one text frame. `max_text_chars` is the server's text limit.
pub fn decode(text: &str, max_text_chars: usize) -> Result<Frame, Rejected> {
    let reject = |error, reference| Rejected { error, reference };
    let mut object: Map<String, Value> = serde_json::from_str(text).map_err(|error| {
        reject(ChatError::BadJson(format!("a frame must be one JSON object: {error}")), None)
    })?;
    let reference = match object.remove("ref") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ref::parse(value).map(Some),
        Some(_) => Err(format!("ref must be a string of at most {} characters", Ref::MAX_CHARS)),
    };
    let valid_reference = reference.as_ref().ok().cloned().flatten();
    match object.get("type") {
        Some(Value::String(kind)) if ClientCommand::VARIANTS.contains(&kind.as_str()) => {}
        Some(Value::String(kind)) => {
            let error = ChatError::UnknownType(format!("unknown frame type '{kind}'"));
            return Err(reject(error, valid_reference));
        }
        _ => {
            let error = ChatError::BadRequest("a frame needs a string field 'type'".into());
            return Err(reject(error, valid_reference));
        }
    }
    let reference = reference.map_err(|message| reject(ChatError::BadRequest(message), None))?;
    let bad_request = |message: String| reject(ChatError::BadRequest(message), reference.clone());
    let command: ClientCommand =
        serde_json::from_value(Value::Object(object)).map_err(|e| bad_request(e.to_string()))?;
    if let Some(text) = command.text() {
        text.check_length(max_text_chars).map_err(bad_request)?;
    }
    Ok(Frame { reference, command })
}

impl ClientCommand {
    /// The message text this command carries, if it posts one.
    pub fn text(&self) -> Option<&Text> {
        match self {
            ClientCommand::Say { text, .. } | ClientCommand::Direct { text, .. } => Some(text),
            _ => None,
        }
    }
}
