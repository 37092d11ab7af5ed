//! Flood control.

use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::{get, TestApp};

#[tokio::test]
async fn frames_over_the_rate_get_rate_limited_and_are_not_acted_on() {
    let app = TestApp::spawn_with(|config| {
        config.rate = 0.01; // no token comes back during the test
        config.burst = 5;
    });
    let mut alice = app.member("alice", "lobby").await; // the join took a token
    for i in 0..10 {
        alice.send(json!({"type": "say", "room": "lobby", "text": format!("m{i}"), "ref": i.to_string()})).await;
    }
    let mut acked = 0;
    let mut limited = Vec::new();
    for _ in 0..10 {
        let frame = alice.recv().await;
        match frame["type"].as_str() {
            Some("message") => acked += 1,
            Some("error") => {
                assert_eq!(frame["code"], "rate_limited");
                limited.push(frame["ref"].as_str().unwrap().to_owned());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(acked, 4, "the burst of 5, less the join");
    assert_eq!(limited.len(), 6);
    let stored = get(app.url("/api/rooms/lobby/messages")).await.json();
    assert_eq!(stored["messages"].as_array().unwrap().len(), 4, "limited frames stored nothing");
}

#[tokio::test]
async fn repeated_flooding_closes_the_session_with_1008() {
    let app = TestApp::spawn_with(|config| {
        config.rate = 1.0;
        config.burst = 2;
    });
    let mut flooder = app.client("flooder").await;
    for _ in 0..30 {
        flooder.send_lossy(json!({"type": "rooms"})).await;
    }
    assert_eq!(flooder.close_code().await, Some(CloseCode::Policy));
}

#[tokio::test]
async fn a_flooder_does_not_get_the_others_in_its_room_limited() {
    let app = TestApp::spawn_with(|config| {
        config.rate = 20.0;
        config.burst = 40;
    });
    let mut calm = app.member("calm", "lobby").await;
    let mut flooder = app.member("flooder", "lobby").await;
    calm.skip_to("presence").await;
    for i in 0..100 {
        flooder
            .send_lossy(json!({"type": "say", "room": "lobby", "text": format!("spam {i}")}))
            .await;
    }
    for i in 0..5 {
        let text = format!("calm {i}");
        calm.send(json!({"type": "say", "room": "lobby", "text": text, "ref": text})).await;
        loop {
            let frame = calm.recv().await;
            assert_ne!(frame["type"], "error", "{frame}");
            if frame["ref"] == text.as_str() {
                break;
            }
        }
    }
}
