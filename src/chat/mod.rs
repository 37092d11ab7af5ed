//! The `ChatServer` actor: rooms (groups), sessions (channels), names and
//! membership, and the delivery of every message.
//!
//! ```text
//! browser --ws--> WsSession --Connect/Join/Say/Leave (Inbox)--> ChatServer --commit--> MessageStore
//!                           --Read/Typing/ListRooms/Who------>             (PersistenceActor,
//! browser <-text- WsSession <--frames in its OutboundQueue----- ChatServer <--Committed-- SyncArbiter)
//!                                                                  |   ^
//!                                   FindMentions/KeepMentions/     |   |  the mentions found
//!                                   TakePendingMentions            v   |
//!                                                       NotificationActor (SyncArbiter)
//! HTTP POST --Post--> ChatServer (same path as a session's say)
//! other nodes <--Redis--> cluster link --Hear--> ChatServer --publish--> cluster link
//! ```
//!
//! Files: `server.rs` (state, group commit, shutdown), `handlers.rs` (one
//! handler per message), `committed.rs` (answering a commit), `sequence.rs`
//! and `catchup.rs` (every channel's messages in id order, gaps read back
//! from the store), `delivery.rs` (sending frames, evicting slow sessions),
//! `rooms.rs` (membership as plain data), `outbox.rs` (what waits for the
//! writer), `inbox.rs` (sessions' ordered commands), `remote.rs` (the other
//! nodes). docs/architecture.md has the whole path of one message.
//!
//! The `ChatServer` is the one place that publishes to a room: sessions and
//! HTTP routes send it messages and never deliver to each other. With
//! `--redis-url` it also publishes what it stores to the other nodes and
//! delivers what they stored ([`crate::cluster`], docs/scale-out.md),
//! without touching sessions; without it, nothing of that runs.

mod catchup;
mod committed;
mod delivery;
mod handlers;
mod inbox;
mod messages;
mod outbox;
mod remote;
mod rooms;
mod sequence;
mod server;

pub use inbox::{CommandsWaiting, Inbox};
pub use messages::*;
pub use server::ChatServer;

/// A stored message on its way to the sessions, with whoever waits for
/// it (its sender's acknowledgement, an HTTP answer); none when it came
/// from another node or from the store.
#[derive(Debug)]
pub(crate) struct Arrival {
    message: crate::protocol::ChatMessage,
    reply: Option<outbox::Reply>,
}
