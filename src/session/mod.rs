//! [`WsSession`]: one actor per WebSocket connection (the "consumer").
//!
//! It owns its socket: it reassembles and size-checks frames, parses them
//! into [`ClientCommand`](crate::protocol::ClientCommand)s, answers pings,
//! enforces the heartbeat, and turns commands into messages to the
//! [`ChatServer`]. Everything it sends the client goes through
//! `WsSession::send_frame`, which holds frames back while
//! - the user's kept mentions have not arrived yet (they come right after
//!   `welcome`, before anything else), and
//! - a room's history is loading (that room's live frames wait for
//!   `joined`, so the client sees history, then live messages, in order).
//!
//! Besides `http::ws`, which hands it the socket, this is the only module
//! that knows actix-web-actors.
//!
//! Files: `frames.rs` reads the socket (fragments, flood control, protocol
//! errors), `commands.rs` has one method per client command, `joining.rs`
//! joins rooms and reads history, `flood.rs` is the token bucket.

mod commands;
mod flood;
mod frames;
mod joining;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use actix_web_actors::ws;
use bytestring::ByteString;

use crate::access::ConnectionPermit;
use crate::chat::{ChatServer, Connect, Disconnect, Inbox, Quiesced};
use crate::config::Limits;
use crate::domain::{Ref, RoomName, SessionId, UserName};
use crate::error::ChatError;
use crate::metrics::Metrics;
use crate::outbound::{CloseReason, Delivery, OutboundQueue, SessionEvent, SessionHandle};
use crate::protocol::{encode, ServerEvent};
use crate::store::MessageStore;
use crate::Walkie;

use flood::FloodControl;
use frames::Fragments;
use joining::RoomState;

/// Largest buffer (in frames) a session keeps between wake-ups.
const SPARE_CAPACITY: usize = 64;

/// The `server` field of `welcome`.
pub const SERVER_NAME: &str = concat!("walkie/", env!("CARGO_PKG_VERSION"));

/// One WebSocket connection; see the module doc.
pub struct WsSession {
    id: SessionId,
    name: UserName,
    peer: String,
    chat: Addr<ChatServer>,
    /// Where `Connect`, `join`, `say` and `leave` go, in order (see [`Inbox`]).
    inbox: Arc<Inbox>,
    store: Arc<dyn MessageStore>,
    limits: Limits,
    metrics: Arc<Metrics>,
    /// When the client last sent anything (a frame or a pong).
    last_heard: Instant,
    rooms: HashMap<RoomName, RoomState>,
    /// Frames held back until the kept mentions have been sent; `None` once
    /// they have.
    held: Option<Vec<ByteString>>,
    fragments: Option<Fragments>,
    /// Distinguishes successive joins of one room.
    join_generation: u64,
    flood: FloodControl,
    queue: Arc<OutboundQueue>,
    /// The buffer the queue is emptied into, kept between wake-ups.
    spare: Vec<Delivery>,
    /// Shutdown has begun: client frames are no longer acted on.
    quiescing: bool,
    /// Counts this connection against `--max-connections` while it lives.
    _permit: ConnectionPermit,
}

impl WsSession {
    /// A session for `name` connected from `peer`, served by `walkie`.
    pub fn new(name: UserName, peer: String, walkie: &Walkie, permit: ConnectionPermit) -> Self {
        let limits = walkie.limits();
        Self {
            flood: FloodControl::new(limits.rate, limits.burst, Instant::now()),
            queue: OutboundQueue::new(
                limits.max_outbound_bytes,
                walkie.metrics().slow_sessions.clone(),
            ),
            spare: Vec::new(),
            quiescing: false,
            _permit: permit,
            id: SessionId::next(),
            name,
            peer,
            chat: walkie.chat().clone(),
            inbox: walkie.inbox().clone(),
            store: walkie.store(),
            limits,
            metrics: walkie.metrics().clone(),
            last_heard: Instant::now(),
            rooms: HashMap::new(),
            held: Some(Vec::new()),
            fragments: None,
            join_generation: 0,
        }
    }

    /// Sends a frame to the client, or holds it while mentions are pending.
    fn send_frame(&mut self, ctx: &mut ws::WebsocketContext<Self>, frame: ByteString) {
        match &mut self.held {
            Some(held) => held.push(frame),
            None => ctx.text(frame),
        }
    }

    fn send_error(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        error: &ChatError,
        reference: Option<&Ref>,
    ) {
        log::debug!("session {} error: {error}", self.id);
        self.metrics.reject(error.code());
        self.send_frame(ctx, encode(&ServerEvent::error(error, reference)));
    }

    /// Closes the connection, after anything held back for the client.
    fn close(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: ws::CloseCode, why: &str) {
        for frame in self.held.take().unwrap_or_default() {
            ctx.text(frame);
        }
        ctx.close(Some(ws::CloseReason { code, description: Some(why.to_owned()) }));
        ctx.stop();
    }

    fn heartbeat(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let ping = self.limits.ping_interval;
        ctx.run_interval(ping, |_, ctx| ctx.ping(b""));
        // Check often enough that a silent connection goes within a tenth of
        // the timeout after it, and at most a second.
        let check = (self.limits.client_timeout / 10)
            .clamp(std::time::Duration::from_millis(10), std::time::Duration::from_secs(1));
        ctx.run_interval(check, |session, ctx| {
            if session.last_heard.elapsed() > session.limits.client_timeout {
                log::info!(
                    "session {} ({}) sent nothing for {:?}: closing it",
                    session.id,
                    session.name,
                    session.limits.client_timeout
                );
                session.close(ctx, ws::CloseCode::Away, "heartbeat timeout");
            }
        });
    }
}

impl Actor for WsSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        log::info!("session {} ({}) connected from {}", self.id, self.name, self.peer);
        self.heartbeat(ctx);
        let welcome =
            ServerEvent::Welcome { session: self.id, name: &self.name, server: SERVER_NAME };
        ctx.text(encode(&welcome));
        self.inbox.connect(Connect {
            session: self.id,
            name: self.name.clone(),
            handle: SessionHandle::new(ctx.address().recipient(), self.queue.clone()),
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        log::info!("session {} ({}) from {} disconnected", self.id, self.name, self.peer);
        self.chat.do_send(Disconnect { session: self.id });
    }
}

impl Handler<SessionEvent> for WsSession {
    type Result = ();

    fn handle(&mut self, event: SessionEvent, ctx: &mut Self::Context) {
        match event {
            SessionEvent::Wake => {
                let mut deliveries = std::mem::take(&mut self.spare);
                self.queue.take_into(&mut deliveries);
                for delivery in deliveries.drain(..) {
                    self.on_deliver(delivery, ctx);
                }
                // An idle session keeps a small buffer, not its busiest moment's.
                if deliveries.capacity() <= SPARE_CAPACITY {
                    self.spare = deliveries;
                }
            }
            SessionEvent::Quiesce => {
                self.quiescing = true;
                self.chat.do_send(Quiesced { session: self.id });
            }
            SessionEvent::PendingMentions(mentions) => {
                for frame in mentions {
                    ctx.text(frame);
                }
                for frame in self.held.take().unwrap_or_default() {
                    ctx.text(frame);
                }
            }
            SessionEvent::Close(CloseReason::ShuttingDown) => {
                self.close(ctx, ws::CloseCode::Away, "server shutting down")
            }
            SessionEvent::Close(CloseReason::TooSlow) => {
                self.close(ctx, ws::CloseCode::Policy, "too slow: the client does not read")
            }
        }
    }
}
