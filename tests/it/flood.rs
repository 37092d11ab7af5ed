//! Flood control and slow consumers.

use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::{get, TestApp, TestClient};

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

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_and_the_room_goes_on() {
    let app = TestApp::spawn_with(|config| config.max_outbound_bytes = 512 * 1024);
    let mut reader = app.member("reader", "busy").await;
    // A small receive buffer, so the kernel does not absorb megabytes first.
    let mut stalled =
        TestClient::connect_with_receive_buffer(&app.ws_url("?name=stalled"), 4096).await;
    stalled.expect("welcome").await;
    stalled.join("busy").await; // never reads from here on
    let mut sender = app.member("sender", "busy").await;
    reader.skip_to("presence").await;
    reader.skip_to("presence").await;
    let count = 2500;
    let reading = tokio::spawn(async move {
        let (mut received, mut stalled_left) = (0, false);
        while received < count {
            let frame = reader.recv().await;
            match frame["type"].as_str() {
                Some("message") => received += 1,
                Some("presence") => {
                    stalled_left |= frame["name"] == "stalled" && frame["event"] == "leave"
                }
                _ => {}
            }
        }
        stalled_left
    });
    let text = "x".repeat(3000);
    for window in 0..count / 100 {
        for i in 0..100 {
            let reference = format!("{window}-{i}");
            sender
                .send(json!({"type": "say", "room": "busy", "text": text, "ref": reference}))
                .await;
        }
        let mut acked = 0;
        while acked < 100 {
            if sender.recv().await.get("ref").is_some() {
                acked += 1;
            }
        }
    }
    assert!(reading.await.unwrap(), "the reader got every message, and saw the stalled client go");
    let code = stalled.close_code().await;
    assert!(matches!(code, Some(CloseCode::Policy) | None), "{code:?}");
}
