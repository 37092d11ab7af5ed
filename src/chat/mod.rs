//! The `ChatServer` actor: rooms (groups), sessions (channels), names and
//! membership, and the delivery of every message.
//!
//! ```text
//! browser --ws--> WsSession --Join/Say/Leave/Typing--> ChatServer --append--> MessageStore
//!                           (Join/Say/Leave through the Inbox)
//!                                                                              (PersistenceActor,
//! browser <-text- WsSession <----SessionEvent--------- ChatServer <--stored--- SyncArbiter)
//!                                                          |  ^
//!                                   FindMentions/KeepMention  |  RouteMentions
//!                                                          v  |
//!                                                   NotificationActor (SyncArbiter)
//! HTTP POST --Post--> ChatServer (same path as a session's say)
//! ```
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
