//! Mentions: live for users outside the room, kept for offline users.

use std::time::Duration;

use serde_json::json;

use crate::support::{post, TestApp};

const QUIET: Duration = Duration::from_millis(400);

#[tokio::test]
async fn a_user_outside_the_room_gets_a_mention() {
    let app = TestApp::spawn();
    let mut bob = app.client("bob").await;
    let mut alice = app.member("alice", "lobby").await;
    alice.say("lobby", "hi @bob.").await;
    assert_eq!(
        bob.expect("mention").await,
        json!({"type": "mention", "room": "lobby", "id": 1, "from": "alice", "text": "hi @bob."})
    );
}

#[tokio::test]
async fn only_the_sessions_outside_the_room_are_mentioned() {
    let app = TestApp::spawn();
    let mut bob_in = app.member("bob", "lobby").await;
    let mut bob_out = app.client("bob").await;
    let mut alice = app.member("alice", "lobby").await;
    bob_in.skip_to("presence").await;
    alice.say("lobby", "@bob @bob look").await;
    assert_eq!(bob_in.expect("message").await["id"], 1);
    bob_in.expect_silence(QUIET).await;
    assert_eq!(bob_out.expect("mention").await["id"], 1);
    bob_out.expect_silence(QUIET).await; // once per message
}

#[tokio::test]
async fn senders_direct_messages_and_case_do_not_mention() {
    let app = TestApp::spawn();
    let mut alice_outside = app.client("alice").await;
    let mut alice = app.member("alice", "lobby").await;
    let mut bob = app.client("bob").await;
    alice.say("lobby", "note to @alice and @Bob").await;
    let posted = post(
        app.url("/api/rooms/lobby/messages"),
        json!({"from": "alice", "text": "@alice again"}),
    )
    .await;
    assert_eq!(posted.status, 201);
    alice.expect("message").await;
    alice_outside.expect_silence(QUIET).await;
    alice.send(json!({"type": "direct", "to": "bob", "text": "hey @bob"})).await;
    alice.expect("message").await;
    assert_eq!(bob.expect("message").await["room"], "@alice+bob");
    bob.expect_silence(QUIET).await;
    alice.expect_silence(QUIET).await;
}

#[tokio::test]
async fn an_offline_user_gets_the_mention_right_after_welcome_once() {
    let app = TestApp::spawn();
    let mut alice = app.member("alice", "lobby").await;
    alice.say("lobby", "@carol see this").await;
    alice.say("lobby", "and @carol this").await;
    tokio::time::sleep(Duration::from_millis(300)).await; // mentions are worked out in the background
    let mut carol = app.client("carol").await; // reads welcome
    let first = carol.recv().await;
    assert_eq!(
        first,
        json!({"type": "mention", "room": "lobby", "id": 1, "from": "alice", "text": "@carol see this"})
    );
    assert_eq!(carol.recv().await["id"], 2);
    carol.expect_silence(QUIET).await;
    carol.close().await;
    let mut again = app.client("carol").await;
    again.expect_silence(QUIET).await;
}

#[tokio::test]
async fn a_http_post_mentions_too() {
    let app = TestApp::spawn();
    let mut dave = app.client("dave").await;
    let response =
        post(app.url("/api/rooms/ops/messages"), json!({"from": "bot", "text": "@dave deployed"}))
            .await;
    assert_eq!(response.status, 201);
    assert_eq!(dave.expect("mention").await["from"], "bot");
}
