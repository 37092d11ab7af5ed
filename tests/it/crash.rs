//! A crash of the server (kill -9) loses no acknowledged message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{all_messages, gapless_by_text, Next, Server, TestClient, TestDb, TIMEOUT};

/// Sends `count` messages (`{name}-{i}{tail}`) as fast as it can while
/// reading acknowledgements, until the connection drops; returns
/// `text -> id` of what was acknowledged.
async fn send_until_killed(
    mut client: TestClient,
    name: String,
    tail: &'static str,
    count: usize,
    progress: Arc<AtomicUsize>,
) -> HashMap<String, u64> {
    let mut acked = HashMap::new();
    for i in 0..count {
        let text = format!("{name}-{i}{tail}");
        client.send_lossy(json!({"type": "say", "room": "busy", "text": text, "ref": text})).await;
        while let Next::Frame(frame) = client.next(Duration::from_millis(1)).await {
            record(&mut acked, &frame);
        }
        progress.store(acked.len(), Ordering::Relaxed);
    }
    // Until the server's death closes the connection.
    loop {
        match client.next(TIMEOUT).await {
            Next::Frame(frame) => record(&mut acked, &frame),
            Next::Closed(_) => break,
            Next::Silence => panic!("no frame and no close in time"),
        }
    }
    acked
}

fn record(acked: &mut HashMap<String, u64>, frame: &Value) {
    if let (Some(reference), Some(id)) = (frame["ref"].as_str(), frame["id"].as_u64()) {
        acked.insert(reference.to_owned(), id);
    }
}

/// Has `names` send into `busy` (texts ending in `tail`) until the server
/// is killed with -9, once each has some messages acknowledged; returns
/// `text -> id` of everything acknowledged.
async fn send_and_kill(server: Server, names: &[&str], tail: &'static str) -> HashMap<String, u64> {
    let mut senders = Vec::new();
    for name in names {
        let mut client = TestClient::connect(&server.ws_url(&format!("?name={name}"))).await;
        client.expect("welcome").await;
        client.join("busy").await;
        let progress = Arc::new(AtomicUsize::new(0));
        let task = send_until_killed(client, name.to_string(), tail, 2000, progress.clone());
        senders.push((tokio::spawn(task), progress));
    }
    // Kill while messages are in flight, once each sender has some acknowledged.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while senders.iter().any(|(_, progress)| progress.load(Ordering::Relaxed) < 20) {
        assert!(tokio::time::Instant::now() < deadline, "no acknowledgements");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.signal("KILL");
    let mut acked = HashMap::new();
    for (sender, _) in senders {
        acked.extend(sender.await.unwrap());
    }
    assert!(!acked.is_empty(), "some messages were acknowledged before the kill");
    acked
}

#[tokio::test]
async fn every_acknowledged_message_survives_kill_9_exactly_once() {
    let db = TestDb::new();
    let acked = send_and_kill(Server::start(&db), &["a", "b", "c"], "").await;

    let server = Server::start(&db);
    let stored = all_messages(&server.url("/api/rooms/busy/messages")).await;
    let by_text = gapless_by_text(&stored);
    for (text, id) in &acked {
        assert_eq!(
            by_text.get(text.as_str()),
            Some(id),
            "{text} is stored with the id it was acknowledged under"
        );
    }
    let mut after = TestClient::connect(&server.ws_url("?name=after")).await;
    after.expect("welcome").await;
    after.join("busy").await;
    assert_eq!(after.say("busy", "after the crash").await["id"], stored.len() as u64 + 1);
}

#[tokio::test]
async fn every_stored_mention_is_counted_after_kill_9() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let mut bob = TestClient::connect(&server.ws_url("?name=bob")).await;
    bob.expect("welcome").await;
    bob.join("busy").await; // bob's cursor starts here; he goes away
    bob.close().await;
    send_and_kill(server, &["a", "b"], " @bob").await;

    let server = Server::start(&db);
    let stored = all_messages(&server.url("/api/rooms/busy/messages")).await.len() as u64;
    let mut bob = TestClient::connect(&server.ws_url("?name=bob")).await;
    bob.send(json!({"type": "inbox"})).await;
    let inbox = bob.skip_to("inbox").await;
    let busy = &inbox["conversations"][0];
    assert_eq!(busy["room"], "busy");
    assert_eq!(busy["unread"], stored, "every stored message is unread for bob");
    assert_eq!(busy["mentions"], stored, "and every one of them mentions him");
}
