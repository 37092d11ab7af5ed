//! Several walkie nodes sharing rooms: what a node tells the others through
//! Redis, and what it learns from them.
//!
//! The `ChatServer` is the only user. It publishes through a [`Cluster`]
//! (stored messages, typing, read cursors, mentions, its presence) and gets
//! the other nodes' news as [`Hear`] messages. Postgres stays the one
//! source of truth: Redis pub/sub only makes things fast, and whatever it
//! loses (a reconnect, a killed subscriber, a node that died between its
//! commit and its publish) the `ChatServer` reads back from the store (see
//! `chat::sequence` and docs/scale-out.md). Without `--redis-url` there is
//! no `Cluster` and nothing here runs.
//!
//! Files: `link.rs` (the Redis connections, the subscriber), `writer.rs`
//! (publishing, this node's presence, the others' liveness), `mirror.rs`
//! (the other nodes' presence, as plain data).

mod link;
mod mirror;
mod writer;

use std::collections::HashSet;

use actix::{Message, Recipient};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use mirror::{Applied, Entry, Mirror, Scope, Transition};

use crate::domain::{Channel, MessageId, UserName};
use crate::protocol::ChatMessage;

/// A running node: its `--node-id` and a random suffix drawn at start
/// (`node1~3fa2c1d0`), so that a node restarted under the same name is a
/// new node to the others, whose count of changes starts again.
pub type NodeId = String;

/// What one node tells the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A stored message of a room or a direct conversation.
    Message {
        /// As stored, with its id.
        message: ChatMessage,
    },
    /// Someone types in a room or a conversation.
    Typing {
        /// Where.
        channel: Channel,
        /// Who.
        from: UserName,
    },
    /// A user's read cursor moved: their sessions everywhere hear of it.
    Read {
        /// Whose cursor.
        reader: UserName,
        /// In which room or conversation.
        channel: Channel,
        /// Where it is now.
        id: MessageId,
    },
    /// A stored room message mentions these users.
    Mention {
        /// The message.
        message: ChatMessage,
        /// The users it names (online ones get a `mention` frame).
        users: Vec<UserName>,
    },
    /// The sending node's presence changed; `seq` numbers its changes.
    Presence {
        /// One more than the node's previous change.
        seq: u64,
        /// The entry, as its Redis hash field ([`Entry::field`]).
        entry: String,
        /// Added (true) or removed.
        present: bool,
    },
    /// The sending node wrote its whole presence again (after Redis lost
    /// it, or it could not reach Redis): read it.
    Resync,
    /// The sending node is shutting down: its presence is gone already.
    Left,
}

/// An [`Event`] with the node that sent it, as published:
/// `{"node":"<id>","event":{"type":...}}`. The node comes first, so a node
/// tells its own envelopes by their first bytes (see `link`).
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    node: NodeId,
    event: Event,
}

/// Hear what the cluster says: the link's news for the `ChatServer`.
///
/// Sent by the link's tasks (`link`, `writer`) to a `Recipient<Hear>`;
/// handled by the `ChatServer` (`chat::remote`).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub enum Hear {
    /// Another node's event.
    Event {
        /// Who sent it.
        node: NodeId,
        /// What it said.
        event: Event,
    },
    /// A node's whole presence, read from Redis.
    Snapshot {
        /// Whose.
        node: NodeId,
        /// The number of the node's last change in it.
        seq: u64,
        /// Everything it holds.
        entries: HashSet<Entry>,
    },
    /// A node's presence expired: it died, or lost Redis for longer than
    /// its time to live. Its members leave.
    NodeGone {
        /// Which.
        node: NodeId,
    },
    /// Events may have been lost (the subscription broke and is back):
    /// compare every channel with the store, and the rooms too.
    CatchUp,
}

/// Why cluster mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// `--redis-url` without a Postgres `--database-url`.
    #[error(
        "--redis-url needs a Postgres --database-url (postgres://...): the nodes of a cluster \
         share their history there, and a SQLite file cannot be shared"
    )]
    NeedsPostgres,
    /// The Redis URL does not parse.
    #[error("--redis-url {url} is not a Redis URL (redis://host:port): {source}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// The client library's reason.
        source: redis::RedisError,
    },
}

/// What the `ChatServer` hands the link.
#[derive(Debug)]
enum Outgoing {
    Publish(Event),
    Presence(Entry, bool),
    /// Read a node's presence again (changes of it were missed).
    Reload(NodeId),
    /// The node shuts down: remove its presence, tell the others, answer.
    Leave(tokio::sync::oneshot::Sender<()>),
}

/// The `ChatServer`'s side of the cluster: publishing never waits (the
/// link's tasks talk to Redis); cheap to clone.
#[derive(Debug, Clone)]
pub struct Cluster {
    node: NodeId,
    outgoing: mpsc::UnboundedSender<Outgoing>,
}

impl Cluster {
    /// Connects to Redis at `url` as node `name` of the cluster on the
    /// database named `namespace`, and starts the link's tasks, which send
    /// what they learn to `chat`. Call inside a running actix system. Redis
    /// need not be up: the link connects when it can.
    pub fn start(
        url: &str,
        namespace: &str,
        name: &str,
        chat: Recipient<Hear>,
    ) -> Result<Self, ClusterError> {
        let node = format!("{name}~{:08x}", fastrand::u32(..));
        let redis = crate::config::redact_url(url);
        log::info!("cluster mode: node {node} of cluster {namespace}, Redis at {redis}");
        let outgoing = link::start(url, namespace, node.clone(), chat)
            .map_err(|source| ClusterError::BadUrl { url: url.to_owned(), source })?;
        Ok(Self { node, outgoing })
    }

    /// This node's name.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// Tells the other nodes `event`.
    pub fn publish(&self, event: Event) {
        self.send(Outgoing::Publish(event));
    }

    /// Records that `entry` is now present on this node (or not).
    pub fn presence(&self, entry: Entry, present: bool) {
        self.send(Outgoing::Presence(entry, present));
    }

    /// Asks for `node`'s whole presence (a [`Hear::Snapshot`]).
    pub fn reload(&self, node: NodeId) {
        self.send(Outgoing::Reload(node));
    }

    /// Removes this node's presence from Redis and tells the other nodes
    /// (its members leave at once), after everything handed over before;
    /// gives up after `wait`. For shutdown, once the sessions are closed.
    pub async fn leave(&self, wait: std::time::Duration) {
        let (done, left) = tokio::sync::oneshot::channel();
        self.send(Outgoing::Leave(done));
        if tokio::time::timeout(wait, left).await.is_err() {
            log::warn!("could not tell the other nodes this one leaves (Redis down?)");
        }
    }

    fn send(&self, outgoing: Outgoing) {
        if self.outgoing.send(outgoing).is_err() {
            log::error!("the Redis link stopped: the other nodes hear nothing from this one");
        }
    }
}

/// The name of the database a Postgres `url` names (`walkie` for
/// `postgres://host/walkie?sslmode=require`): the nodes of one cluster
/// share it, and it keeps clusters on different databases apart when they
/// share a Redis.
pub fn namespace_of(url: &str) -> String {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = path.split(['?', '#']).next().unwrap_or(path);
    match path.split_once('/') {
        Some((_, database)) if !database.is_empty() => database.to_owned(),
        _ => "default".to_owned(),
    }
}

/// The default `--node-id`: the host's name and the process id.
pub fn default_node_id() -> NodeId {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "walkie".to_owned());
    format!("{host}-{}", std::process::id())
}
