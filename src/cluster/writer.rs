//! [`Writer`]: the task on the node's first Redis connection. It publishes
//! what the `ChatServer` hands it, keeps this node's presence in the hash
//! `walkie:<database>:node:<id>` (a field per entry, and `seq`, the number
//! of the last change), refreshes that hash's time to live every
//! [`HEARTBEAT`], and watches the other nodes' hashes: one missing at two
//! checks in a row belongs to a dead node.
//!
//! While Redis fails, it still takes everything handed to it, so nothing
//! piles up: publishes are dropped (the other nodes read the messages back
//! from the store), presence changes are kept in memory, and the whole
//! hash is written again once Redis answers.

use std::collections::{HashMap, HashSet};

use actix::Recipient;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

use super::link::{read_presence, Health, Keys, HEARTBEAT, NODE_TTL, SEQ};
use super::{Envelope, Event, Hear, NodeId, Outgoing};

/// Most things sent to Redis in one round trip.
const MAX_PIPELINE: usize = 512;

/// See the module doc.
pub(super) struct Writer {
    conn: ConnectionManager,
    keys: Keys,
    node: NodeId,
    chat: Recipient<Hear>,
    /// This node's presence, as hash fields.
    entries: HashSet<String>,
    /// The number of the last presence change.
    seq: u64,
    /// Redis may not hold what `entries` says: write it all again.
    dirty: bool,
    /// Other nodes heard of, and whether their hash was missing at the last check.
    others: HashMap<NodeId, bool>,
    health: Health,
    /// The node left the cluster (shutdown): nothing more is written.
    left: bool,
}

impl Writer {
    pub fn new(conn: ConnectionManager, keys: Keys, node: NodeId, chat: Recipient<Hear>) -> Self {
        let health = Health::new("publishing");
        let (entries, others) = (HashSet::new(), HashMap::new());
        let (seq, dirty, left) = (0, true, false);
        Self { conn, keys, node, chat, entries, seq, dirty, others, health, left }
    }

    pub async fn run(&mut self, mut receiver: mpsc::UnboundedReceiver<Outgoing>) {
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

    fn ttl_ms() -> i64 {
        i64::try_from(NODE_TTL.as_millis()).unwrap_or(i64::MAX)
    }

    /// One round trip for a batch: publishes, and presence changes with
    /// their hash updates, in one transaction so the hash and its `seq`
    /// always agree. The hash's time to live is checked first (gone: write
    /// it whole at the next heartbeat) and set again last.
    async fn write(&mut self, batch: Vec<Outgoing>) {
        let key = self.keys.node(&self.node);
        let mut pipe = redis::pipe();
        pipe.atomic().pexpire(&key, Self::ttl_ms());
        let mut reloads = Vec::new();
        let mut leaving = None;
        for outgoing in batch {
            match outgoing {
                _ if self.left => {}
                Outgoing::Leave(done) => {
                    // Last in this transaction: what came before is written first.
                    pipe.del(&key).ignore().srem(&self.keys.nodes, &self.node).ignore();
                    pipe.publish(&self.keys.events, self.envelope(Event::Left)).ignore();
                    leaving = Some(done);
                    self.left = true;
                }
                Outgoing::Publish(event) => {
                    pipe.publish(&self.keys.events, self.envelope(event)).ignore();
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
                    pipe.publish(&self.keys.events, self.envelope(event)).ignore();
                }
                Outgoing::Reload(node) => reloads.push(node),
            }
        }
        if !self.health.healthy && leaving.is_none() {
            // Redis failed lately: the heartbeat finds out when it is back.
            self.dirty = true;
            return;
        }
        if leaving.is_none() {
            pipe.pexpire(&key, Self::ttl_ms()).ignore();
        }
        let result = pipe.query_async::<(bool,)>(&mut self.conn).await;
        match self.health.report(result) {
            Some((true,)) => {}
            // The hash was gone, or the write failed: it may miss entries.
            Some((false,)) | None => self.dirty = true,
        }
        if let Some(done) = leaving {
            // ignore: shutdown may have stopped waiting.
            let _ = done.send(());
        }
        for node in reloads {
            let result = read_presence(&mut self.conn, &self.keys, node).await;
            if let Some(snapshot) = self.health.report(result) {
                self.chat.do_send(snapshot);
            }
        }
    }

    /// Keeps this node's presence alive (writing it whole when Redis may
    /// have lost it), and looks for nodes whose presence expired.
    async fn heartbeat(&mut self) {
        if self.left {
            return;
        }
        let key = self.keys.node(&self.node);
        let mut pipe = redis::pipe();
        pipe.atomic();
        if self.dirty {
            let mut fields: Vec<(&str, String)> = vec![(SEQ, self.seq.to_string())];
            fields.extend(self.entries.iter().map(|field| (field.as_str(), "1".to_owned())));
            pipe.del(&key).ignore().hset_multiple(&key, &fields).ignore();
            pipe.publish(&self.keys.events, self.envelope(Event::Resync)).ignore();
        }
        pipe.pexpire(&key, Self::ttl_ms()).sadd(&self.keys.nodes, &self.node).ignore();
        pipe.smembers(&self.keys.nodes);
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
            pipe.exists(self.keys.node(node));
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
                let mut forget = redis::cmd("SREM");
                forget.arg(&self.keys.nodes).arg(&node);
                let result = forget.exec_async(&mut self.conn).await;
                self.health.report(result);
                self.chat.do_send(Hear::NodeGone { node });
            }
        }
    }
}
