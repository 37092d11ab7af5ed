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
//! ```
//!
//! Files: `server.rs` (state, group commit, shutdown), `handlers.rs` (one
//! handler per message), `committed.rs` (answering a commit), `delivery.rs`
//! (sending frames, evicting slow sessions), `rooms.rs` (membership as
//! plain data), `outbox.rs` (what waits for the writer), `inbox.rs`
//! (sessions' ordered commands). docs/architecture.md has the whole path of
//! one message.
//!
//! The `ChatServer` is the one place that publishes to a room: sessions and
//! HTTP routes send it messages and never deliver to each other. Several
//! nodes would put a broker behind it (publish stored messages to Redis,
//! deliver what arrives from it) without touching sessions.

mod committed;
mod delivery;
mod handlers;
mod inbox;
mod messages;
mod outbox;
mod rooms;
mod server;

pub use inbox::{CommandsWaiting, Inbox};
pub use messages::*;
pub use server::ChatServer;
