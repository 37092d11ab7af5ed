//! Exactly-once sending: a message resent with its idempotency key is
//! stored once, and the resend gets the stored message back.

use std::time::Duration;

use serde_json::json;

use crate::support::{get, post, Next, Server, TestApp, TestClient, TestDb};

fn say(text: &str, key: &str, reference: &str) -> serde_json::Value {
    json!({"type": "say", "room": "lobby", "text": text, "idempotency_key": key, "ref": reference})
}

#[tokio::test]
async fn a_resend_after_a_dropped_connection_is_stored_once_with_the_original_id() {
    let app = TestApp::spawn();
    let mut bob = app.member("bob", "lobby").await;
    let mut alice = app.member("alice", "lobby").await;
    bob.skip_to("presence").await;
    alice.send(say("on a train", "k-1", "first")).await;
    alice.close().await; // gone before the acknowledgement

    let mut alice = app.member("alice", "lobby").await;
    alice.send(say("on a train", "k-1", "again")).await;
    let resent = alice.skip_to_ref("again").await;
    assert_eq!(
        (resent["type"].as_str(), resent["text"].as_str()),
        (Some("message"), Some("on a train"))
    );
    // bob sees the message once, under the id the resend was answered with.
    let mut seen = Vec::new();
    while let Next::Frame(frame) = bob.next(Duration::from_millis(500)).await {
        if frame["type"] == "message" {
            seen.push(frame);
        }
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!((&seen[0]["id"], &seen[0]["ts"]), (&resent["id"], &resent["ts"]));
    let stored = get(app.url("/api/rooms/lobby/messages")).await.json();
    assert_eq!(stored["messages"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_resend_after_kill_9_gets_the_original_id() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let mut alice = TestClient::connect(&server.ws_url("?name=alice")).await;
    alice.expect("welcome").await;
    alice.join("lobby").await;
    alice.send(say("before the crash", "k-crash", "r1")).await;
    let acknowledged = alice.expect("message").await;
    server.signal("KILL");
    drop(server);

    let server = Server::start(&db);
    let mut alice = TestClient::connect(&server.ws_url("?name=alice")).await;
    alice.expect("welcome").await;
    alice.join("lobby").await;
    alice.send(say("before the crash", "k-crash", "r2")).await;
    let resent = alice.expect("message").await;
    assert_eq!((&resent["id"], &resent["ts"]), (&acknowledged["id"], &acknowledged["ts"]));
    let stored = get(server.url("/api/rooms/lobby/messages")).await.json();
    assert_eq!(stored["messages"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn two_sessions_sending_the_same_key_at_once_store_one_message() {
    let app = TestApp::spawn();
    let mut tab1 = app.member("alice", "lobby").await;
    let mut tab2 = app.member("alice", "lobby").await;
    for round in 0..50 {
        let key = format!("key-{round}");
        let text = format!("message {round}");
        tab1.send(say(&text, &key, "tab1")).await;
        tab2.send(say(&text, &key, "tab2")).await;
        let one = tab1.skip_to_ref("tab1").await;
        let two = tab2.skip_to_ref("tab2").await;
        assert_eq!(one["id"], two["id"], "round {round}");
        assert_eq!(one["id"], round + 1, "round {round}: one stored message per key");
    }
    let rooms = get(app.url("/api/rooms")).await.json();
    assert_eq!(rooms[0]["messages"], 50);
}

#[tokio::test]
async fn a_key_reused_for_another_message_is_a_conflict() {
    let app = TestApp::spawn();
    let mut alice = app.member("alice", "lobby").await;
    alice.join("other").await;
    alice.send(say("original", "k", "1")).await;
    alice.expect("message").await;
    let error = alice.error_for(say("changed", "k", "2")).await;
    assert_eq!((error["code"].as_str(), error["ref"].as_str()), (Some("conflict"), Some("2")));
    let elsewhere = json!({"type": "say", "room": "other", "text": "original", "idempotency_key": "k", "ref": "3"});
    assert_eq!(alice.error_for(elsewhere).await["code"], "conflict");
    // Keys belong to their user: bob may use the same one.
    let mut bob = app.member("bob", "lobby").await;
    bob.send(say("original", "k", "4")).await;
    assert_eq!(bob.skip_to("message").await["id"], 2);
}

#[tokio::test]
async fn a_post_resent_with_its_key_answers_200_with_the_stored_message() {
    let app = TestApp::spawn();
    let url = app.url("/api/rooms/ops/messages");
    let body = json!({"from": "cron", "text": "backup done", "idempotency_key": "job-7"});
    let first = post(url.clone(), body.clone()).await;
    assert_eq!(first.status, 201);
    let again = post(url.clone(), body).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json(), first.json());
    let conflict =
        post(url, json!({"from": "cron", "text": "other", "idempotency_key": "job-7"})).await;
    assert_eq!((conflict.status, conflict.json()["code"].as_str()), (409, Some("conflict")));
    let rooms = get(app.url("/api/rooms")).await.json();
    assert_eq!(rooms[0]["messages"], 1);
}
