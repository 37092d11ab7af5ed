//! Wire protocol v1: the frames a client sends and the frames it receives.
//!
//! Client frames are parsed once, at the edge, into [`Frame`] (a typed
//! [`ClientCommand`] plus its `ref`), checking in the order the protocol
//! fixes: `bad_json`, then a string `type` (`bad_request`), then a known type
//! (`unknown_type`), then the fields (`bad_request`). Server frames are serde
//! types serialized by [`encode`]; nothing builds JSON by hand.
//!
//! `client.rs` holds what clients send, `server.rs` what they receive.

mod client;
mod server;

pub use client::{decode, ClientCommand, Frame, Rejected};
pub use server::{
    encode, Answer, ChatMessage, InboxEntry, MessageFrame, PresenceEvent, RoomSummary, ServerEvent,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Channel, Ref, RoomName, UserName};
    use crate::error::{ChatError, ErrorCode};
    use serde_json::json;
    use strum::VariantNames;

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
    use crate::domain::{Ref, UserName};
    use crate::error::ErrorCode;
    use proptest::prelude::*;
    use serde_json::{Map, Value};
    use strum::VariantNames;

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
