//! A crash of the server (kill -9) loses no acknowledged message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{get, Server, TestClient};

/// Sends `count` messages as fast as it can while reading acknowledgements,
/// until the connection drops; returns `text -> id` of what was acknowledged.
async fn send_until_killed(
    mut client: TestClient,
    name: String,
    count: usize,
    progress: Arc<AtomicUsize>,
) -> HashMap<String, u64> {
    let mut acked = HashMap::new();
    for i in 0..count {
        let text = format!("{name}-{i}");
        client.send_lossy(json!({"type": "say", "room": "busy", "text": text, "ref": text})).await;
        while let Some(frame) = client.try_next_frame(Duration::from_millis(1)).await {
            record(&mut acked, &frame);
        }
        progress.store(acked.len(), Ordering::Relaxed);
    }
    while let Some(frame) = client.next_frame().await {
        record(&mut acked, &frame);
    }
    acked
}

fn record(acked: &mut HashMap<String, u64>, frame: &Value) {
    if let (Some(reference), Some(id)) = (frame["ref"].as_str(), frame["id"].as_u64()) {
        acked.insert(reference.to_owned(), id);
    }
}

async fn all_messages(server: &Server) -> Vec<Value> {
    let mut messages = Vec::new();
    let mut since = 0;
    loop {
        let page = get(server.url(&format!("/api/rooms/busy/messages?since={since}&limit=200")))
            .await
            .json();
        let batch = page["messages"].as_array().unwrap().clone();
        since = batch.last().map_or(since, |m| m["id"].as_u64().unwrap());
        messages.extend(batch);
        if page["more"] == false {
            return messages;
        }
    }
}

#[tokio::test]
async fn every_acknowledged_message_survives_kill_9_exactly_once() {
    let dir = tempfile::TempDir::new().unwrap();
    let server = Server::start(dir.path());
    let mut senders = Vec::new();
    for name in ["a", "b", "c"] {
        let mut client = TestClient::connect(&server.ws_url(&format!("?name={name}"))).await;
        client.expect("welcome").await;
        client.join("busy").await;
        let progress = Arc::new(AtomicUsize::new(0));
        let task = send_until_killed(client, name.to_owned(), 2000, progress.clone());
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
    drop(server);

    let server = Server::start(dir.path());
    let stored = all_messages(&server).await;
    let ids: Vec<u64> = stored.iter().map(|m| m["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "ids without holes");
    let by_text: HashMap<&str, u64> =
        stored.iter().map(|m| (m["text"].as_str().unwrap(), m["id"].as_u64().unwrap())).collect();
    assert_eq!(by_text.len(), stored.len(), "each message stored once");
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
    assert_eq!(after.say("busy", "after the crash").await["id"], ids.len() as u64 + 1);
}
