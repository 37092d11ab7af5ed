//! What the [`ChatServer`] does once a batch is committed (or failed):
//! deliver new messages, answer resends and conflicts, tell users where
//! their read cursors are.

use std::sync::Arc;

use actix::prelude::*;
use bytestring::ByteString;

use super::delivery::Overflowed;
use super::outbox::{PendingCursor, Posted, Reply};
use super::server::{distinct_users, ChatServer};
use crate::cluster::{Entry, Event, Scope};
use crate::domain::{Channel, MessageId, SessionId, UserName};
use crate::error::ChatError;
use crate::notify::{FindMentions, KeepMentions, Mention};
use crate::outbound::{Delivery, SessionHandle};
use crate::protocol::{encode, ChatMessage, MessageFrame, ServerEvent};
use crate::store::{Appended, Committed, CursorMove, CursorOutcome, StoreError};

impl ChatServer {
    /// Answers everyone waiting on a committed batch.
    pub(super) fn on_committed(
        &mut self,
        replies: Vec<Reply>,
        cursors: Vec<PendingCursor>,
        committed: Committed,
        ctx: &mut Context<Self>,
    ) {
        let mut room_messages = Vec::new();
        for (reply, outcome) in replies.into_iter().zip(committed.messages) {
            match outcome {
                Appended::Stored(message) => {
                    // Published at once: the other nodes need not wait
                    // for a gap this node may have to read first.
                    self.publish(|| Event::Message { message: message.clone() });
                    // Only a text with an `@` can mention anyone: the
                    // others skip the hop to the notification thread.
                    if message.room.room().is_some() && message.text.contains('@') {
                        room_messages.push(message.clone());
                    }
                    self.sequence(message, Some(reply));
                }
                Appended::Duplicate(message) => self.answer_stored(&message, reply, false),
                Appended::Conflict => self.reject(reply, ChatError::Conflict),
            }
        }
        if !room_messages.is_empty() {
            self.metrics.notification_queue.inc();
            let found = self.notifier.send(FindMentions { messages: room_messages });
            ctx.spawn(found.into_actor(self).map(|found, server, _| match found {
                Ok(mentions) => server.route_mentions(mentions),
                Err(error) => log::error!("the notification worker did not answer: {error}"),
            }));
        }
        for (pending, outcome) in cursors.into_iter().zip(committed.cursors) {
            self.answer_cursor(pending, outcome);
        }
    }

    /// Tells everyone waiting on a failed batch that nothing was written.
    pub(super) fn fail(
        &mut self,
        replies: Vec<Reply>,
        cursors: Vec<PendingCursor>,
        error: &StoreError,
    ) {
        log::error!(
            "{} messages and {} cursor moves were not stored and were answered `internal`: {error}",
            replies.len(),
            cursors.len()
        );
        for reply in replies {
            self.reject(reply, ChatError::Internal);
        }
        for (session, reference) in cursors.into_iter().filter_map(|cursor| cursor.reply) {
            self.reject(Reply::Session { session, reference }, ChatError::Internal);
        }
    }

    /// The room key frames of `channel` are tagged with (rooms only).
    fn room_key(&self, channel: &Channel) -> Option<Arc<str>> {
        match channel {
            Channel::Room(room) => self.registry.room(room).map(|state| state.key.clone()),
            Channel::Direct(_) => None,
        }
    }

    /// Delivers a stored message to everyone here who should see it,
    /// serialized once; the sender's own copy (with `ref`) is the
    /// acknowledgement. `reply` is `None` for another node's message.
    pub(super) fn deliver(&mut self, message: &ChatMessage, reply: Option<Reply>) {
        let (sender, reference) = match reply {
            Some(Reply::Session { session, reference }) => (Some(session), reference),
            Some(Reply::Http(answer)) => {
                // ignore: the HTTP client may have gone; the message is stored.
                let _ = answer.send(Ok(Posted { message: message.clone(), created: true }));
                (None, None)
            }
            None => (None, None),
        };
        let frame = encode(&MessageFrame { frame: message, reference: None });
        let room_key = self.room_key(&message.room);
        let others = self.deliver_to_members(&message.room, message.id, &frame, &room_key, sender);
        self.metrics.delivered.inc_by(others + u64::from(sender.is_some()));
        if let Some(session) = sender {
            let acknowledgement = match &reference {
                Some(reference) => {
                    encode(&MessageFrame { frame: message, reference: Some(reference) })
                }
                None => frame,
            };
            self.send_to(session, Delivery::acknowledgement(acknowledgement, room_key, message.id));
        }
    }

    /// Offers message `id`'s `frame` to every session of `channel` but
    /// `sender`; returns how many it was offered to.
    fn deliver_to_members(
        &mut self,
        channel: &Channel,
        id: MessageId,
        frame: &ByteString,
        room_key: &Option<Arc<str>>,
        sender: Option<SessionId>,
    ) -> u64 {
        // No list of recipients is built: in a room of 1000 that allocation
        // per message shows in profiles (docs/performance.md, item 2).
        let mut overflowed = Overflowed::default();
        let mut offered = 0;
        let mut offer = |session: SessionId, handle: &SessionHandle| {
            if Some(session) != sender {
                offered += 1;
                let delivery = Delivery::message(frame.clone(), room_key.clone(), id);
                overflowed.offer(session, handle, delivery);
            }
        };
        match channel {
            Channel::Room(room) => {
                if let Some(state) = self.registry.room(room) {
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
        self.evict(overflowed);
        offered
    }

    /// Answers the sender alone with a stored message that the others
    /// have seen already: a resend (same idempotency key; `created` false),
    /// or a message delivered before its commit's answer came (`true`).
    pub(super) fn answer_stored(&mut self, message: &ChatMessage, reply: Reply, created: bool) {
        match reply {
            Reply::Session { session, reference } => {
                let frame = encode(&MessageFrame { frame: message, reference: reference.as_ref() });
                let room_key = self.room_key(&message.room);
                let delivery = Delivery::acknowledgement(frame, room_key, message.id);
                self.send_to(session, delivery);
            }
            Reply::Http(answer) => {
                // ignore: the HTTP client may have gone.
                let _ = answer.send(Ok(Posted { message: message.clone(), created }));
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
            encode(&ServerEvent::Read { room, id: position }.answering(reference.as_ref()));
        self.send_to(requester, Delivery::other(answer));
        if moved {
            let others = encode(&ServerEvent::Read { room, id: position });
            self.notify_user(&pending.cursor.reader, &others, Some(requester), |_| true);
            let CursorMove { reader, channel, .. } = pending.cursor;
            self.publish(|| Event::Read { reader, channel, id: position });
        }
    }
}

impl ChatServer {
    /// Sends each mention to the mentioned users' sessions outside the
    /// room (here and, through the cluster, on the other nodes), and has
    /// the notification worker keep it for those offline everywhere.
    fn route_mentions(&mut self, mentions: Vec<Mention>) {
        for Mention { message, users } in mentions {
            let (online, offline): (Vec<_>, Vec<_>) = users.into_iter().partition(|user| {
                self.registry.is_online(user)
                    || self.mirror.contains(&Entry { scope: Scope::Online, name: user.clone() })
            });
            self.notify_mentioned(&message, &online);
            if !online.is_empty() {
                self.publish(|| Event::Mention { message: message.clone(), users: online });
            }
            if !offline.is_empty() {
                self.metrics.notification_queue.inc();
                self.notifier.do_send(KeepMentions { recipients: offline, message });
            }
        }
    }

    /// Sends `message`'s `mention` frame to the sessions here of `users`
    /// that are not in its room.
    pub(super) fn notify_mentioned(&mut self, message: &ChatMessage, users: &[UserName]) {
        let Some(room) = message.room.room() else {
            return;
        };
        let frame = Mention::frame(message);
        for user in users {
            self.notify_user(user, &frame, None, |rooms| !rooms.contains(room));
        }
    }
}
