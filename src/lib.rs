//! walkie: a real-time chat server on actix.
//!
//! Browsers open a WebSocket to `/ws`; each connection is a [`WsSession`]
//! actor that talks to one [`ChatServer`] actor owning rooms and
//! membership. Messages are stored in SQLite or Postgres (through diesel) by a
//! [`db::PersistenceActor`] on a `SyncArbiter` before anyone sees them; a
//! [`notify::NotificationActor`] works out mentions beside it. The wire
//! protocol is in `docs/protocol.md`.
//!
//! # Layout
//!
//! | module | what it holds |
//! |---|---|
//! | [`app`] | [`Application`]: bind, serve, shut down gracefully |
//! | [`walkie`](mod@walkie) | [`Walkie`]: the running actors, for `main` and embedding apps |
//! | [`config`] | command-line flags and environment variables |
//! | [`access`] | who may connect: origins, tokens, connection limit |
//! | [`admin`] | `walkie rooms` and `walkie history`: tables for operators |
//! | [`domain`] | validated values: names, rooms, texts, ids |
//! | [`protocol`] | client commands and server frames as serde types |
//! | [`error`] | client-facing errors and their codes, in one place |
//! | [`http`] | the route table and its handlers |
//! | [`session`] | [`WsSession`], one per socket |
//! | [`outbound`] | what the `ChatServer` sends a session, and the queue it goes through |
//! | [`chat`] | [`ChatServer`] and its messages, membership, group commit, the command inbox |
//! | [`cluster`] | several nodes: what goes through Redis, the other nodes' presence |
//! | [`notify`] | the mention worker |
//! | [`store`] | [`store::MessageStore`] and [`store::PendingMentions`], the interfaces to storage |
//! | [`db`] | SQLite or Postgres through diesel: pool, migrations, the writer and reader actors |
//! | [`mentions`] | who a message mentions (`@name`) |
//! | [`metrics`] | what `/metrics` exports |
//!
//! Imports run one way: `http` -> `session` -> `chat` -> `store` <- `db`,
//! and `chat` -> `cluster` (docs/architecture.md has the picture and the
//! path of one message; docs/scale-out.md the cluster's).
//!
//! # Embedding
//!
//! [`Walkie::start`] starts the actors inside your own actix-web app,
//! [`Walkie::routes`] mounts the routes under a scope of yours, and
//! [`Walkie::post`] posts to a room from any handler (see
//! `examples/embed.rs`).

#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod access;
pub mod admin;
pub mod app;
pub mod chat;
pub mod cluster;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod mentions;
pub mod metrics;
pub mod notify;
pub mod outbound;
pub mod protocol;
pub mod session;
pub mod store;
pub mod walkie;

pub use app::Application;
pub use chat::ChatServer;
pub use config::Config;
pub use session::WsSession;
pub use walkie::{StartError, Walkie};
