//! Restarts, heartbeats, graceful shutdown, database failures.

use std::time::Duration;

use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::{get, Next, Server, TestApp, TestClient, TestDb, TIMEOUT};

#[tokio::test]
async fn rooms_and_history_survive_a_restart_and_ids_continue() {
    let app = TestApp::spawn();
    let db = app.db.clone();
    let mut alice = app.member("alice", "lobby").await;
    alice.say("lobby", "before restart").await;
    alice.join("quiet").await;
    alice.send(json!({"type": "direct", "to": "bob", "text": "dm"})).await;
    alice.expect("message").await;
    app.stop().await;

    let app = TestApp::spawn_on(db, |_| {});
    let mut alice = app.client("alice").await;
    alice.send(json!({"type": "rooms"})).await;
    assert_eq!(
        alice.expect("rooms").await["rooms"],
        json!([{"name": "lobby", "members": 0}, {"name": "quiet", "members": 0}])
    );
    let joined = alice.join("lobby").await;
    assert_eq!(joined["history"][0]["text"], "before restart");
    assert_eq!(alice.say("lobby", "after restart").await["id"], 2);
    alice.send(json!({"type": "direct", "to": "bob", "text": "dm 2"})).await;
    assert_eq!(alice.expect("message").await["id"], 2);
}

#[tokio::test]
async fn a_silent_connection_is_closed_and_a_live_one_is_kept() {
    let app = TestApp::spawn_with(|config| {
        config.ping_interval_ms = 100;
        config.client_timeout_ms = 500;
    });
    let mut live = app.client("live").await;
    let mut silent = app.client("silent").await;
    // `live` reads (and so answers pings); `silent` reads nothing meanwhile.
    live.expect_silence(Duration::from_millis(1500)).await;
    // The server closes with 1001; the silent client, whose pongs the
    // closed socket refuses, may see only the connection drop.
    let code = silent.close_code().await;
    assert!(matches!(code, None | Some(CloseCode::Away)), "{code:?}");
    live.send(json!({"type": "rooms"})).await;
    live.expect("rooms").await;
}

/// Sends `count` messages, then waits until the server has taken them all
/// (its `rooms` reply comes after every earlier frame was handed on).
/// Returns the ids acknowledged meanwhile.
async fn send_burst(client: &mut TestClient, room: &str, count: usize) -> Vec<u64> {
    for i in 0..count {
        client
            .send(
                json!({"type": "say", "room": room, "text": format!("m{i}"), "ref": i.to_string()}),
            )
            .await;
    }
    client.send(json!({"type": "rooms"})).await;
    let mut acked = Vec::new();
    loop {
        let frame = client.recv().await;
        match frame["type"].as_str() {
            Some("message") => acked.push(frame["id"].as_u64().unwrap()),
            Some("rooms") => return acked,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Reads the remaining acks until the close frame, which must be 1001, and
/// checks that every message was acknowledged, in order.
async fn expect_acks_then_going_away(client: &mut TestClient, mut acked: Vec<u64>, count: u64) {
    while acked.len() < count as usize {
        let frame = client.expect("message").await;
        acked.push(frame["id"].as_u64().unwrap());
    }
    assert_eq!(acked, (1..=count).collect::<Vec<_>>());
    assert_eq!(client.close_code().await, Some(CloseCode::Away));
}

#[tokio::test]
async fn graceful_shutdown_acknowledges_everything_received_then_closes_with_1001() {
    let mut app = TestApp::spawn();
    let db = app.db.clone();
    let mut alice = app.member("alice", "lobby").await;
    let acked = send_burst(&mut alice, "lobby", 200).await;
    app.begin_stop();
    expect_acks_then_going_away(&mut alice, acked, 200).await;
    app.stop().await;
    let app = TestApp::spawn_on(db, |_| {});
    let page = get(app.url("/api/rooms/lobby/messages?limit=1")).await.json();
    assert_eq!(page["messages"][0]["id"], 200, "every acknowledged message is stored");
}

#[tokio::test]
async fn sigterm_stores_acknowledges_closes_with_1001_and_exits_0() {
    let db = TestDb::new();
    let mut server = Server::start(&db);
    let mut alice = TestClient::connect(&server.ws_url("?name=alice")).await;
    alice.expect("welcome").await;
    alice.join("lobby").await;
    let acked = send_burst(&mut alice, "lobby", 50).await;
    server.signal("TERM");
    expect_acks_then_going_away(&mut alice, acked, 50).await;
    assert!(server.wait().await.success(), "exit status 0");
}

#[tokio::test]
async fn frames_in_flight_at_shutdown_are_each_acknowledged_or_refused() {
    let mut app = TestApp::spawn();
    let db = app.db.clone();
    let mut alice = app.member("alice", "lobby").await;
    for i in 0..300 {
        alice.send(json!({"type": "say", "room": "lobby", "text": format!("m{i}"), "ref": i.to_string()})).await;
    }
    app.begin_stop();
    let (mut acked, mut refused) = (Vec::new(), Vec::new());
    loop {
        match alice.next(TIMEOUT).await {
            Next::Frame(frame) if frame["type"] == "message" => acked.push((
                frame["ref"].as_str().unwrap().parse::<u64>().unwrap(),
                frame["id"].as_u64().unwrap(),
            )),
            Next::Frame(frame) => {
                assert_eq!(frame["code"], "internal", "{frame}");
                refused.push(frame["ref"].as_str().unwrap().parse::<u64>().unwrap());
            }
            Next::Closed(_) => break,
            Next::Silence => panic!("no frame and no close in time"),
        }
    }
    acked.sort();
    refused.sort();
    // The session acted on a prefix of what it read, and refused the rest.
    let acted = acked.len() as u64;
    assert_eq!(acked, (0..acted).map(|r| (r, r + 1)).collect::<Vec<_>>());
    assert_eq!(refused, (acted..acted + refused.len() as u64).collect::<Vec<_>>());
    app.stop().await;
    let app = TestApp::spawn_on(db, |_| {});
    let rooms = get(app.url("/api/rooms")).await.json();
    assert_eq!(rooms[0]["messages"], acted, "exactly the acknowledged messages are stored");
}

#[tokio::test]
async fn a_locked_database_gets_internal_and_takes_no_id() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, SqliteConnection};

    if crate::databases::on_postgres() {
        return; // SQLite's file lock; on Postgres, see postgres.rs (the server stops)
    }
    let app = TestApp::spawn();
    let mut alice = app.member("alice", "lobby").await;
    assert_eq!(alice.say("lobby", "first").await["id"], 1);
    let mut locker = SqliteConnection::establish(app.database()).unwrap();
    locker.batch_execute("BEGIN EXCLUSIVE").unwrap();
    alice.send(json!({"type": "say", "room": "lobby", "text": "blocked", "ref": "b"})).await;
    let error = alice.expect("error").await;
    assert_eq!((error["code"].as_str(), error["ref"].as_str()), (Some("internal"), Some("b")));
    // Reads go on while writes fail.
    alice.send(json!({"type": "history", "room": "lobby"})).await;
    assert_eq!(alice.expect("history").await["messages"][0]["text"], "first");
    assert_eq!(get(app.url("/healthz")).await.status, 200);
    locker.batch_execute("COMMIT").unwrap();
    assert_eq!(alice.say("lobby", "after").await["id"], 2, "the failed message took no id");
    alice.send(json!({"type": "history", "room": "lobby"})).await;
    let texts: Vec<_> = alice.expect("history").await["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["first", "after"]);
}
