//! What the [`ChatServer`] does once a batch is committed (or failed):
//! deliver new messages, answer resends and conflicts, tell users where
//! their read cursors are.

use super::outbox::{Pending, PendingCursor, Posted, Reply};
use super::server::{distinct_users, ChatServer};
use crate::domain::{Channel, SessionId};
use crate::error::ChatError;
use crate::notify::FindMentions;
use crate::protocol::{encode, ChatMessage, MessageFrame, ServerEvent};
use crate::session::{Delivery, SessionHandle};
use crate::store::{Appended, Committed, CursorOutcome, StoreError};

impl ChatServer {
    /// Answers everyone waiting on a committed batch.
    pub(super) fn on_committed(
        &mut self,
        messages: Vec<Pending>,
        cursors: Vec<PendingCursor>,
        committed: Committed,
    ) {
        let mut room_messages = Vec::new();
        for (pending, outcome) in messages.into_iter().zip(committed.messages) {
            match outcome {
                Appended::Stored(message) => {
                    self.deliver(&pending.channel, &message, pending.reply);
                    // Only a text with an `@` can mention anyone: the
                    // others skip the hop to the notification thread.
                    if matches!(pending.channel, Channel::Room(_)) && message.text.contains('@') {
                        room_messages.push(message);
                    }
                }
                Appended::Duplicate(message) => {
                    self.answer_resend(&pending.channel, &message, pending.reply)
                }
                Appended::Conflict => self.reject(pending.reply, ChatError::Conflict),
            }
        }
        if !room_messages.is_empty() {
            self.metrics.notification_queue.inc();
            self.notifier.do_send(FindMentions { messages: room_messages });
        }
        for (pending, outcome) in cursors.into_iter().zip(committed.cursors) {
            self.answer_cursor(pending, outcome);
        }
    }

    /// Tells everyone waiting on a failed batch that nothing was written.
    pub(super) fn fail(
        &mut self,
        messages: Vec<Pending>,
        cursors: Vec<PendingCursor>,
        error: &StoreError,
    ) {
        log::error!(
            "{} messages and {} cursor moves were not stored and were answered `internal`: {error}",
            messages.len(),
            cursors.len()
        );
        for item in messages {
            self.reject(item.reply, ChatError::Internal);
        }
        for (session, reference) in cursors.into_iter().filter_map(|cursor| cursor.reply) {
            self.reject(Reply::Session { session, reference }, ChatError::Internal);
        }
    }

    /// The room key frames of `channel` are tagged with (rooms only).
    fn room_key(&self, channel: &Channel) -> Option<std::sync::Arc<str>> {
        match channel {
            Channel::Room(room) => self.registry.room(room).map(|state| state.key.clone()),
            Channel::Direct(_) => None,
        }
    }

    /// Delivers a stored message to everyone who should see it, serialized
    /// once; the sender's own copy (with `ref`) is the acknowledgement.
    fn deliver(&mut self, channel: &Channel, message: &ChatMessage, reply: Reply) {
        let (sender, reference) = match reply {
            Reply::Session { session, reference } => (Some(session), reference),
            Reply::Http(answer) => {
                // ignore: the HTTP client may have gone; the message is stored.
                let _ = answer.send(Ok(Posted { message: message.clone(), created: true }));
                (None, None)
            }
        };
        let frame = encode(&MessageFrame { message, reference: None });
        let room_key = self.room_key(channel);
        // No list of recipients is built: a room of 1000 would allocate
        // (and, at that size, make malloc consolidate) once per message.
        let mut overflowed = Vec::new();
        let mut others = 0;
        let mut offer = |session: SessionId, handle: &SessionHandle| {
            if Some(session) == sender {
                return; // gets the acknowledgement below
            }
            others += 1;
            let delivery = Delivery::message(frame.clone(), room_key.clone(), message.id);
            if handle.deliver(delivery).is_err() {
                overflowed.push(session);
            }
        };
        match channel {
            Channel::Room(room) => {
                if let Some(state) = self.registry.room_mut(room) {
                    state.last_id = state.last_id.max(message.id);
                    for (session, handle) in &state.members {
                        offer(*session, handle);
                    }
                }
            }
            Channel::Direct(conversation) => {
                for user in distinct_users(conversation) {
                    for (session, handle, _) in self.registry.sessions_of(user) {
                        offer(session, handle);
                    }
                }
            }
        }
        self.metrics.delivered.inc_by(others + u64::from(sender.is_some()));
        if let Some(session) = sender {
            let acknowledgement = match &reference {
                Some(reference) => encode(&MessageFrame { message, reference: Some(reference) }),
                None => frame,
            };
            let delivery = Delivery::acknowledgement(acknowledgement, room_key, message.id);
            overflowed.extend(self.send_to(session, delivery));
        }
        self.evict(overflowed);
    }

    /// A resent message (same idempotency key): the stored one goes back to
    /// the sender alone; nobody else sees it twice.
    fn answer_resend(&mut self, channel: &Channel, message: &ChatMessage, reply: Reply) {
        match reply {
            Reply::Session { session, reference } => {
                let frame = encode(&MessageFrame { message, reference: reference.as_ref() });
                let delivery = Delivery::acknowledgement(frame, self.room_key(channel), message.id);
                let overflowed = self.send_to(session, delivery);
                self.evict(overflowed.into_iter().collect());
            }
            Reply::Http(answer) => {
                // ignore: the HTTP client may have gone.
                let _ = answer.send(Ok(Posted { message: message.clone(), created: false }));
            }
        }
    }

    /// Tells the session that sent `read` where the cursor is, and every
    /// other session of the user too when it moved.
    fn answer_cursor(&mut self, pending: PendingCursor, outcome: CursorOutcome) {
        let Some((requester, reference)) = pending.reply else {
            return; // the cursor a join starts: nobody asked
        };
        let room = pending.cursor.channel.as_str();
        let (position, moved) = match outcome {
            CursorOutcome::Moved(id) => (id, true),
            CursorOutcome::Unchanged(id) => (id, false),
            CursorOutcome::NotJoined => {
                let reply = Reply::Session { session: requester, reference };
                return self.reject(reply, ChatError::NotInRoom(room.to_owned()));
            }
        };
        let answer =
            encode(&ServerEvent::Read { room, id: position, reference: reference.as_ref() });
        let mut overflowed: Vec<SessionId> =
            self.send_to(requester, Delivery::other(answer)).into_iter().collect();
        if moved {
            let others = encode(&ServerEvent::Read { room, id: position, reference: None });
            for (session, handle, _) in self.registry.sessions_of(&pending.cursor.reader) {
                if session != requester && handle.deliver(Delivery::other(others.clone())).is_err()
                {
                    overflowed.push(session);
                }
            }
        }
        self.evict(overflowed);
    }
}
