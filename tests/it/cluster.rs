//! Several walkie processes sharing a Postgres database and a Redis: what
//! a client sees must not depend on the node it reached. These run in the
//! Postgres pass of the suite (see `databases`), each test with a Redis of
//! its own (scripts/redis).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Barrier;

use crate::databases::{on_postgres, Redis};
use crate::support::{post, Next, Server, TestClient, TestDb, TIMEOUT};

/// A Redis, a database and `n` walkie nodes on them.
struct Nodes {
    redis: Redis,
    nodes: Vec<Server>,
    /// Kept for as long as the nodes use it.
    _db: Arc<TestDb>,
}

impl Nodes {
    fn start(n: usize) -> Self {
        let (redis, db) = (Redis::redis(), TestDb::new());
        // The first migrates the database; the others start together.
        let mut nodes = vec![node(&db, &redis, 0)];
        nodes.extend(std::thread::scope(|scope| {
            let (db, redis) = (&db, &redis);
            let starting: Vec<_> =
                (1..n).map(|i| scope.spawn(move || node(db, redis, i))).collect();
            starting
                .into_iter()
                .map(|node| node.join().expect("the node starts"))
                .collect::<Vec<_>>()
        }));
        Self { redis, nodes, _db: db }
    }

    fn url(&self, node: usize, name: &str) -> String {
        self.nodes[node].ws_url(&format!("?name={name}"))
    }

    async fn client(&self, node: usize, name: &str) -> TestClient {
        let mut client = TestClient::connect(&self.url(node, name)).await;
        client.expect("welcome").await;
        client
    }
}

fn node(db: &TestDb, redis: &Redis, i: usize) -> Server {
    let id = format!("node{i}");
    Server::start_with(&db.url, &["--redis-url", &redis.url, "--node-id", &id])
}

/// alice in `lobby` on node 0, bob on node 1; alice has seen bob come in.
async fn alice_and_bob_in_lobby(cluster: &Nodes) -> (TestClient, TestClient) {
    let mut alice = cluster.client(0, "alice").await;
    alice.join("lobby").await;
    let mut bob = cluster.client(1, "bob").await;
    bob.join("lobby").await;
    let presence = alice.skip_to("presence").await;
    assert_eq!(
        (presence["name"].as_str(), presence["event"].as_str()),
        (Some("bob"), Some("join"))
    );
    (alice, bob)
}

/// Asks `who` until `room` lists `names` (presence crosses nodes within
/// moments, not at once).
async fn wait_for_members(client: &mut TestClient, room: &str, names: &[&str]) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        client.send(json!({"type": "who", "room": room, "ref": "who"})).await;
        let members = client.skip_to_ref("who").await;
        if members["members"] == json!(names) {
            return;
        }
        assert!(Instant::now() < deadline, "{room} never listed {names:?}: {members}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads `message` frames of `room` until `count` distinct ids came, and
/// returns every id in the order it came (a repeat included).
async fn read_ids(client: &mut TestClient, room: &str, count: usize, wait: Duration) -> Vec<u64> {
    let mut ids = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + wait;
    while seen.len() < count {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match client.next(left).await {
            Next::Frame(frame) if frame["type"] == "message" && frame["room"] == room => {
                let id = frame["id"].as_u64().expect("an id");
                ids.push(id);
                seen.insert(id);
            }
            Next::Frame(_) => {}
            other => panic!("{} of {count} messages, then {other:?}", seen.len()),
        }
    }
    ids
}

/// Says `text` (its own `ref`) and returns the acknowledged id, whatever
/// frames come before the acknowledgement.
async fn acked(client: &mut TestClient, room: &str, text: &str) -> u64 {
    client.send(json!({"type": "say", "room": room, "text": text, "ref": text})).await;
    client.skip_to_ref(text).await["id"].as_u64().expect("an id")
}

fn one_to(count: usize) -> Vec<u64> {
    (1..=count as u64).collect()
}

#[tokio::test]
async fn every_member_on_every_node_gets_every_message_once_in_id_order() {
    if !on_postgres() {
        return;
    }
    let cluster = Arc::new(Nodes::start(3));
    let (per_client, clients) = (150, 6);
    let total = per_client * clients;
    let ready = Arc::new(Barrier::new(clients));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (cluster, ready) = (cluster.clone(), ready.clone());
        tasks.push(tokio::spawn(async move {
            let name = format!("member{c}");
            let mut client = cluster.client(c % 3, &name).await;
            client.join("shared").await;
            ready.wait().await;
            for i in 0..per_client {
                let text = format!("{name}-{i}");
                client.send(json!({"type": "say", "room": "shared", "text": text})).await;
            }
            let ids = read_ids(&mut client, "shared", total, Duration::from_secs(60)).await;
            (client, ids)
        }));
    }
    let mut clients_left = Vec::new();
    for task in tasks {
        let (client, ids) = task.await.unwrap();
        assert_eq!(ids, one_to(total), "every message once, in id order, on every node");
        clients_left.push(client);
    }
    let mut late = cluster.client(2, "late").await;
    let names: Vec<String> = (0..clients).map(|c| format!("member{c}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    wait_for_members(&mut late, "shared", &names).await;
    late.send(json!({"type": "rooms", "ref": "rooms"})).await;
    let rooms = late.skip_to_ref("rooms").await;
    assert_eq!(rooms["rooms"], json!([{"name": "shared", "members": clients}]));
}

#[tokio::test]
async fn presence_crosses_nodes_and_a_killed_nodes_members_leave_and_resume_elsewhere() {
    if !on_postgres() {
        return;
    }
    let mut cluster = Nodes::start(3);
    let (mut alice, mut bob) = alice_and_bob_in_lobby(&cluster).await;
    let mut carol = cluster.client(2, "carol").await;
    wait_for_members(&mut carol, "lobby", &["alice", "bob"]).await;
    let joined = carol.join("lobby").await;
    assert_eq!(joined["members"], json!(["alice", "bob", "carol"]));
    let seen = acked(&mut bob, "lobby", "before the crash").await;

    cluster.nodes[1].signal("KILL");
    let killed = Instant::now();
    loop {
        match alice.next(Duration::from_secs(20).saturating_sub(killed.elapsed())).await {
            Next::Frame(frame) if frame["type"] == "presence" && frame["name"] == "bob" => {
                assert_eq!(frame["event"], "leave");
                break;
            }
            Next::Frame(_) => {}
            other => panic!("bob never left: {other:?}"),
        }
    }
    eprintln!("a killed node's member left after {:?}", killed.elapsed());
    let mut sent = Vec::new();
    for text in ["while bob was away 1", "while bob was away 2"] {
        sent.push(acked(&mut alice, "lobby", text).await);
    }
    // bob comes back through another node, from the last id he saw.
    let mut bob = cluster.client(2, "bob").await;
    bob.send(json!({"type": "join", "room": "lobby", "since": seen})).await;
    let joined = bob.expect("joined").await;
    let history: Vec<u64> =
        joined["history"].as_array().unwrap().iter().map(|m| m["id"].as_u64().unwrap()).collect();
    assert_eq!(history, sent, "exactly what bob missed");
    // Whether carol saw bob go and come back depends on which her node
    // noticed first, bob's death or his return; either way he is there.
    wait_for_members(&mut carol, "lobby", &["alice", "bob", "carol"]).await;
    drop(cluster.nodes.remove(1));
}

#[tokio::test]
async fn messages_lost_by_redis_are_caught_up_from_the_store() {
    if !on_postgres() {
        return;
    }
    let cluster = Arc::new(Nodes::start(2));
    let mut reader = cluster.client(1, "reader").await;
    reader.join("busy").await;
    let total = 600;
    let writer = {
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let mut writer = cluster.client(0, "writer").await;
            writer.join("busy").await;
            for i in 0..total {
                let text = format!("m{i}");
                writer
                    .send(json!({"type": "say", "room": "busy", "text": text, "ref": text}))
                    .await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let acked = read_ids(&mut writer, "busy", total, Duration::from_secs(30)).await;
            assert_eq!(acked, one_to(total));
            writer
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = cluster.redis.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert!(killed.trim().parse::<u32>().unwrap_or(0) >= 2, "both subscribers killed: {killed}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    cluster.redis.halt();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    cluster.redis.resume();
    let ids = read_ids(&mut reader, "busy", total, Duration::from_secs(60)).await;
    assert_eq!(ids, one_to(total), "nothing lost, nothing twice, in order");
    let _writer = writer.await.unwrap();
    // The restarted Redis lost every node's presence; the nodes wrote it again.
    wait_for_members(&mut reader, "busy", &["reader", "writer"]).await;
}

#[tokio::test]
async fn a_join_and_a_say_sent_together_in_a_room_made_elsewhere_count_once() {
    if !on_postgres() {
        return;
    }
    let cluster = Nodes::start(2);
    let mut alice = cluster.client(0, "alice").await;
    for round in 0..5 {
        let room = format!("elsewhere{round}");
        alice.send(json!({"type": "join", "room": room})).await;
        alice.skip_to("joined").await;
        for i in 0..3 {
            acked(&mut alice, &room, &format!("before {i}")).await;
        }
        // bob's node has not followed this room: its join reads the room's
        // latest id while his `say` waits to be stored.
        let mut bob = cluster.client(1, "bob").await;
        bob.send(json!({"type": "join", "room": room})).await;
        bob.send(json!({"type": "say", "room": room, "text": "mine", "ref": "mine"})).await;
        let mut seen = Vec::new();
        while seen.len() < 4 {
            let frame = bob.recv().await;
            match frame["type"].as_str() {
                Some("joined") => seen.extend(
                    frame["history"].as_array().unwrap().iter().map(|m| m["id"].as_u64().unwrap()),
                ),
                Some("message") => seen.push(frame["id"].as_u64().unwrap()),
                _ => {}
            }
        }
        assert_eq!(seen, [1, 2, 3, 4], "round {round}: each message once, in order");
        bob.expect_silence(Duration::from_millis(300)).await;
        bob.close().await;
    }
}

#[tokio::test]
async fn direct_messages_mentions_typing_read_cursors_and_resends_cross_nodes() {
    if !on_postgres() {
        return;
    }
    let cluster = Nodes::start(3);
    let mut alice = cluster.client(0, "alice").await;
    let mut bob_tab1 = cluster.client(1, "bob").await;
    let mut bob_tab2 = cluster.client(2, "bob").await;
    bob_tab1.join("bobs").await;
    alice.join("lobby").await;
    wait_for_members(&mut alice, "bobs", &["bob"]).await;

    alice.send(json!({"type": "direct", "to": "bob", "text": "psst"})).await;
    alice.expect("message").await;
    for tab in [&mut bob_tab1, &mut bob_tab2] {
        let message = tab.skip_to("message").await;
        assert_eq!(
            (message["room"].as_str(), message["text"].as_str()),
            (Some("@alice+bob"), Some("psst"))
        );
    }
    alice.send(json!({"type": "typing", "room": "@alice+bob"})).await;
    assert_eq!(bob_tab2.skip_to("typing").await["from"], "alice");

    alice.say("lobby", "ping @bob").await;
    for tab in [&mut bob_tab1, &mut bob_tab2] {
        let mention = tab.skip_to("mention").await;
        assert_eq!(
            (mention["room"].as_str(), mention["text"].as_str()),
            (Some("lobby"), Some("ping @bob"))
        );
    }

    bob_tab1.send(json!({"type": "read", "room": "@alice+bob", "id": 1, "ref": "r"})).await;
    bob_tab1.skip_to_ref("r").await;
    let read = bob_tab2.skip_to("read").await;
    assert_eq!((read["room"].as_str(), read["id"].as_u64()), (Some("@alice+bob"), Some(1)));

    let say = |reference: &str| json!({"type": "say", "room": "lobby", "text": "once", "idempotency_key": "k1", "ref": reference});
    alice.send(say("first")).await;
    let first = alice.skip_to_ref("first").await;
    let mut alice_elsewhere = cluster.client(2, "alice").await;
    alice_elsewhere.join("lobby").await;
    alice_elsewhere.send(say("again")).await;
    let again = alice_elsewhere.skip_to_ref("again").await;
    assert_eq!(
        (again["id"].clone(), again["ts"].clone()),
        (first["id"].clone(), first["ts"].clone())
    );

    // An HTTP POST on one node reaches the members on the others, live.
    let url = cluster.nodes[1].url("/api/rooms/lobby/messages");
    let posted = post(url, json!({"from": "deploybot", "text": "deployed"})).await;
    assert_eq!(posted.status, 201, "{}", posted.body);
    let live = alice_elsewhere.skip_to("message").await;
    assert_eq!(
        (live["from"].as_str(), live["text"].as_str()),
        (Some("deploybot"), Some("deployed"))
    );
}

#[test]
fn redis_without_postgres_is_refused_at_start() {
    let dir = tempfile::TempDir::new().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_walkie"))
        .args(["--bind", "127.0.0.1:0", "--redis-url", "redis://127.0.0.1:1"])
        .args(["--database-url", &dir.path().join("x.db").to_string_lossy()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--redis-url needs a Postgres --database-url"), "{stderr}");
}

#[tokio::test]
async fn a_stopped_nodes_members_leave_before_its_presence_could_expire() {
    if !on_postgres() {
        return;
    }
    let mut cluster = Nodes::start(2);
    let (mut alice, mut bob) = alice_and_bob_in_lobby(&cluster).await;
    cluster.nodes[1].signal("TERM");
    let stopped = Instant::now();
    assert_eq!(
        bob.close_code().await,
        Some(tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Away)
    );
    let left = alice.skip_to("presence").await;
    assert_eq!((left["name"].as_str(), left["event"].as_str()), (Some("bob"), Some("leave")));
    // A dead node's members leave only once its presence expires (4 s,
    // then two checks); a stopped node says it leaves.
    assert!(stopped.elapsed() < Duration::from_secs(3), "{:?}", stopped.elapsed());
    assert!(cluster.nodes[1].wait().await.success());
}

#[tokio::test]
async fn direct_messages_sent_while_redis_is_down_still_arrive_in_order() {
    if !on_postgres() {
        return;
    }
    let cluster = Nodes::start(2);
    let mut alice = cluster.client(0, "alice").await;
    for text in ["one", "two"] {
        alice.send(json!({"type": "direct", "to": "bob", "text": text, "ref": text})).await;
        alice.skip_to_ref(text).await;
    }
    // bob's node heard of them, and forgets a conversation nobody there
    // listens to at its next check (every second).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // It follows bob's conversations from where they are when he connects.
    let mut bob = cluster.client(1, "bob").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.redis.halt();
    for text in ["three", "four"] {
        alice.send(json!({"type": "direct", "to": "bob", "text": text, "ref": text})).await;
        alice.skip_to_ref(text).await;
    }
    // Nothing was published: bob's node reads them from Postgres.
    let ids = read_ids(&mut bob, "@alice+bob", 2, Duration::from_secs(10)).await;
    assert_eq!(ids, [3, 4]);
    cluster.redis.resume();
}
