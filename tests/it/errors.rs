//! Bad input: every malformed frame gets the protocol's error, with its
//! `ref` when it had one, and the connection keeps working.

use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

use crate::support::TestApp;

#[tokio::test]
async fn each_kind_of_bad_frame_gets_its_code_and_the_connection_lives() {
    let app = TestApp::spawn();
    let mut alice = app.member("alice", "lobby").await;
    let cases = [
        ("{not json", "bad_json", None),
        ("[1, 2, 3]", "bad_json", None),
        ("42", "bad_json", None),
        (r#"{"room": "lobby", "ref": "a"}"#, "bad_request", Some("a")),
        (r#"{"type": 3, "ref": "b"}"#, "bad_request", Some("b")),
        (r#"{"type": "shout", "ref": "c"}"#, "unknown_type", Some("c")),
        (r#"{"type": "say", "room": "lobby", "ref": "d"}"#, "bad_request", Some("d")),
        (r#"{"type": "say", "room": "lobby", "text": 5, "ref": "e"}"#, "bad_request", Some("e")),
        (
            r#"{"type": "say", "room": "lobby", "text": " \n\t", "ref": "f"}"#,
            "bad_request",
            Some("f"),
        ),
        (r#"{"type": "join", "room": "has space", "ref": "g"}"#, "bad_request", Some("g")),
        (
            r#"{"type": "join", "room": "lobby", "since": "x", "ref": "h"}"#,
            "bad_request",
            Some("h"),
        ),
        (
            r#"{"type": "direct", "to": "no/slash", "text": "x", "ref": "i"}"#,
            "bad_request",
            Some("i"),
        ),
        (r#"{"type": "rooms", "ref": 12}"#, "bad_request", None),
    ];
    for (frame, code, reference) in cases {
        alice.send_raw(Message::text(frame)).await;
        let error = alice.expect("error").await;
        assert_eq!(error["code"], code, "{frame}");
        assert_eq!(error["ref"].as_str(), reference, "{frame}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(alice.say("lobby", "still here").await["id"], 1);
}

#[tokio::test]
async fn texts_longer_than_the_configured_maximum_are_refused() {
    let app = TestApp::spawn_with(|config| config.max_text_chars = 10);
    let mut alice = app.member("alice", "lobby").await;
    let error = alice
        .error_for(json!({"type": "say", "room": "lobby", "text": "x".repeat(11), "ref": "r"}))
        .await;
    assert_eq!((error["code"].as_str(), error["ref"].as_str()), (Some("bad_request"), Some("r")));
    assert_eq!(alice.say("lobby", &"é".repeat(10)).await["id"], 1, "counted in characters");
}

#[tokio::test]
async fn binary_frames_get_bad_request_and_the_connection_stays() {
    let app = TestApp::spawn();
    let mut alice = app.member("alice", "lobby").await;
    alice.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    assert_eq!(alice.expect("error").await["code"], "bad_request");
    alice.say("lobby", "after binary").await;
}

#[tokio::test]
async fn an_oversized_frame_closes_the_connection_with_1009() {
    let app = TestApp::spawn_with(|config| config.max_frame_bytes = 1024);
    let mut alice = app.member("alice", "lobby").await;
    let text = "x".repeat(2000);
    alice.send(json!({"type": "say", "room": "lobby", "text": text})).await;
    assert_eq!(alice.close_code().await, Some(CloseCode::Size));
    let mut other = app.member("bob", "lobby").await;
    assert_eq!(
        other.say("lobby", "server fine").await["id"],
        1,
        "nothing of the big frame was stored"
    );
}

fn fragment(data: &str, first: bool, last: bool) -> Message {
    let opcode = if first { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
    Message::Frame(Frame::message(data.as_bytes().to_vec(), opcode, last))
}

#[tokio::test]
async fn fragments_are_reassembled_and_their_total_size_counts() {
    let app = TestApp::spawn_with(|config| config.max_frame_bytes = 1024);
    let mut alice = app.member("alice", "lobby").await;
    let frame =
        json!({"type": "say", "room": "lobby", "text": "in pieces", "ref": "p"}).to_string();
    let (head, tail) = frame.split_at(10);
    alice.send_raw(fragment(head, true, false)).await;
    alice.send_raw(fragment(tail, false, true)).await;
    assert_eq!(alice.expect("message").await["text"], "in pieces");

    let piece = "x".repeat(600);
    alice.send_raw(fragment(&piece, true, false)).await;
    alice.send_raw(fragment(&piece, false, true)).await;
    assert_eq!(alice.close_code().await, Some(CloseCode::Size));
}
