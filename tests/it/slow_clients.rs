//! Slow clients: a backlog over `--max-outbound-bytes` for 2 s, or over
//! 4 times it at once, closes the session; a reader that catches up in
//! time keeps it (docs/protocol.md, "Flood control and slow clients").

use std::time::{Duration, Instant};

use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::{get, TestApp, TestClient};

/// `--max-outbound-bytes` in these tests.
const LIMIT: usize = 256 * 1024;

/// The documented grace period for a backlog over the limit.
const GRACE: Duration = Duration::from_secs(2);

/// The size of each text sent.
const TEXT_BYTES: usize = 3000;

/// Says texts in `room` in rounds of 10, each acknowledged, until the
/// server counts a session over the limit (`walkie_slow_sessions`). The
/// kernel's socket buffers take megabytes first, so how much that takes
/// is measured, not assumed. Returns how many were sent.
async fn send_until_a_backlog_is_over_the_limit(
    app: &TestApp,
    sender: &mut TestClient,
    room: &str,
) -> usize {
    let text = "x".repeat(TEXT_BYTES);
    let mut sent = 0;
    while sent < 20_000_000 / TEXT_BYTES {
        for _ in 0..10 {
            sender.send(json!({"type": "say", "room": room, "text": text, "ref": "r"})).await;
        }
        let mut acked = 0;
        while acked < 10 {
            acked += usize::from(sender.recv().await.get("ref").is_some());
        }
        sent += 10;
        let metrics = get(app.url("/metrics")).await.body;
        if metrics.lines().any(|line| line == "walkie_slow_sessions 1") {
            return sent;
        }
    }
    panic!("no backlog went over the limit in {sent} messages");
}

/// A client that reads nothing once it has joined `room`; a small receive
/// buffer keeps the kernel from absorbing what the server sends it.
async fn stalled_member(app: &TestApp, name: &str, room: &str) -> TestClient {
    let url = app.ws_url(&format!("?name={name}"));
    let mut client = TestClient::connect_with_receive_buffer(&url, 4096).await;
    client.expect("welcome").await;
    client.join(room).await;
    client
}

#[tokio::test]
async fn a_reader_that_falls_behind_in_a_burst_keeps_its_connection() {
    let app = TestApp::spawn_with(|config| config.max_outbound_bytes = LIMIT);
    let mut watcher = app.member("watcher", "burst").await;
    let mut reader = stalled_member(&app, "reader", "burst").await;
    let mut sender = app.member("sender", "burst").await;
    let count = send_until_a_backlog_is_over_the_limit(&app, &mut sender, "burst").await;
    // The reader catches up well within the grace period.
    let mut received = 0;
    while received < count {
        let frame = reader.recv().await;
        assert_ne!(frame["type"], "error", "{frame}");
        received += usize::from(frame["type"] == "message");
    }
    sender.say("burst", "after the burst").await;
    assert_eq!(reader.skip_to("message").await["text"], "after the burst");
    loop {
        let frame = watcher.recv().await;
        assert_ne!(frame["event"], "leave", "nobody left: {frame}");
        if frame["text"] == "after the burst" {
            break;
        }
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_after_the_grace_period() {
    let app = TestApp::spawn_with(|config| config.max_outbound_bytes = LIMIT);
    let mut watcher = app.member("watcher", "quiet").await;
    let mut stalled = stalled_member(&app, "stalled", "quiet").await;
    let mut sender = app.member("sender", "quiet").await;
    watcher.skip_to("presence").await;
    watcher.skip_to("presence").await;
    send_until_a_backlog_is_over_the_limit(&app, &mut sender, "quiet").await;
    // Just over the limit, and nothing more is sent: only the grace
    // period can close it (a round of sending and a scrape ago at most).
    let over = Instant::now();
    let leave = loop {
        let frame = watcher.recv().await;
        if frame["type"] == "presence" {
            break frame;
        }
    };
    let after = over.elapsed();
    assert_eq!((leave["name"].as_str(), leave["event"].as_str()), (Some("stalled"), Some("leave")));
    assert!(after >= GRACE / 2, "closed {after:?} after going over: before the grace period");
    assert!(after <= GRACE * 2, "closed {after:?} after going over: later than documented");
    assert_eq!(stalled.close_code().await, Some(CloseCode::Policy));
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_and_the_room_goes_on() {
    // 7.5 MB sent: past 4 times the limit long before the grace period ends.
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
