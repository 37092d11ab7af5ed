//! A session's frames are acted on in the order it sent them, whatever
//! the server is busy with: a client that pipelines `join`, `read` and
//! `rooms` right after connecting gets `joined`, its cursor, and a list
//! that holds the room, never `internal` or `not_in_room`. (The answers
//! may come in another order: `read` is answered once stored.)

use futures_util::future::join_all;
use serde_json::json;

use crate::support::TestApp;

/// Connections at once, so that commits (their joins' cursors) are under
/// way while the next ones connect: the race that answered a join before
/// the server knew its session.
const BOTS: usize = 300;

/// Rounds of [`BOTS`]: one round loses the race now and then, not always.
const ROUNDS: usize = 5;

#[tokio::test]
async fn pipelined_frames_after_connecting_are_answered_in_order() {
    let app = TestApp::spawn();
    for round in 0..ROUNDS {
        one_round(&app, round).await;
    }
}

async fn one_round(app: &TestApp, round: usize) {
    let bots = (0..BOTS).map(|i| {
        let url = app.ws_url(&format!("?name=bot{round}x{i}"));
        async move {
            let mut bot = crate::support::TestClient::connect(&url).await;
            bot.send(json!({"type": "join", "room": "busy", "ref": "j"})).await;
            bot.send(json!({"type": "read", "room": "busy", "id": 1, "ref": "r"})).await;
            bot.send(json!({"type": "rooms", "ref": "l"})).await;
            let mut answers = Vec::new();
            while answers.len() < 3 {
                let frame = bot.recv().await;
                if frame["type"] != "presence" && frame["type"] != "welcome" {
                    answers.push(frame);
                }
            }
            answers.sort_by_key(|answer| answer["ref"].as_str().map(str::to_owned));
            let kinds: Vec<_> = answers.iter().map(|answer| answer["type"].clone()).collect();
            assert_eq!(kinds, [json!("joined"), json!("rooms"), json!("read")], "{answers:?}");
            let rooms = answers[1]["rooms"].as_array().unwrap();
            assert!(rooms.iter().any(|room| room["name"] == "busy"), "{rooms:?}");
            bot.close().await;
        }
    });
    join_all(bots).await;
}
