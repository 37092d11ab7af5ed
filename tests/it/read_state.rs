//! Read cursors, `joined.last_read`/`unread`, and the inbox.

use std::time::Duration;

use serde_json::json;

use crate::support::{post, TestApp};

fn read(room: &str, id: u64, reference: &str) -> serde_json::Value {
    json!({"type": "read", "room": room, "id": id, "ref": reference})
}

#[tokio::test]
async fn cursors_only_move_forward_clamped_to_the_latest_id_and_sync_to_every_tab() {
    let app = TestApp::spawn();
    let mut alice = app.member("alice", "lobby").await;
    let mut tab2 = app.member("alice", "lobby").await;
    for text in ["one", "two", "three"] {
        post(app.url("/api/rooms/lobby/messages"), json!({"from": "bob", "text": text})).await;
    }
    for _ in 0..3 {
        alice.expect("message").await;
        tab2.expect("message").await;
    }
    alice.send(read("lobby", 2, "a")).await;
    assert_eq!(
        alice.expect("read").await,
        json!({"type": "read", "room": "lobby", "id": 2, "ref": "a"})
    );
    assert_eq!(tab2.expect("read").await, json!({"type": "read", "room": "lobby", "id": 2}));
    alice.send(read("lobby", 1, "b")).await;
    assert_eq!(alice.expect("read").await["id"], 2, "never back");
    tab2.expect_silence(Duration::from_millis(300)).await; // it did not move
    alice.send(read("lobby", 99, "c")).await;
    assert_eq!(alice.expect("read").await["id"], 3, "clamped to the latest id");
    assert_eq!(tab2.expect("read").await["id"], 3);
}

#[tokio::test]
async fn reading_a_room_never_joined_or_someone_elses_conversation_is_refused() {
    let app = TestApp::spawn();
    let mut alice = app.client("alice").await;
    let error = alice.error_for(read("lobby", 1, "x")).await;
    assert_eq!((error["code"].as_str(), error["ref"].as_str()), (Some("not_in_room"), Some("x")));
    let error = alice.error_for(read("@bob+carol", 1, "y")).await;
    assert_eq!((error["code"].as_str(), error["ref"].as_str()), (Some("forbidden"), Some("y")));
    alice.send(read("@alice+bob", 5, "z")).await;
    assert_eq!(alice.expect("read").await["id"], 0, "an empty conversation of one's own is fine");
    // Refused or empty reads create nothing.
    assert_eq!(crate::support::get(app.url("/api/rooms")).await.json(), json!([]));
    alice.send(json!({"type": "inbox"})).await;
    assert_eq!(alice.expect("inbox").await["conversations"], json!([]));
}

#[tokio::test]
async fn joined_and_the_inbox_count_unread_and_mentions_across_a_restart() {
    let app = TestApp::spawn();
    let db = app.db.clone();
    let mut alice = app.member("alice", "lobby").await;
    let joined = alice.join("quiet").await; // joined with nothing in it: last_id 0
    assert_eq!((joined["last_read"].as_u64(), joined["unread"].as_u64()), (Some(0), Some(0)));
    alice.say("lobby", "mine").await; // sending moves alice's own cursor
    let url = app.url("/api/rooms/lobby/messages");
    post(url.clone(), json!({"from": "bob", "text": "hello"})).await;
    post(url.clone(), json!({"from": "bob", "text": "hey @alice"})).await;
    alice.skip_to("message").await;
    alice.skip_to("message").await;
    alice.send(json!({"type": "direct", "to": "carol", "text": "dm"})).await;
    alice.expect("message").await;
    tokio::time::sleep(Duration::from_millis(300)).await; // mentions are recorded in the background
    app.stop().await;

    let app = TestApp::spawn_on(db, |_| {});
    let mut alice = app.client("alice").await;
    let joined = alice.join("lobby").await;
    assert_eq!((joined["last_read"].as_u64(), joined["unread"].as_u64()), (Some(1), Some(2)));
    alice.send(json!({"type": "inbox", "ref": "i"})).await;
    let inbox = alice.expect("inbox").await;
    assert_eq!(inbox["ref"], "i");
    assert_eq!(
        inbox["conversations"],
        json!([
            {"room": "@alice+carol", "last_id": 1, "last_read": 1, "unread": 0, "mentions": 0},
            {"room": "lobby", "last_id": 3, "last_read": 1, "unread": 2, "mentions": 1},
            {"room": "quiet", "last_id": 0, "last_read": 0, "unread": 0, "mentions": 0},
        ])
    );
    let mut carol = app.client("carol").await;
    carol.send(json!({"type": "inbox"})).await;
    assert_eq!(
        carol.expect("inbox").await["conversations"],
        json!([{"room": "@alice+carol", "last_id": 1, "last_read": 0, "unread": 1, "mentions": 0}])
    );
}

/// A user's own messages are never unread, even when they posted (over
/// HTTP, without a cursor) before their first join: the join's cursor
/// starts past them (docs/protocol.md, read cursors).
#[tokio::test]
async fn a_first_join_after_posting_counts_none_of_ones_own_messages() {
    let app = TestApp::spawn();
    let url = app.url("/api/rooms/lobby/messages");
    post(url.clone(), json!({"from": "bob", "text": "one"})).await;
    post(url.clone(), json!({"from": "alice", "text": "two"})).await;
    let mut alice = app.client("alice").await;
    let joined = alice.join("lobby").await;
    assert_eq!((joined["last_read"].as_u64(), joined["unread"].as_u64()), (Some(2), Some(0)));
    post(url.clone(), json!({"from": "bob", "text": "three"})).await;
    post(url, json!({"from": "alice", "text": "four"})).await;
    alice.skip_to("message").await;
    alice.skip_to("message").await;
    alice.send(json!({"type": "inbox"})).await;
    // Sending "four" moved her cursor past bob's "three" too.
    assert_eq!(
        alice.expect("inbox").await["conversations"],
        json!([{"room": "lobby", "last_id": 4, "last_read": 4, "unread": 0, "mentions": 0}])
    );
}
