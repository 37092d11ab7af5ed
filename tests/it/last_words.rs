//! Frames a client sends right before it goes are acted on: a script that
//! connects, joins, says one thing and closes (with a Close frame, or by
//! shutting its write side) has its message stored and delivered.

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::support::{all_messages, ids, TestApp, TestClient};

/// Connections per test, all at once, so that commits are under way while
/// their frames arrive (the race that lost them).
const BOTS: usize = 300;

/// How a bot goes after its `say`.
#[derive(Clone, Copy)]
enum Ending {
    CloseFrame,
    Eof,
}

/// Runs `BOTS` bots that each pipeline `join` + `say` and go at once, and
/// checks that a member of the room got every message live and that every
/// one is stored, ids 1..=BOTS.
async fn every_last_message_is_stored_and_delivered(ending: Ending) {
    let app = TestApp::spawn();
    let mut watcher = app.member("watcher", "last").await;
    let url = app.ws_url("?name=bot");
    let bots = (0..BOTS).map(|i| {
        let url = url.clone();
        async move {
            let mut bot = TestClient::connect(&url).await;
            bot.send(json!({"type": "join", "room": "last"})).await;
            bot.send(json!({"type": "say", "room": "last", "text": format!("bye {i}")})).await;
            match ending {
                Ending::CloseFrame => bot.close_and_wait().await,
                Ending::Eof => bot.shut_write_and_wait().await,
            }
        }
    });
    join_all(bots).await;
    let mut texts = Vec::new();
    while texts.len() < BOTS {
        let frame = watcher.recv().await;
        if frame["type"] == "message" {
            texts.push(frame["text"].as_str().unwrap_or_default().to_owned());
        }
    }
    texts.sort();
    let mut expected: Vec<String> = (0..BOTS).map(|i| format!("bye {i}")).collect();
    expected.sort();
    assert_eq!(texts, expected, "the watcher saw every bot's message, once");
    let stored = Value::Array(all_messages(&app.url("/api/rooms/last/messages")).await);
    assert_eq!(ids(&stored), (1..=BOTS as u64).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_say_right_before_a_close_frame_is_stored_and_delivered() {
    every_last_message_is_stored_and_delivered(Ending::CloseFrame).await;
}

#[tokio::test]
async fn a_say_right_before_eof_is_stored_and_delivered() {
    every_last_message_is_stored_and_delivered(Ending::Eof).await;
}
