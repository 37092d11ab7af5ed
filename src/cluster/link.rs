//! The node's two Redis connections: the writer (`writer.rs`) and the
//! subscriber (here), and what they share.
//!
//! - The writer publishes what the `ChatServer` hands it and keeps this
//!   node's presence alive in Redis.
//! - The subscriber is a connection of its own (a subscribed connection
//!   takes no other commands on RESP2), listening to the cluster's events
//!   channel. The client library reconnects it and subscribes again; what
//!   was published meanwhile is lost, so after every reconnection the
//!   other nodes' presence is read again and the `ChatServer` compares its
//!   channels with the store ([`Hear::CatchUp`]).
//!
//! Every key and the channel start with `walkie:<database>:` (see
//! [`Keys`]): clusters on different databases may share a Redis.
//! Failures are logged once per outage, not per command: Redis down, the
//! node goes on serving its own clients (see docs/scale-out.md).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use actix::Recipient;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ProtocolVersion, PushKind, RedisError, Value};
use tokio::sync::mpsc;

use super::writer::Writer;
use super::{Entry, Envelope, Hear, NodeId, Outgoing};

/// How often a node refreshes its presence and checks the others'.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a node's presence outlives its last heartbeat.
pub const NODE_TTL: Duration = Duration::from_secs(4);
/// How long one Redis command may take before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// The presence hash field holding the number of the last change.
pub(super) const SEQ: &str = "seq";

/// The names of the cluster's channel and keys.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    /// The pub/sub channel every node publishes to and listens on.
    pub events: String,
    /// The set of node ids, for finding the others' presence hashes.
    pub nodes: String,
    prefix: String,
}

impl Keys {
    /// The keys of the cluster on database `namespace`.
    pub fn new(namespace: &str) -> Self {
        let prefix = format!("walkie:{namespace}:");
        Self { events: format!("{prefix}events"), nodes: format!("{prefix}nodes"), prefix }
    }

    /// The hash holding `node`'s presence.
    pub fn node(&self, node: &str) -> String {
        format!("{}node:{node}", self.prefix)
    }
}

/// Starts the writer and the subscriber; returns where the writer takes
/// its work from.
pub(super) fn start(
    url: &str,
    namespace: &str,
    node: NodeId,
    chat: Recipient<Hear>,
) -> Result<mpsc::UnboundedSender<Outgoing>, RedisError> {
    let client = Client::open(url)?;
    let info = client.get_connection_info().clone();
    let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
    let subscriber_client = Client::open(info.set_redis_settings(settings))?;
    let keys = Keys::new(namespace);
    let (sender, receiver) = mpsc::unbounded_channel();
    let (pushes, push_receiver) = mpsc::unbounded_channel();
    let writer = ConnectionManager::new_lazy_with_config(client, manager_config())?;
    let config = manager_config().set_push_sender(pushes).set_automatic_resubscription();
    let subscriber = ConnectionManager::new_lazy_with_config(subscriber_client, config)?;
    let mut writer = Writer::new(writer, keys.clone(), node.clone(), chat.clone());
    actix::spawn(async move { writer.run(receiver).await });
    let own = format!("{{\"node\":{},", serde_json::Value::from(node.clone()));
    let mut listener =
        Subscriber { conn: subscriber, keys, node, own, chat, lost: true, subscribed: false };
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
pub(super) struct Health {
    what: &'static str,
    /// The last command succeeded.
    pub healthy: bool,
    /// When Redis last came back after failing.
    back_since: Option<Instant>,
}

impl Health {
    pub fn new(what: &'static str) -> Self {
        Self { what, healthy: true, back_since: None }
    }

    /// Redis came back less than `period` ago.
    pub fn back_within(&self, period: Duration) -> bool {
        self.back_since.is_some_and(|since| since.elapsed() < period)
    }

    /// The value, or `None` after logging the failure (once per outage).
    pub fn report<T>(&mut self, result: Result<T, RedisError>) -> Option<T> {
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

/// `node`'s whole presence, as a snapshot for the `ChatServer`.
pub(super) async fn read_presence(
    conn: &mut ConnectionManager,
    keys: &Keys,
    node: NodeId,
) -> Result<Hear, RedisError> {
    let fields: HashMap<String, String> =
        redis::cmd("HGETALL").arg(keys.node(&node)).query_async(conn).await?;
    let seq = fields.get(SEQ).and_then(|seq| seq.parse().ok()).unwrap_or(0);
    let entries = fields.keys().filter_map(|field| Entry::parse(field)).collect();
    Ok(Hear::Snapshot { node, seq, entries })
}

/// The subscriber's state: see the module doc.
struct Subscriber {
    conn: ConnectionManager,
    keys: Keys,
    node: NodeId,
    /// How this node's own envelopes begin (`{"node":"<id>",`): they come
    /// back like everyone's and are dropped unparsed.
    own: String,
    chat: Recipient<Hear>,
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
            self.conn.subscribe(&self.keys.events).await?;
            self.subscribed = true;
        }
        if !self.lost {
            return Ok(());
        }
        redis::cmd("PING").exec_async(&mut self.conn).await?;
        let nodes: HashSet<String> =
            redis::cmd("SMEMBERS").arg(&self.keys.nodes).query_async(&mut self.conn).await?;
        for node in nodes.into_iter().filter(|node| *node != self.node) {
            self.chat.do_send(read_presence(&mut self.conn, &self.keys, node).await?);
        }
        self.lost = false;
        log::info!("subscribed to {}; catching up with the store", self.keys.events);
        self.chat.do_send(Hear::CatchUp);
        Ok(())
    }

    /// A published envelope: handed to the `ChatServer` unless it is ours.
    fn receive(&self, data: Vec<Value>) {
        let Some(Value::BulkString(payload)) = data.into_iter().nth(1) else {
            return;
        };
        if payload.starts_with(self.own.as_bytes()) {
            return;
        }
        match serde_json::from_slice::<Envelope>(&payload) {
            Ok(Envelope { node, .. }) if node == self.node => {}
            Ok(Envelope { node, event }) => self.chat.do_send(Hear::Event { node, event }),
            Err(error) => log::warn!("ignored an event that does not parse: {error}"),
        }
    }
}
