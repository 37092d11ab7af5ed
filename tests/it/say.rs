//! Posting to a room: delivery, acknowledgement, ids.

use std::time::Duration;

use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn a_message_reaches_every_session_in_the_room_and_only_the_sender_gets_the_ref() {
    let app = TestApp::spawn();
    let mut alice = app.member("alice", "lobby").await;
    let mut alice_tab = app.member("alice", "lobby").await;
    let mut bob = app.member("bob", "lobby").await;
    let mut outsider = app.client("carol").await;
    alice.skip_to("presence").await;
    alice_tab.skip_to("presence").await;
    alice.send(json!({"type": "say", "room": "lobby", "text": "hello", "ref": "m1"})).await;
    let ack = alice.expect("message").await;
    assert_eq!(ack["ref"], "m1");
    assert_eq!(
        (ack["id"].as_u64(), ack["room"].as_str(), ack["from"].as_str()),
        (Some(1), Some("lobby"), Some("alice"))
    );
    assert_eq!(ack["text"], "hello");
    let ts = ack["ts"].as_str().unwrap();
    assert!(
        ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[19] == b'.',
        "RFC 3339 with ms: {ts}"
    );
    for other in [&mut alice_tab, &mut bob] {
        let copy = other.expect("message").await;
        assert!(copy.get("ref").is_none(), "only the sender's copy has the ref");
        assert_eq!(copy["id"], 1);
        assert_eq!(copy["ts"], ack["ts"]);
    }
    outsider.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_say_sent_right_behind_its_join_is_acknowledged() {
    let app = TestApp::spawn();
    let mut alice = app.client("alice").await;
    alice.send(json!({"type": "join", "room": "lobby", "ref": "j"})).await;
    alice.send(json!({"type": "say", "room": "lobby", "text": "hi", "ref": "s"})).await;
    let mut refs = vec![alice.recv().await["ref"].clone(), alice.recv().await["ref"].clone()];
    refs.sort_by_key(|r| r.to_string());
    assert_eq!(refs, [json!("j"), json!("s")]);
    alice.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn ids_count_from_one_per_room_without_holes() {
    let app = TestApp::spawn();
    let mut alice = app.member("alice", "one").await;
    alice.join("two").await;
    let mut ids = Vec::new();
    for (room, text) in [("one", "a"), ("two", "b"), ("one", "c"), ("one", "d"), ("two", "e")] {
        ids.push(alice.say(room, text).await["id"].as_u64().unwrap());
    }
    assert_eq!(ids, [1, 1, 2, 3, 2]);
}

#[tokio::test]
async fn every_session_sees_a_rooms_messages_in_id_order() {
    let app = TestApp::spawn();
    let mut reader = app.member("reader", "busy").await;
    let mut senders = Vec::new();
    for name in ["s1", "s2", "s3"] {
        senders.push(app.member(name, "busy").await);
    }
    for _ in 0..3 {
        reader.skip_to("presence").await;
    }
    for round in 0..20 {
        for sender in senders.iter_mut() {
            sender.send(json!({"type": "say", "room": "busy", "text": format!("m{round}")})).await;
        }
    }
    let mut last = 0;
    for _ in 0..60 {
        let frame = reader.skip_to("message").await;
        let id = frame["id"].as_u64().unwrap();
        assert_eq!(id, last + 1, "ids arrive in order with no hole");
        last = id;
    }
}

#[tokio::test]
async fn a_message_survives_the_senders_leaving_before_its_ack() {
    let app = TestApp::spawn();
    let mut alice = app.member("alice", "lobby").await;
    let mut bob = app.member("bob", "lobby").await;
    alice.skip_to("presence").await;
    alice.send(json!({"type": "say", "room": "lobby", "text": "bye", "ref": "r"})).await;
    alice.send(json!({"type": "leave", "room": "lobby"})).await;
    let mut frames = [alice.recv().await, alice.recv().await];
    frames.sort_by_key(|frame| frame["type"].as_str().unwrap_or_default().to_owned());
    assert_eq!(frames[0]["type"], "left");
    assert_eq!(
        (frames[1]["type"].as_str(), frames[1]["ref"].as_str()),
        (Some("message"), Some("r"))
    );
    assert_eq!(bob.expect("message").await["text"], "bye");
}
