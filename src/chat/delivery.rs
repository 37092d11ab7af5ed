//! How the [`ChatServer`] sends frames to sessions, and closes the ones
//! that do not read them (see `outbound::handle` for the policy).
//!
//! A frame refused by a session's queue (its backlog would pass the hard
//! limit) marks the session in [`Overflowed`]; the caller evicts the marked
//! sessions once it has finished walking the registry, which it cannot
//! change while it walks it.

use std::collections::HashSet;

use bytestring::ByteString;

use super::outbox::Reply;
use super::server::ChatServer;
use crate::domain::{RoomName, SessionId, UserName};
use crate::error::ChatError;
use crate::outbound::{CloseReason, Delivery, SessionHandle};
use crate::protocol::{encode, PresenceEvent, ServerEvent};

/// Sessions that refused a frame, to evict with [`ChatServer::evict`].
#[derive(Debug, Default)]
pub(super) struct Overflowed(Vec<SessionId>);

impl Overflowed {
    /// Queues `delivery` for `session`, marking it if its queue refuses.
    pub(super) fn offer(&mut self, session: SessionId, handle: &SessionHandle, delivery: Delivery) {
        if handle.deliver(delivery).is_err() {
            self.0.push(session);
        }
    }
}

impl ChatServer {
    /// Answers a refused request: an `error` frame to the session (with
    /// the request's `ref`), or the error to the HTTP caller.
    pub(super) fn reject(&mut self, reply: Reply, error: ChatError) {
        match reply {
            Reply::Session { session, reference } => {
                self.metrics.reject(error.code());
                let frame = encode(&ServerEvent::error(&error, reference.as_ref()));
                self.send_to(session, Delivery::other(frame));
            }
            Reply::Http(answer) => {
                // ignore: the HTTP client may have gone.
                let _ = answer.send(Err(error));
            }
        }
    }

    /// Queues a frame for one session, evicting it if its queue refuses.
    pub(super) fn send_to(&mut self, session: SessionId, delivery: Delivery) {
        let mut overflowed = Overflowed::default();
        if let Some(handle) = self.registry.handle(session) {
            overflowed.offer(session, handle, delivery);
        }
        self.evict(overflowed);
    }

    /// Sends `frame` to the sessions in `room` whose user is not `except`.
    pub(super) fn announce(&mut self, room: &RoomName, except: &UserName, frame: ByteString) {
        let Some(state) = self.registry.room(room) else {
            return;
        };
        let mut overflowed = Overflowed::default();
        for (session, handle) in &state.members {
            if self.registry.name_of(*session) != Some(except) {
                let delivery = Delivery::room_event(frame.clone(), state.key.clone());
                overflowed.offer(*session, handle, delivery);
            }
        }
        self.evict(overflowed);
    }

    /// Tells the others in `room` that `name` entered or left it.
    pub(super) fn announce_presence(
        &mut self,
        room: &RoomName,
        name: &UserName,
        event: PresenceEvent,
    ) {
        let frame = encode(&ServerEvent::Presence { room, name, event });
        self.announce(room, name, frame);
    }

    /// Sends `frame` to the sessions of `user` for which `wanted` holds
    /// (given the rooms each is in), except `skip`.
    pub(super) fn notify_user(
        &mut self,
        user: &UserName,
        frame: &ByteString,
        skip: Option<SessionId>,
        wanted: impl Fn(&HashSet<RoomName>) -> bool,
    ) {
        let mut overflowed = Overflowed::default();
        for (session, handle, rooms) in self.registry.sessions_of(user) {
            if Some(session) != skip && wanted(rooms) {
                overflowed.offer(session, handle, Delivery::other(frame.clone()));
            }
        }
        self.evict(overflowed);
    }

    /// Closes the sessions whose backlog stayed over `--max-outbound-bytes`
    /// for the grace period. Nothing to look at while no session is over.
    pub(super) fn close_slow_sessions(&mut self) {
        if self.metrics.slow_sessions.get() == 0 {
            return;
        }
        let slow = self.registry.sessions().filter(|(_, handle)| handle.too_slow());
        let slow = Overflowed(slow.map(|(session, _)| session).collect());
        self.evict(slow);
    }

    /// Closes sessions that do not read what they are sent (their backlog
    /// passed the hard limit, or stayed over the limit too long), and takes
    /// them out of everything at once.
    pub(super) fn evict(&mut self, sessions: Overflowed) {
        for session in sessions.0 {
            let Some(handle) = self.registry.handle(session).cloned() else {
                continue;
            };
            if let Some((name, rooms)) = self.registry.disconnect(session) {
                log::warn!(
                    "session {session} ({name}) does not read what it is sent (too much \
                     waits for it, see --max-outbound-bytes): closing it (1008)"
                );
                self.left(name, rooms);
            }
            self.confirm_quiesced(session);
            handle.close(CloseReason::TooSlow);
        }
    }
}
