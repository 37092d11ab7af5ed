//! History: `join` with `since`/`limit`, `history` paging with `before`.

use serde_json::json;

use crate::support::{ids, TestApp};

#[tokio::test]
async fn join_returns_the_latest_messages_oldest_first() {
    let app = TestApp::spawn();
    let mut alice = app.member("alice", "lobby").await;
    for i in 1..=5 {
        alice.say("lobby", &format!("m{i}")).await;
    }
    let mut bob = app.client("bob").await;
    bob.send(json!({"type": "join", "room": "lobby", "limit": 3})).await;
    let joined = bob.expect("joined").await;
    assert_eq!(ids(&joined["history"]), [3, 4, 5]);
    assert_eq!(joined["more"], true);
    assert_eq!(joined["history"][0]["text"], "m3");
    assert_eq!(joined["history"][0]["type"], "message");
    let mut carol = app.client("carol").await;
    let joined = carol.join("lobby").await;
    assert_eq!(ids(&joined["history"]), [1, 2, 3, 4, 5]);
    assert_eq!(joined["more"], false);
}

#[tokio::test]
async fn join_with_since_recovers_exactly_what_was_missed() {
    let app = TestApp::spawn();
    let mut alice = app.member("alice", "lobby").await;
    let mut bob = app.member("bob", "lobby").await;
    alice.skip_to("presence").await;
    alice.say("lobby", "one").await;
    let seen = bob.expect("message").await["id"].as_u64().unwrap();
    bob.close().await;
    alice.skip_to("presence").await; // bob left
    for text in ["two", "three", "four"] {
        alice.say("lobby", text).await;
    }
    let mut bob = app.client("bob").await;
    bob.send(json!({"type": "join", "room": "lobby", "since": seen})).await;
    let joined = bob.expect("joined").await;
    assert_eq!(ids(&joined["history"]), [2, 3, 4]);
    assert_eq!(joined["more"], false);
    alice.skip_to("presence").await; // bob is back
    alice.say("lobby", "five").await;
    assert_eq!(bob.skip_to("message").await["id"], 5, "live messages continue right after");

    let mut late = app.client("late").await;
    late.send(json!({"type": "join", "room": "lobby", "since": 1, "limit": 2})).await;
    let joined = late.expect("joined").await;
    assert_eq!(ids(&joined["history"]), [2, 3]);
    assert_eq!(joined["more"], true, "newer messages exist beyond the page");
}

#[tokio::test]
async fn history_pages_backwards_with_before() {
    let app = TestApp::spawn();
    let mut alice = app.member("alice", "lobby").await;
    for i in 1..=7 {
        alice.say("lobby", &format!("m{i}")).await;
    }
    alice.send(json!({"type": "history", "room": "lobby", "limit": 3, "ref": "p1"})).await;
    let page = alice.expect("history").await;
    assert_eq!(
        (ids(&page["messages"]), page["more"].as_bool(), page["ref"].as_str()),
        (vec![5, 6, 7], Some(true), Some("p1"))
    );
    alice.send(json!({"type": "history", "room": "lobby", "before": 5, "limit": 3})).await;
    let page = alice.expect("history").await;
    assert_eq!((ids(&page["messages"]), page["more"].as_bool()), (vec![2, 3, 4], Some(true)));
    alice.send(json!({"type": "history", "room": "lobby", "before": 2, "limit": 3})).await;
    let page = alice.expect("history").await;
    assert_eq!((ids(&page["messages"]), page["more"].as_bool()), (vec![1], Some(false)));
    alice.send(json!({"type": "history", "room": "lobby", "since": 5})).await;
    assert_eq!(ids(&alice.expect("history").await["messages"]), [6, 7]);
}

#[tokio::test]
async fn limits_outside_one_to_two_hundred_are_refused() {
    let app = TestApp::spawn();
    let mut alice = app.member("alice", "lobby").await;
    for limit in [json!(0), json!(201), json!("5"), json!(-1)] {
        let error =
            alice.error_for(json!({"type": "history", "room": "lobby", "limit": limit})).await;
        assert_eq!(error["code"], "bad_request", "limit {limit}");
    }
    alice.send(json!({"type": "history", "room": "lobby", "limit": 200})).await;
    alice.expect("history").await;
}
