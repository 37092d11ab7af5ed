//! Direct conversations: delivery, history, and who may read them.

use std::time::Duration;

use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn a_direct_message_reaches_every_session_of_both_users() {
    let app = TestApp::spawn();
    let mut alice = app.client("alice").await;
    let mut alice_tab = app.client("alice").await;
    let mut bob = app.client("bob").await;
    let mut carol = app.client("carol").await;
    alice.send(json!({"type": "direct", "to": "bob", "text": "psst", "ref": "d1"})).await;
    let ack = alice.expect("message").await;
    assert_eq!(
        (ack["room"].as_str(), ack["id"].as_u64(), ack["ref"].as_str()),
        (Some("@alice+bob"), Some(1), Some("d1"))
    );
    for other in [&mut alice_tab, &mut bob] {
        let copy = other.expect("message").await;
        assert_eq!(
            (copy["room"].as_str(), copy["from"].as_str(), copy["text"].as_str()),
            (Some("@alice+bob"), Some("alice"), Some("psst"))
        );
        assert!(copy.get("ref").is_none());
    }
    carol.expect_silence(Duration::from_millis(300)).await;
    bob.send(json!({"type": "direct", "to": "alice", "text": "yes?"})).await;
    assert_eq!(bob.expect("message").await["id"], 2, "one id sequence per conversation");
}

#[tokio::test]
async fn a_message_to_oneself_arrives_once_per_session() {
    let app = TestApp::spawn();
    let mut bo = app.client("bo").await;
    let mut bo_tab = app.client("bo").await;
    bo.send(json!({"type": "direct", "to": "bo", "text": "note to self", "ref": "n"})).await;
    assert_eq!(bo.expect("message").await["room"], "@bo+bo");
    bo.expect_silence(Duration::from_millis(300)).await;
    assert_eq!(bo_tab.expect("message").await["room"], "@bo+bo");
    bo_tab.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn an_offline_user_reads_the_conversation_later() {
    let app = TestApp::spawn();
    let mut alice = app.client("alice").await;
    alice.send(json!({"type": "direct", "to": "bob", "text": "when you are back"})).await;
    alice.expect("message").await;
    let mut bob = app.client("bob").await;
    bob.send(json!({"type": "history", "room": "@alice+bob", "ref": "h"})).await;
    let history = bob.expect("history").await;
    assert_eq!(history["room"], "@alice+bob");
    assert_eq!(history["more"], false);
    assert_eq!(history["messages"][0]["text"], "when you are back");
    assert_eq!(history["ref"], "h");
}

#[tokio::test]
async fn only_the_two_users_may_read_or_type_in_a_conversation() {
    let app = TestApp::spawn();
    let mut alice = app.client("alice").await;
    alice.send(json!({"type": "direct", "to": "bob", "text": "secret"})).await;
    alice.expect("message").await;
    let mut eve = app.client("eve").await;
    for kind in ["history", "typing"] {
        let error = eve.error_for(json!({"type": kind, "room": "@alice+bob", "ref": kind})).await;
        assert_eq!(
            (error["code"].as_str(), error["ref"].as_str()),
            (Some("forbidden"), Some(kind))
        );
    }
    let error = eve.error_for(json!({"type": "join", "room": "@alice+bob"})).await;
    assert_eq!(error["code"], "bad_request");
    let response = crate::support::get(app.url("/api/rooms/@alice+bob/messages")).await;
    assert_eq!(response.status, 404);
    assert!(!response.body.contains("secret"));
}

#[tokio::test]
async fn typing_in_a_conversation_reaches_the_other_user() {
    let app = TestApp::spawn();
    let mut alice = app.client("alice").await;
    let mut bob = app.client("bob").await;
    alice.send(json!({"type": "typing", "room": "@alice+bob"})).await;
    assert_eq!(
        bob.expect("typing").await,
        json!({"type": "typing", "room": "@alice+bob", "from": "alice"})
    );
    alice.expect_silence(Duration::from_millis(300)).await;
}
