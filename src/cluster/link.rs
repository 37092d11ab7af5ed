//! The node's two Redis connections and the tasks that use them.
//!
//! - The writer publishes what the `ChatServer` hands it, keeps this
//!   node's presence in the hash `walkie:node:<id>` (a field per entry, and
//!   `seq`, the number of the last change), refreshes that hash's time to
//!   live every [`HEARTBEAT`], and watches the other nodes' hashes: one
//!   missing at two checks in a row belongs to a dead node.
//! - The subscriber is a connection of its own (a subscribed connection
//!   takes no other commands on RESP2), listening to `walkie:events`. The
//!   client library reconnects it and subscribes again; what was published
//!   meanwhile is lost, so after every reconnection the other nodes'
//!   presence is read again and the `ChatServer` compares its channels
//!   with the store ([`FromCluster::CatchUp`]).
//!
//! Failures are logged once per outage, not per command: Redis down, the
//! node goes on serving its own clients (see docs/scale-out.md).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use actix::Recipient;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ProtocolVersion, PushKind, RedisError, Value};
use tokio::sync::mpsc;

use super::{Entry, Envelope, Event, FromCluster, NodeId, Outgoing};

/// The one pub/sub channel every node publishes to and listens on.
const EVENTS: &str = "walkie:events";
/// The set of node ids, for finding the others' presence hashes.
const NODES: &str = "walkie:nodes";
/// The presence hash field holding the number of the last change.
const SEQ: &str = "seq";
/// How often a node refreshes its presence and checks the others'.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a node's presence outlives its last heartbeat.
pub const NODE_TTL: Duration = Duration::from_secs(4);
/// How long one Redis command may take before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Most things the writer sends to Redis in one round trip.
const MAX_PIPELINE: usize = 512;

fn node_key(node: &str) -> String {
    format!("walkie:node:{node}")
}

/// Starts the writer and the subscriber; returns where the writer takes
/// its work from.
pub(super) fn start(
    url: &str,
    node: NodeId,
    chat: Recipient<FromCluster>,
) -> Result<mpsc::UnboundedSender<Outgoing>, RedisError> {
    let client = Client::open(url)?;
    let info = client.get_connection_info().clone();
    let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
    let subscriber_client = Client::open(info.set_redis_settings(settings))?;
    let (sender, receiver) = mpsc::unbounded_channel();
    let (pushes, push_receiver) = mpsc::unbounded_channel();
    let writer = ConnectionManager::new_lazy_with_config(client, manager_config())?;
    let config = manager_config().set_push_sender(pushes).set_automatic_resubscription();
    let subscriber = ConnectionManager::new_lazy_with_config(subscriber_client, config)?;
    let mut writer = Writer::new(writer, node.clone(), chat.clone());
    actix::spawn(async move { writer.run(receiver).await });
    let mut listener = Subscriber { conn: subscriber, node, chat, lost: true, subscribed: false };
    actix::spawn(async move { listener.run(push_receiver).await });
    Ok(sender)
}

/// Commands fail within seconds when Redis is away, instead of waiting.
fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(COMMAND_TIMEOUT))
        .set_response_timeout(Some(COMMAND_TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(HEARTBEAT)
}

/// Logs the start and the end of an outage, once each.
struct Health {
    what: &'static str,
    healthy: bool,
    /// When Redis last came back after failing.
    back_since: Option<Instant>,
}

impl Health {
    fn new(what: &'static str) -> Self {
        Self { what, healthy: true, back_since: None }
    }

    /// Redis came back less than `period` ago.
    fn back_within(&self, period: Duration) -> bool {
        self.back_since.is_some_and(|since| since.elapsed() < period)
    }

    fn report<T>(&mut self, result: Result<T, RedisError>) -> Option<T> {
        match result {
            Ok(value) => {
                if !self.healthy {
                    log::info!("Redis is back for the {}", self.what);
                    self.healthy = true;
                    self.back_since = Some(Instant::now());
                }
                Some(value)
            }
            Err(error) => {
                if self.healthy {
                    log::warn!(
                        "Redis failed for the {} ({error}); this node goes on serving its own \
                         clients and retries every second; check that Redis is up",
                        self.what
                    );
                    self.healthy = false;
                }
                None
            }
        }
    }
}

/// The writer's state: see the module doc.
struct Writer {
    conn: ConnectionManager,
    node: NodeId,
    chat: Recipient<FromCluster>,
    /// This node's presence, as hash fields.
    entries: HashSet<String>,
    /// The number of the last presence change.
    seq: u64,
    /// Redis may not hold what `entries` says: write it all again.
    dirty: bool,
    /// Other nodes heard of, and whether their hash was missing at the last check.
    others: HashMap<NodeId, bool>,
    health: Health,
}

impl Writer {
    fn new(conn: ConnectionManager, node: NodeId, chat: Recipient<FromCluster>) -> Self {
        let health = Health::new("publishing");
        let (entries, others) = (HashSet::new(), HashMap::new());
        Self { conn, node, chat, entries, seq: 0, dirty: true, others, health }
    }

    async fn run(&mut self, mut receiver: mpsc::UnboundedReceiver<Outgoing>) {
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                first = receiver.recv() => {
                    let Some(first) = first else { return };
                    let mut batch = vec![first];
                    while batch.len() < MAX_PIPELINE {
                        match receiver.try_recv() {
                            Ok(next) => batch.push(next),
                            Err(_) => break,
                        }
                    }
                    self.write(batch).await;
                }
                _ = heartbeat.tick() => self.heartbeat().await,
            }
        }
    }

    fn envelope(&self, event: Event) -> String {
        let envelope = Envelope { node: self.node.clone(), event };
        // ok: an envelope holds strings, numbers and validated names only.
        serde_json::to_string(&envelope).unwrap_or_default()
    }

    /// One round trip for a batch: publishes, and presence changes with
    /// their hash updates, in one transaction so the hash and its `seq`
    /// always agree.
    async fn write(&mut self, batch: Vec<Outgoing>) {
        let key = node_key(&self.node);
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut reloads = Vec::new();
        for outgoing in batch {
            match outgoing {
                Outgoing::Publish(event) => {
                    pipe.publish(EVENTS, self.envelope(event)).ignore();
                }
                Outgoing::Presence(entry, present) => {
                    self.seq += 1;
                    let field = entry.field();
                    if present {
                        pipe.hset(&key, &field, 1).ignore();
                        self.entries.insert(field.clone());
                    } else {
                        pipe.hdel(&key, &field).ignore();
                        self.entries.remove(&field);
                    }
                    pipe.hset(&key, SEQ, self.seq).ignore();
                    let event = Event::Presence { seq: self.seq, entry: field, present };
                    pipe.publish(EVENTS, self.envelope(event)).ignore();
                }
                Outgoing::Reload(node) => reloads.push(node),
            }
        }
        if !pipe.is_empty() {
            let result = pipe.exec_async(&mut self.conn).await;
            if self.health.report(result).is_none() {
                self.dirty = true; // the hash may have missed changes
            }
        }
        for node in reloads {
            self.reload(node).await;
        }
    }

    /// Reads `node`'s presence and hands it to the `ChatServer`.
    async fn reload(&mut self, node: NodeId) {
        let result = read_presence(&mut self.conn, node).await;
        if let Some(snapshot) = self.health.report(result) {
            self.chat.do_send(snapshot);
        }
    }

    /// Keeps this node's presence alive (writing it whole when Redis may
    /// have lost it), and looks for nodes whose presence expired.
    async fn heartbeat(&mut self) {
        let key = node_key(&self.node);
        let ttl = i64::try_from(NODE_TTL.as_millis()).unwrap_or(i64::MAX);
        let mut pipe = redis::pipe();
        pipe.atomic();
        if self.dirty {
            let mut fields: Vec<(&str, String)> = vec![(SEQ, self.seq.to_string())];
            fields.extend(self.entries.iter().map(|field| (field.as_str(), "1".to_owned())));
            pipe.del(&key).ignore().hset_multiple(&key, &fields).ignore();
            pipe.publish(EVENTS, self.envelope(Event::Resync)).ignore();
        }
        pipe.pexpire(&key, ttl).sadd(NODES, &self.node).ignore().smembers(NODES);
        let result = pipe.query_async(&mut self.conn).await;
        let Some((alive, nodes)) = self.health.report::<(bool, HashSet<String>)>(result) else {
            self.dirty = true;
            return;
        };
        // The key was gone (Redis restarted, or this node was cut off
        // longer than its time to live): write it whole next time.
        self.dirty = !alive;
        for node in nodes {
            if node != self.node {
                self.others.entry(node).or_insert(false);
            }
        }
        self.check_others().await;
    }

    /// A node whose hash is missing at two checks in a row is gone. Not
    /// within [`NODE_TTL`] of Redis coming back to this node, though: a
    /// restarted Redis lost every hash, and the other nodes, cut off too,
    /// may take that long to write theirs again.
    async fn check_others(&mut self) {
        let nodes: Vec<NodeId> = self.others.keys().cloned().collect();
        if nodes.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for node in &nodes {
            pipe.exists(node_key(node));
        }
        let result = pipe.query_async(&mut self.conn).await;
        let Some(exist) = self.health.report::<Vec<bool>>(result) else {
            return;
        };
        let settling = self.health.back_within(NODE_TTL);
        for (node, exists) in nodes.into_iter().zip(exist) {
            let missing = !exists && !settling;
            let missed_before = self.others.insert(node.clone(), missing).unwrap_or(false);
            if missing && missed_before {
                log::warn!("node {node} stopped refreshing its presence: its members leave");
                self.others.remove(&node);
                let result =
                    redis::cmd("SREM").arg(NODES).arg(&node).exec_async(&mut self.conn).await;
                self.health.report(result);
                self.chat.do_send(FromCluster::NodeGone { node });
            }
        }
    }
}

/// `node`'s whole presence, as a snapshot for the `ChatServer`.
async fn read_presence(
    conn: &mut ConnectionManager,
    node: NodeId,
) -> Result<FromCluster, RedisError> {
    let fields: HashMap<String, String> =
        redis::cmd("HGETALL").arg(node_key(&node)).query_async(conn).await?;
    let seq = fields.get(SEQ).and_then(|seq| seq.parse().ok()).unwrap_or(0);
    let entries = fields.keys().filter_map(|field| Entry::parse(field)).collect();
    Ok(FromCluster::Snapshot { node, seq, entries })
}

/// The subscriber's state: see the module doc.
struct Subscriber {
    conn: ConnectionManager,
    node: NodeId,
    chat: Recipient<FromCluster>,
    /// Events may have been missed since the last catch-up.
    lost: bool,
    subscribed: bool,
}

impl Subscriber {
    async fn run(&mut self, mut pushes: mpsc::UnboundedReceiver<redis::PushInfo>) {
        let mut health = Health::new("subscription");
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                push = pushes.recv() => {
                    let Some(push) = push else { return };
                    match push.kind {
                        PushKind::Message => self.receive(push.data),
                        PushKind::Disconnection => {
                            log::warn!("the Redis subscription broke: reconnecting, then catching up");
                            self.lost = true;
                        }
                        _ => {}
                    }
                }
                _ = tick.tick() => {
                    let result = self.resume().await;
                    health.report(result);
                }
            }
        }
    }

    /// Subscribes if not yet done, and after events may have been lost,
    /// once the connection answers again (it has subscribed again by
    /// then), reads the others' presence and asks for a catch-up.
    async fn resume(&mut self) -> Result<(), RedisError> {
        if !self.subscribed {
            self.conn.subscribe(EVENTS).await?;
            self.subscribed = true;
        }
        if !self.lost {
            return Ok(());
        }
        redis::cmd("PING").exec_async(&mut self.conn).await?;
        let nodes: HashSet<String> =
            redis::cmd("SMEMBERS").arg(NODES).query_async(&mut self.conn).await?;
        for node in nodes.into_iter().filter(|node| *node != self.node) {
            self.chat.do_send(read_presence(&mut self.conn, node).await?);
        }
        self.lost = false;
        log::info!("subscribed to {EVENTS}; catching up with the store");
        self.chat.do_send(FromCluster::CatchUp);
        Ok(())
    }

    /// A published envelope: handed to the `ChatServer` unless it is ours.
    fn receive(&self, data: Vec<Value>) {
        let Some(Value::BulkString(payload)) = data.into_iter().nth(1) else {
            return;
        };
        match serde_json::from_slice::<Envelope>(&payload) {
            Ok(Envelope { node, .. }) if node == self.node => {}
            Ok(Envelope { node, event }) => self.chat.do_send(FromCluster::Event { node, event }),
            Err(error) => log::warn!("ignored an event on {EVENTS} that does not parse: {error}"),
        }
    }
}
