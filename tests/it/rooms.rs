//! Joining and leaving rooms, presence, typing, `rooms` and `who`.

use std::time::Duration;

use serde_json::json;

use crate::support::TestApp;

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn joined_lists_sorted_members_and_empty_history() {
    let app = TestApp::spawn();
    let _carol = app.member("carol", "lobby").await;
    let _bob = app.member("bob", "lobby").await;
    let mut alice = app.client("alice").await;
    alice.send(json!({"type": "join", "room": "lobby", "ref": "j1"})).await;
    let joined = alice.expect("joined").await;
    assert_eq!(
        joined,
        json!({"type": "joined", "room": "lobby", "members": ["alice", "bob", "carol"],
               "history": [], "more": false, "last_read": 0, "unread": 0, "ref": "j1"})
    );
}

#[tokio::test]
async fn presence_announces_a_names_first_join_and_last_leave() {
    let app = TestApp::spawn();
    let mut bob = app.member("bob", "lobby").await;
    let mut tab1 = app.member("alice", "lobby").await;
    assert_eq!(
        bob.expect("presence").await,
        json!({"type": "presence", "room": "lobby", "name": "alice", "event": "join"})
    );
    let tab2 = app.member("alice", "lobby").await;
    bob.expect_silence(QUIET).await; // a second tab is not news
    tab1.send(json!({"type": "leave", "room": "lobby", "ref": "l1"})).await;
    assert_eq!(tab1.expect("left").await, json!({"type": "left", "room": "lobby", "ref": "l1"}));
    bob.expect_silence(QUIET).await; // alice is still there in tab 2
    tab2.close().await;
    assert_eq!(
        bob.expect("presence").await,
        json!({"type": "presence", "room": "lobby", "name": "alice", "event": "leave"})
    );
    bob.say("lobby", "anyone?").await;
    tab1.expect_silence(QUIET).await; // tab 1 left: it hears nothing of lobby
}

#[tokio::test]
async fn typing_reaches_the_other_members_only() {
    let app = TestApp::spawn();
    let mut alice = app.member("alice", "lobby").await;
    let mut alice_tab = app.member("alice", "lobby").await;
    let mut bob = app.member("bob", "lobby").await;
    alice.skip_to("presence").await;
    alice.send(json!({"type": "typing", "room": "lobby"})).await;
    assert_eq!(
        bob.expect("typing").await,
        json!({"type": "typing", "room": "lobby", "from": "alice"})
    );
    alice.expect_silence(QUIET).await;
    alice_tab.skip_to("presence").await;
    alice_tab.expect_silence(QUIET).await;
    let error = bob.error_for(json!({"type": "typing", "room": "elsewhere", "ref": "t"})).await;
    assert_eq!((error["code"].as_str(), error["ref"].as_str()), (Some("not_in_room"), Some("t")));
}

#[tokio::test]
async fn rooms_lists_every_room_with_distinct_member_counts() {
    let app = TestApp::spawn();
    let _a1 = app.member("alice", "zeta").await;
    let _a2 = app.member("alice", "zeta").await;
    let mut bob = app.member("bob", "alpha").await;
    bob.send(json!({"type": "leave", "room": "alpha"})).await;
    bob.expect("left").await;
    bob.send(json!({"type": "rooms", "ref": "r"})).await;
    assert_eq!(
        bob.expect("rooms").await,
        json!({"type": "rooms", "rooms": [{"name": "alpha", "members": 0}, {"name": "zeta", "members": 1}], "ref": "r"})
    );
}

#[tokio::test]
async fn who_works_for_any_room() {
    let app = TestApp::spawn();
    let _bob = app.member("bob", "lobby").await;
    let _amy = app.member("amy", "lobby").await;
    let mut carol = app.client("carol").await;
    carol.send(json!({"type": "who", "room": "lobby"})).await;
    assert_eq!(
        carol.expect("members").await,
        json!({"type": "members", "room": "lobby", "members": ["amy", "bob"]})
    );
    carol.send(json!({"type": "who", "room": "nowhere", "ref": "w"})).await;
    assert_eq!(
        carol.expect("members").await,
        json!({"type": "members", "room": "nowhere", "members": [], "ref": "w"})
    );
}

#[tokio::test]
async fn leave_say_typing_and_history_need_membership() {
    let app = TestApp::spawn();
    let mut alice = app.client("alice").await;
    for frame in [
        json!({"type": "leave", "room": "lobby", "ref": "1"}),
        json!({"type": "say", "room": "lobby", "text": "hi", "ref": "2"}),
        json!({"type": "typing", "room": "lobby", "ref": "3"}),
        json!({"type": "history", "room": "lobby", "ref": "4"}),
    ] {
        let reference = frame["ref"].clone();
        let error = alice.error_for(frame).await;
        assert_eq!(error["code"], "not_in_room");
        assert_eq!(error["ref"], reference);
    }
}

#[tokio::test]
async fn conversations_cannot_be_joined_left_said_to_or_asked_who() {
    let app = TestApp::spawn();
    let mut alice = app.client("alice").await;
    for kind in ["join", "leave", "who"] {
        let error = alice.error_for(json!({"type": kind, "room": "@alice+bob"})).await;
        assert_eq!(error["code"], "bad_request", "{kind}");
    }
    let error = alice.error_for(json!({"type": "say", "room": "@alice+bob", "text": "x"})).await;
    assert_eq!(error["code"], "bad_request");
}
