//! The HTTP API: health, rooms, history, posting.

use serde_json::json;

use crate::support::{get, ids, post, TestApp};

#[tokio::test]
async fn healthz_answers_ok() {
    let app = TestApp::spawn();
    let response = get(app.url("/healthz")).await;
    assert_eq!((response.status, response.body.as_str()), (200, "ok"));
}

#[tokio::test]
async fn the_web_client_is_served_at_the_root() {
    let app = TestApp::spawn();
    let page = get(app.url("/")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("data-testid=\"signin-name\""));
    assert_eq!(get(app.url("/app.js")).await.status, 200);
}

#[tokio::test]
async fn the_web_client_never_parses_strings_as_html() {
    let app = TestApp::spawn();
    let script = get(app.url("/app.js")).await.body;
    assert!(script.contains("textContent"));
    for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
        assert!(!script.contains(sink), "app.js uses {sink}");
    }
}

#[tokio::test]
async fn rooms_lists_members_and_stored_message_counts() {
    let app = TestApp::spawn();
    let mut alice = app.member("alice", "lobby").await;
    alice.say("lobby", "one").await;
    alice.say("lobby", "two").await;
    let _bob = app.member("bob", "empty").await;
    alice.send(json!({"type": "direct", "to": "bob", "text": "hidden"})).await;
    alice.expect("message").await;
    let rooms = get(app.url("/api/rooms")).await;
    assert_eq!(rooms.status, 200);
    assert_eq!(
        rooms.json(),
        json!([{"name": "empty", "members": 1, "messages": 0}, {"name": "lobby", "members": 1, "messages": 2}])
    );
}

#[tokio::test]
async fn messages_pages_like_the_history_frame() {
    let app = TestApp::spawn();
    let mut alice = app.member("alice", "lobby").await;
    for i in 1..=6 {
        alice.say("lobby", &format!("m{i}")).await;
    }
    let page = get(app.url("/api/rooms/lobby/messages?limit=2")).await.json();
    assert_eq!(page["room"], "lobby");
    assert_eq!(page["more"], true);
    assert_eq!(ids(&page["messages"]), [5, 6]);
    assert_eq!(page["messages"][0]["from"], "alice");
    let page = get(app.url("/api/rooms/lobby/messages?before=3")).await.json();
    assert_eq!(
        (page["messages"].as_array().unwrap().len(), page["more"].as_bool()),
        (2, Some(false))
    );
    let page = get(app.url("/api/rooms/lobby/messages?since=1&before=5")).await.json();
    assert_eq!(ids(&page["messages"]), [2, 3, 4]);
    let page = get(app.url("/api/rooms/lobby/messages?since=4")).await.json();
    assert_eq!(page["messages"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn unknown_rooms_and_conversations_are_not_found() {
    let app = TestApp::spawn();
    for path in [
        "/api/rooms/nowhere/messages",
        "/api/rooms/@a+b/messages",
        "/api/rooms/bad%20name/messages",
    ] {
        let response = get(app.url(path)).await;
        assert_eq!(response.status, 404, "{path}");
        assert_eq!(response.json()["code"], "not_found");
    }
}

#[tokio::test]
async fn bad_parameters_are_bad_requests() {
    let app = TestApp::spawn();
    let _alice = app.member("alice", "lobby").await;
    for query in ["limit=0", "limit=201", "limit=abc", "before=-1", "since=1.5"] {
        let response = get(app.url(&format!("/api/rooms/lobby/messages?{query}"))).await;
        assert_eq!(response.status, 400, "{query}");
        assert_eq!(response.json()["code"], "bad_request");
    }
}

#[tokio::test]
async fn a_post_is_stored_delivered_live_and_answered_201() {
    let app = TestApp::spawn();
    let mut alice = app.member("alice", "lobby").await;
    let response = post(
        app.url("/api/rooms/lobby/messages"),
        json!({"from": "cron", "text": "nightly job done"}),
    )
    .await;
    assert_eq!(response.status, 201);
    let stored = response.json();
    assert_eq!(
        (stored["type"].as_str(), stored["id"].as_u64(), stored["from"].as_str()),
        (Some("message"), Some(1), Some("cron"))
    );
    assert!(stored.get("ref").is_none());
    let live = alice.expect("message").await;
    assert_eq!(live, stored);
}

#[tokio::test]
async fn a_post_creates_its_room() {
    let app = TestApp::spawn();
    let response =
        post(app.url("/api/rooms/fresh/messages"), json!({"from": "bot", "text": "first"})).await;
    assert_eq!(response.status, 201);
    let mut alice = app.client("alice").await;
    alice.send(json!({"type": "rooms"})).await;
    assert_eq!(alice.expect("rooms").await["rooms"], json!([{"name": "fresh", "members": 0}]));
    assert_eq!(alice.join("fresh").await["history"][0]["text"], "first");
}

#[tokio::test]
async fn bad_posts_get_json_errors() {
    let app = TestApp::spawn();
    let cases = [
        ("/api/rooms/lobby/messages", json!({"from": "bot"})),
        ("/api/rooms/lobby/messages", json!({"from": "no spaces", "text": "x"})),
        ("/api/rooms/lobby/messages", json!({"from": "bot", "text": "  "})),
        ("/api/rooms/lobby/messages", json!([1])),
        ("/api/rooms/@a+b/messages", json!({"from": "a", "text": "x"})),
    ];
    for (path, body) in cases {
        let response = post(app.url(path), body.clone()).await;
        assert_eq!(response.status, 400, "{path} {body}");
        assert_eq!(response.json()["code"], "bad_request");
    }
    assert_eq!(get(app.url("/api/rooms")).await.json(), json!([]), "nothing was created");
}

#[tokio::test]
async fn metrics_count_connections_rooms_messages_and_rejections() {
    let app = TestApp::spawn();
    let mut alice = app.member("alice", "lobby").await;
    alice.say("lobby", "one").await;
    alice.send_raw(tokio_tungstenite::tungstenite::Message::text("nope")).await;
    alice.expect("error").await;
    let response = get(app.url("/metrics")).await;
    assert_eq!(response.status, 200);
    for line in [
        "walkie_connections 1",
        "walkie_rooms 1",
        "walkie_room_members 1",
        "walkie_messages_received_total 1",
        "walkie_messages_delivered_total 1",
        "walkie_frames_rejected_total{code=\"bad_json\"} 1",
        "walkie_persistence_queue_depth 0",
    ] {
        assert!(response.body.lines().any(|l| l == line), "{line} missing from\n{}", response.body);
    }
    assert!(response.body.contains("walkie_persistence_batch_size_count"));
    assert!(response.body.contains("walkie_persistence_commit_seconds_bucket"));
}
