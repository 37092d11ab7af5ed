//! What only Postgres has: several walkie processes on one database, a
//! database server that goes away and comes back, a URL that names a
//! server. These run in the Postgres pass of the suite (see `databases`);
//! everything else runs on both stores.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::databases::{on_postgres, Cluster};
use crate::support::{
    all_messages, gapless_by_text, Next, Server, TestApp, TestClient, TestDb, TIMEOUT,
};

/// Sends `count` messages into `room` as fast as the connection takes
/// them (all in flight at once), then reads every answer; returns the
/// acknowledged ids in the order they arrived.
async fn pipeline(url: String, name: String, room: &'static str, count: usize) -> Vec<u64> {
    let mut client = TestClient::connect(&url).await;
    client.expect("welcome").await;
    client.join(room).await;
    for i in 0..count {
        let text = format!("{name}-{i}");
        client.send(json!({"type": "say", "room": room, "text": text, "ref": text})).await;
    }
    let mut acked = Vec::with_capacity(count);
    while acked.len() < count {
        let frame = client.skip_to("message").await;
        if frame["ref"].is_string() {
            acked.push(frame["id"].as_u64().expect("an id"));
        }
    }
    acked
}

#[tokio::test]
async fn two_processes_number_one_rooms_messages_without_holes() {
    if !on_postgres() {
        return;
    }
    let db = TestDb::new();
    // Both start at once on the new database: they take turns migrating it.
    let nodes = std::thread::scope(|scope| {
        let starting = [scope.spawn(|| Server::start(&db)), scope.spawn(|| Server::start(&db))];
        starting.map(|node| node.join().expect("the node starts"))
    });
    let mut senders = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for c in 0..2 {
            let url = node.ws_url(&format!("?name=n{n}c{c}"));
            senders.push(tokio::spawn(pipeline(url, format!("n{n}c{c}"), "shared", 400)));
        }
    }
    let mut acked = Vec::new();
    for sender in senders {
        let ids = sender.await.unwrap();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "one client's acks in id order: {ids:?}");
        acked.extend(ids);
    }
    let stored = all_messages(&nodes[0].url("/api/rooms/shared/messages")).await;
    let by_text = gapless_by_text(&stored); // ids 1..N, no hole, each message once
    assert_eq!(by_text.len(), 1600);
    acked.sort_unstable();
    assert_eq!(acked, (1..=1600).collect::<Vec<_>>(), "every ack names a stored message");
    let seen_by_other = all_messages(&nodes[1].url("/api/rooms/shared/messages")).await;
    assert_eq!(seen_by_other, stored, "both nodes read the same history");
}

/// Sends one message at a time until `stop`, each with a ref; records
/// what was acknowledged (`text -> id`) and counts `internal` errors.
async fn send_one_by_one(
    mut client: TestClient,
    stop: Arc<AtomicBool>,
    acked: Arc<std::sync::Mutex<HashMap<String, u64>>>,
    failed: Arc<AtomicUsize>,
) {
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let text = format!("m{i}");
        i += 1;
        client.send(json!({"type": "say", "room": "lobby", "text": text, "ref": text})).await;
        let answer: Value = match client.next(TIMEOUT).await {
            Next::Frame(frame) => frame,
            other => panic!("no answer to {text}: {other:?}"),
        };
        match answer["type"].as_str() {
            Some("message") => {
                acked.lock().unwrap().insert(text, answer["id"].as_u64().unwrap());
            }
            Some("error") => {
                assert_eq!(answer["code"], "internal", "{answer}");
                failed.fetch_add(1, Ordering::Relaxed);
            }
            _ => panic!("unexpected answer {answer}"),
        }
    }
}

async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_postgres_restart_loses_nothing_acknowledged_and_service_resumes() {
    if !on_postgres() {
        return;
    }
    let cluster = Cluster::postgres();
    let db = TestDb::on_cluster(&cluster.url);
    let app = TestApp::spawn_on(db, |_| {});
    let client = app.member("alice", "lobby").await;
    let (stop, failed) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let acked = Arc::new(std::sync::Mutex::new(HashMap::new()));
    let sender = tokio::spawn(send_one_by_one(client, stop.clone(), acked.clone(), failed.clone()));
    let count = || acked.lock().unwrap().len();
    wait_until("some messages are stored", || count() >= 20).await;

    cluster.halt();
    wait_until("sends fail during the outage", || failed.load(Ordering::Relaxed) >= 2).await;
    let before = count();
    cluster.resume();
    wait_until("sends succeed again", || count() >= before + 20).await;
    stop.store(true, Ordering::Relaxed);
    sender.await.unwrap();

    let stored = all_messages(&app.url("/api/rooms/lobby/messages")).await;
    let by_text = gapless_by_text(&stored);
    for (text, id) in acked.lock().unwrap().iter() {
        assert_eq!(by_text.get(text.as_str()), Some(id), "{text} acknowledged, so stored");
    }
    assert_eq!(get_health(&app).await, 200, "healthy again without a restart of walkie");
}

async fn get_health(app: &TestApp) -> u16 {
    crate::support::get(app.url("/healthz")).await.status
}

#[test]
fn an_unreachable_database_fails_at_start_with_the_reason() {
    if !on_postgres() {
        return;
    }
    let cluster = std::env::var("WALKIE_PG_URL").unwrap();
    let (server, _) = cluster.rsplit_once('/').unwrap();
    let server = server.replacen("walkie@", "walkie:hunter2@", 1);
    assert!(server.contains("hunter2"), "the URL carries a password: {server}");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_walkie"))
        .args(["--bind", "127.0.0.1:0", "--database-url", &format!("{server}/no_such_db")])
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("cannot connect to the Postgres database"), "{stderr}");
    assert!(stderr.contains("\"no_such_db\" does not exist"), "the server's reason: {stderr}");
    assert!(!stderr.contains("hunter2"), "the password stays out of logs: {stderr}");
}

/// Commits wait for Postgres's WAL on disk whatever the server's default:
/// the test cluster's default is `synchronous_commit = off`
/// (scripts/postgres), and walkie's connections say `on`.
#[test]
fn walkies_connections_commit_synchronously() {
    use diesel::sql_types::Text;
    use diesel::RunQueryDsl;

    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = Text)]
        synchronous_commit: String,
    }
    if !on_postgres() {
        return;
    }
    let db = TestDb::new();
    let show = |conn: &mut walkie::db::AnyConnection| {
        let rows: Vec<Setting> = diesel::sql_query("SHOW synchronous_commit").load(conn).unwrap();
        rows[0].synchronous_commit.clone()
    };
    let pool = walkie::db::open(&db.url, 1).unwrap();
    assert_eq!(show(&mut pool.get().unwrap()), "on");
    let mut server_default: walkie::db::AnyConnection = {
        use diesel::Connection;
        walkie::db::AnyConnection::Postgres(diesel::PgConnection::establish(&db.url).unwrap())
    };
    assert_eq!(show(&mut server_default), "off", "the test cluster's default");
}
