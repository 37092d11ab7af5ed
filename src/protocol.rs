//! Wire protocol v1: the frames a client sends and the frames it receives.
//!
//! Client frames are parsed once, at the edge, into [`Frame`] (a typed
//! [`ClientCommand`] plus its `ref`), checking in the order the protocol
//! fixes: `bad_json`, then a string `type` (`bad_request`), then a known type
//! (`unknown_type`), then the fields (`bad_request`). Server frames are serde
//! types serialized by [`encode`]; nothing builds JSON by hand.

use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use strum::VariantNames;

use crate::domain::{
    Channel, IdempotencyKey, Limit, MessageId, Ref, RoomName, SessionId, Text, UserName,
};
use crate::error::{ChatError, ErrorCode};

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode_ok(text: &str) -> Frame {
        decode(text, 4000).unwrap()
    }

    fn code_of(text: &str) -> (ErrorCode, Option<Ref>) {
        let rejected = decode(text, 4000).unwrap_err();
        (rejected.error.code(), rejected.reference)
    }

    fn reference(value: &str) -> Option<Ref> {
        Some(Ref::parse(value).unwrap())
    }

    #[test]
    fn every_client_type_decodes() {
        let frames = [
            json!({"type":"join","room":"lobby","since":3,"limit":10}),
            json!({"type":"leave","room":"lobby"}),
            json!({"type":"say","room":"lobby","text":"hi"}),
            json!({"type":"direct","to":"bob","text":"hi"}),
            json!({"type":"history","room":"@alice+bob","before":9}),
            json!({"type":"rooms"}),
            json!({"type":"who","room":"lobby"}),
            json!({"type":"typing","room":"lobby"}),
            json!({"type":"read","room":"lobby","id":3}),
            json!({"type":"inbox"}),
        ];
        let types: Vec<&str> = frames.iter().filter_map(|frame| frame["type"].as_str()).collect();
        assert_eq!(types, ClientCommand::VARIANTS, "one frame per type, in declaration order");
        for frame in frames {
            decode_ok(&frame.to_string());
        }
        let other_case = decode(r#"{"type":"Join","room":"lobby"}"#, 100).unwrap_err();
        assert_eq!(other_case.error.code(), ErrorCode::UnknownType);
    }

    #[test]
    fn join_keeps_its_fields() {
        let frame = decode_ok(r#"{"type":"join","room":"lobby","since":3,"ref":"r1"}"#);
        assert_eq!(frame.reference, reference("r1"));
        let ClientCommand::Join { room, since, limit } = frame.command else {
            panic!("not a join")
        };
        assert_eq!((room.as_str(), since, limit), ("lobby", Some(3), None));
    }

    #[test]
    fn validation_follows_the_protocol_order() {
        assert_eq!(code_of("not json"), (ErrorCode::BadJson, None));
        assert_eq!(code_of("[1,2]"), (ErrorCode::BadJson, None));
        assert_eq!(code_of(r#""say""#), (ErrorCode::BadJson, None));
        assert_eq!(code_of(r#"{"room":"x","ref":"a"}"#), (ErrorCode::BadRequest, reference("a")));
        assert_eq!(code_of(r#"{"type":7}"#), (ErrorCode::BadRequest, None));
        assert_eq!(
            code_of(r#"{"type":"dance","ref":"b"}"#),
            (ErrorCode::UnknownType, reference("b"))
        );
        assert_eq!(
            code_of(r#"{"type":"say","room":"x","ref":"c"}"#),
            (ErrorCode::BadRequest, reference("c"))
        );
        assert_eq!(code_of(r#"{"type":"join","room":5}"#), (ErrorCode::BadRequest, None));
    }

    #[test]
    fn an_invalid_ref_is_a_bad_request_and_not_echoed() {
        assert_eq!(code_of(r#"{"type":"rooms","ref":5}"#), (ErrorCode::BadRequest, None));
        let long = "r".repeat(65);
        let frame = json!({"type":"rooms","ref":long}).to_string();
        assert_eq!(code_of(&frame), (ErrorCode::BadRequest, None));
        let longest = json!({"type":"rooms","ref":"r".repeat(64)}).to_string();
        assert!(decode_ok(&longest).reference.is_some());
    }

    #[test]
    fn fields_out_of_range_are_bad_requests() {
        let cases = [
            json!({"type":"join","room":"lobby","limit":0}),
            json!({"type":"join","room":"lobby","limit":201}),
            json!({"type":"join","room":"lobby","since":-1}),
            json!({"type":"join","room":"lobby","since":1.5}),
            json!({"type":"join","room":"@a+b"}),
            json!({"type":"join","room":"no spaces"}),
            json!({"type":"say","room":"lobby","text":"   "}),
            json!({"type":"say","room":"lobby","text":"x".repeat(4001)}),
            json!({"type":"direct","to":"bad name","text":"hi"}),
            json!({"type":"history","room":"@b+a"}),
            json!({"type":"join","room":"lobby","since":1e30}),
        ];
        for case in cases {
            assert_eq!(code_of(&case.to_string()).0, ErrorCode::BadRequest, "{case}");
        }
    }

    #[test]
    fn text_limit_is_the_configured_one() {
        let frame = json!({"type":"say","room":"lobby","text":"abcdef"}).to_string();
        assert!(decode(&frame, 6).is_ok());
        assert_eq!(decode(&frame, 5).unwrap_err().error.code(), ErrorCode::BadRequest);
    }

    #[test]
    fn server_frames_serialize_as_the_contract_shows() {
        let alice = UserName::parse("alice").unwrap();
        let message = ChatMessage {
            id: 7,
            room: Channel::parse("lobby").unwrap(),
            from: alice.clone(),
            text: "hi".into(),
            ts: "2026-11-23T20:01:02.345Z".into(),
        };
        let r = Ref::parse("r1").unwrap();
        assert_eq!(
            encode(&MessageFrame { frame: &message, reference: Some(&r) }).to_string(),
            r#"{"type":"message","id":7,"room":"lobby","from":"alice","text":"hi","ts":"2026-11-23T20:01:02.345Z","ref":"r1"}"#
        );
        assert_eq!(
            encode(&MessageFrame { frame: &message, reference: None }).to_string(),
            r#"{"type":"message","id":7,"room":"lobby","from":"alice","text":"hi","ts":"2026-11-23T20:01:02.345Z"}"#
        );
        let room = RoomName::parse("lobby").unwrap();
        assert_eq!(
            encode(&ServerEvent::Presence {
                room: &room,
                name: &alice,
                event: PresenceEvent::Join
            })
            .to_string(),
            r#"{"type":"presence","room":"lobby","name":"alice","event":"join"}"#
        );
        assert_eq!(
            encode(&ServerEvent::error(&ChatError::NotInRoom("lobby".into()), Some(&r)))
                .to_string(),
            r#"{"type":"error","code":"not_in_room","message":"you have not joined room lobby","ref":"r1"}"#
        );
        let summary = [RoomSummary { name: room.clone(), members: 2 }];
        assert_eq!(
            encode(&ServerEvent::Rooms { rooms: &summary }).to_string(),
            r#"{"type":"rooms","rooms":[{"name":"lobby","members":2}]}"#
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            ".{0,80}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::hash_map(".{0,12}", inner, 0..8)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    /// A frame of a known type with fields drawn from the names the
    /// protocol uses, so that some are valid and most are not.
    fn frame_of_known_type() -> impl Strategy<Value = Value> {
        let field = prop::sample::select(vec![
            "room",
            "text",
            "to",
            "since",
            "before",
            "limit",
            "ref",
            "idempotency_key",
        ]);
        (
            prop::sample::select(ClientCommand::VARIANTS.to_vec()),
            prop::collection::hash_map(field, json(), 0..6),
        )
            .prop_map(|(kind, fields)| {
                let mut object: Map<String, Value> =
                    fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                object.insert("type".into(), Value::from(kind));
                Value::Object(object)
            })
    }

    proptest! {
        #[test]
        fn any_text_is_a_command_or_a_client_error(text in "\\PC{0,200}") {
            if let Err(rejected) = decode(&text, 4000) {
                let code = rejected.error.code();
                prop_assert!(matches!(code, ErrorCode::BadJson | ErrorCode::BadRequest | ErrorCode::UnknownType));
            }
        }

        #[test]
        fn any_json_that_is_not_an_object_is_bad_json(value in json()) {
            let result = decode(&value.to_string(), 4000);
            if !value.is_object() {
                prop_assert_eq!(result.unwrap_err().error.code(), ErrorCode::BadJson);
            }
        }

        #[test]
        fn known_types_decode_or_get_bad_request(frame in frame_of_known_type()) {
            match decode(&frame.to_string(), 4000) {
                Ok(decoded) => {
                    if let Some(text) = decoded.command.text() {
                        prop_assert!(!text.as_str().trim().is_empty());
                    }
                }
                Err(rejected) => prop_assert_eq!(rejected.error.code(), ErrorCode::BadRequest),
            }
        }

        #[test]
        fn the_ref_is_echoed_exactly_when_it_is_valid(reference in json()) {
            let frame = serde_json::json!({"type": "nope", "ref": reference.clone()}).to_string();
            let rejected = decode(&frame, 4000).unwrap_err();
            let valid = matches!(&reference, Value::String(s) if s.chars().count() <= Ref::MAX_CHARS);
            prop_assert_eq!(rejected.reference.is_some(), valid);
        }

        #[test]
        fn names_are_valid_exactly_when_the_protocol_says(name in "\\PC{0,40}") {
            let valid = (1..=32).contains(&name.chars().count())
                && name.chars().all(crate::domain::is_name_char);
            prop_assert_eq!(UserName::parse(name.as_str()).is_ok(), valid);
        }
    }
}
