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

/// A server with the test limit and, in one room, a watcher that reads, a
/// client that reads nothing once it has joined (a small receive buffer
/// keeps the kernel from absorbing much for it) and a sender; the watcher
/// has seen the other two arrive.
struct SlowRoom {
    app: TestApp,
    watcher: TestClient,
    slow: TestClient,
    sender: TestClient,
}

impl SlowRoom {
    async fn start(slow: &str, room: &str) -> Self {
        let app = TestApp::spawn_with(|config| config.max_outbound_bytes = LIMIT);
        let mut watcher = app.member("watcher", room).await;
        let url = app.ws_url(&format!("?name={slow}"));
        let mut slow = TestClient::connect_with_receive_buffer(&url, 4096).await;
        slow.expect("welcome").await;
        slow.join(room).await;
        let sender = app.member("sender", room).await;
        watcher.skip_to("presence").await;
        watcher.skip_to("presence").await;
        Self { app, watcher, slow, sender }
    }
}

#[tokio::test]
async fn a_reader_that_falls_behind_in_a_burst_keeps_its_connection() {
    let SlowRoom { app, mut watcher, slow: mut reader, mut sender } =
        SlowRoom::start("reader", "burst").await;
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
    let SlowRoom { app, mut watcher, mut slow, mut sender } =
        SlowRoom::start("stalled", "quiet").await;
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
    assert_eq!(slow.close_code().await, Some(CloseCode::Policy));
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_and_the_room_goes_on() {
    // 7.5 MB sent: past 4 times the limit long before the grace period ends.
    let SlowRoom { app: _app, watcher: mut reader, mut slow, mut sender } =
        SlowRoom::start("stalled", "busy").await;
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
    assert_eq!(slow.close_code().await, Some(CloseCode::Policy));
}
