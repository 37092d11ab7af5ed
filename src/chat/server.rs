//! [`ChatServer`]: the actor and its handlers. The rules live in
//! [`Registry`] and [`Outbox`]; the handlers route.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::messages::*;
use super::outbox::{Outbox, Pending, Reply};
use super::rooms::Registry;
use crate::domain::{Channel, Conversation, RoomName, SessionId, UserName};
use crate::error::ChatError;
use crate::notify::{FindMentions, KeepMention, NotificationActor, TakePendingMentions};
use crate::protocol::{encode, ChatMessage, MessageFrame, PresenceEvent, ServerEvent};
use crate::session::SessionEvent;
use crate::store::{MessageStore, NewMessage, RoomRecord, StoreError};

/// How long to wait before retrying room creations after a failed commit,
/// so a broken database is not hammered.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

type Handle = Recipient<SessionEvent>;

/// Where the server is in its life.
#[derive(Debug, Default)]
enum Lifecycle {
    #[default]
    Running,
    /// Shutting down: still storing, waiting for the outbox to drain.
    Draining(Vec<oneshot::Sender<()>>),
    /// Sessions were told to close; nothing more is accepted.
    Closed,
}

/// Owns rooms, sessions and their membership; see the module doc.
pub struct ChatServer {
    registry: Registry<Handle>,
    outbox: Outbox,
    store: Arc<dyn MessageStore>,
    notifier: Addr<NotificationActor>,
    lifecycle: Lifecycle,
}

impl ChatServer {
    /// A server that knows the stored `rooms` and writes through `store`.
    pub fn new(
        store: Arc<dyn MessageStore>,
        notifier: Addr<NotificationActor>,
        rooms: Vec<RoomRecord>,
    ) -> Self {
        let mut registry = Registry::default();
        for room in rooms {
            registry.add_room(&room.name, room.last_id);
        }
        Self {
            registry,
            outbox: Outbox::default(),
            store,
            notifier,
            lifecycle: Lifecycle::Running,
        }
    }

    /// Sends the next batch to the store unless one is in flight.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        let Some((batch, pending)) = self.outbox.next_batch() else {
            self.finish_shutdown_if_drained();
            return;
        };
        let rooms = batch.rooms.clone();
        let stored = self.store.append(batch);
        ctx.spawn(stored.into_actor(self).map(move |result, server, ctx| {
            server.outbox.finish();
            match result {
                Ok(messages) => {
                    server.deliver_stored(pending, messages);
                    server.flush(ctx);
                }
                Err(error) => {
                    server.fail(pending, &error);
                    // Retry room creations later, unless shutting down:
                    // then they are lost like any unstored write.
                    if matches!(server.lifecycle, Lifecycle::Running) {
                        for room in rooms {
                            server.outbox.push_room(room);
                        }
                    }
                    ctx.run_later(RETRY_AFTER_FAILURE, |server, ctx| server.flush(ctx));
                    server.flush_messages_only(ctx);
                }
            }
        }));
    }

    /// After a failure, keeps committing waiting messages at once (they may
    /// well succeed) but leaves room creations to the delayed retry.
    fn flush_messages_only(&mut self, ctx: &mut Context<Self>) {
        if self.outbox.has_messages() {
            self.flush(ctx);
        }
    }

    fn deliver_stored(&mut self, pending: Vec<Pending>, messages: Vec<ChatMessage>) {
        let mut room_messages = Vec::new();
        for (pending, message) in pending.into_iter().zip(messages) {
            self.deliver(&pending.channel, &message, pending.reply);
            if matches!(pending.channel, Channel::Room(_)) {
                room_messages.push(message);
            }
        }
        if !room_messages.is_empty() {
            self.notifier.do_send(FindMentions {
                messages: room_messages,
            });
        }
    }

    /// Delivers a stored message to everyone who should see it, serialized
    /// once; the sender's own copy (with `ref`) is the acknowledgement.
    fn deliver(&mut self, channel: &Channel, message: &ChatMessage, reply: Reply) {
        let frame = encode(&MessageFrame {
            message,
            reference: None,
        });
        let (sender, reference) = match reply {
            Reply::Session { session, reference } => (Some(session), reference),
            Reply::Http(answer) => {
                // ignore: the HTTP client may have gone; the message is stored.
                let _ = answer.send(Ok(message.clone()));
                (None, None)
            }
        };
        let mut sender_reached = false;
        let mut send = |session: SessionId, handle: &Handle, room: Option<&Arc<str>>| {
            if Some(session) == sender {
                sender_reached = true;
                if reference.is_some() {
                    return;
                }
            }
            handle.do_send(SessionEvent::Deliver {
                frame: frame.clone(),
                room: room.cloned(),
                id: Some(message.id),
            });
        };
        let mut room_key = None;
        match channel {
            Channel::Room(room) => {
                if let Some(state) = self.registry.room_mut(room) {
                    state.last_id = state.last_id.max(message.id);
                    for (session, handle) in &state.members {
                        send(*session, handle, Some(&state.key));
                    }
                    room_key = Some(state.key.clone());
                }
            }
            Channel::Direct(conversation) => {
                for user in distinct_users(conversation) {
                    for (session, handle, _) in self.registry.sessions_of(user) {
                        send(session, handle, None);
                    }
                }
            }
        }
        if let Some(session) = sender.filter(|_| reference.is_some() || !sender_reached) {
            let acknowledgement = encode(&MessageFrame {
                message,
                reference: reference.as_ref(),
            });
            self.send_to(session, acknowledgement, room_key, Some(message.id));
        }
    }

    /// Tells everyone waiting for `pending` that it was not stored.
    fn fail(&mut self, pending: Vec<Pending>, error: &StoreError) {
        log::error!(
            "{} messages were not stored and were answered `internal`: {error}",
            pending.len()
        );
        for item in pending {
            self.reject(item.reply, ChatError::Internal);
        }
    }

    fn reject(&self, reply: Reply, error: ChatError) {
        match reply {
            Reply::Session { session, reference } => {
                let frame = encode(&ServerEvent::error(&error, reference.as_ref()));
                self.send_to(session, frame, None, None);
            }
            Reply::Http(answer) => {
                // ignore: the HTTP client may have gone.
                let _ = answer.send(Err(error));
            }
        }
    }

    fn send_to(
        &self,
        session: SessionId,
        frame: bytestring::ByteString,
        room: Option<Arc<str>>,
        id: Option<u64>,
    ) {
        if let Some(handle) = self.registry.handle(session) {
            handle.do_send(SessionEvent::Deliver { frame, room, id });
        }
    }

    /// Sends `frame` to the sessions in `room` whose user is not `except`.
    fn announce(&self, room: &RoomName, except: &UserName, frame: bytestring::ByteString) {
        let Some(state) = self.registry.room(room) else {
            return;
        };
        for (session, handle) in &state.members {
            if self.registry.name_of(*session) != Some(except) {
                handle.do_send(SessionEvent::Deliver {
                    frame: frame.clone(),
                    room: Some(state.key.clone()),
                    id: None,
                });
            }
        }
    }

    fn announce_presence(&self, room: &RoomName, name: &UserName, event: PresenceEvent) {
        let frame = encode(&ServerEvent::Presence { room, name, event });
        self.announce(room, name, frame);
    }

    /// Queues a message for storage, or refuses it once sessions are closed.
    fn enqueue(&mut self, pending: Pending, ctx: &mut Context<Self>) {
        if matches!(self.lifecycle, Lifecycle::Closed) {
            self.reject(pending.reply, ChatError::ShuttingDown);
            return;
        }
        self.outbox.push_message(pending);
        self.flush(ctx);
    }

    fn finish_shutdown_if_drained(&mut self) {
        if !matches!(self.lifecycle, Lifecycle::Draining(_)) || !self.outbox.is_idle() {
            return;
        }
        if let Lifecycle::Draining(waiters) =
            std::mem::replace(&mut self.lifecycle, Lifecycle::Closed)
        {
            log::info!("every received message is stored; closing all sessions");
            for handle in self.registry.handles() {
                handle.do_send(SessionEvent::Close);
            }
            for waiter in waiters {
                // ignore: nobody waits any more if the caller gave up.
                let _ = waiter.send(());
            }
        }
    }
}

/// The users of a conversation, once each (`@bo+bo` has one).
fn distinct_users(conversation: &Conversation) -> Vec<&UserName> {
    let [first, second] = conversation.users();
    if first == second {
        vec![first]
    } else {
        vec![first, second]
    }
}

impl Actor for ChatServer {
    type Context = Context<Self>;
}

impl Handler<Connect> for ChatServer {
    type Result = ();

    fn handle(&mut self, message: Connect, _: &mut Context<Self>) {
        let Connect {
            session,
            name,
            events,
        } = message;
        let first = self.registry.connect(session, name.clone(), events.clone());
        if first {
            // The worker answers the session itself, after any mention it is
            // still to keep for this user (its mailbox keeps our order).
            self.notifier.do_send(TakePendingMentions {
                name,
                session: events,
            });
        } else {
            events.do_send(SessionEvent::PendingMentions(Vec::new()));
        }
    }
}

impl Handler<Disconnect> for ChatServer {
    type Result = ();

    fn handle(&mut self, message: Disconnect, _: &mut Context<Self>) {
        if let Some((name, rooms)) = self.registry.disconnect(message.session) {
            for room in rooms {
                self.announce_presence(&room, &name, PresenceEvent::Leave);
            }
        }
    }
}

impl Handler<Join> for ChatServer {
    type Result = Result<JoinReply, ChatError>;

    fn handle(&mut self, message: Join, ctx: &mut Context<Self>) -> Self::Result {
        let joined = self
            .registry
            .join(message.session, &message.room)
            .ok_or(ChatError::Internal)?;
        if joined.created {
            self.outbox.push_room(message.room.clone());
            self.flush(ctx);
        }
        if joined.first_of_name {
            if let Some(name) = self.registry.name_of(message.session).cloned() {
                self.announce_presence(&message.room, &name, PresenceEvent::Join);
            }
        }
        Ok(JoinReply {
            members: joined.members,
            last_id: joined.last_id,
        })
    }
}

impl Handler<Leave> for ChatServer {
    type Result = ();

    fn handle(&mut self, message: Leave, _: &mut Context<Self>) {
        if self.registry.leave(message.session, &message.room) == Some(true) {
            if let Some(name) = self.registry.name_of(message.session).cloned() {
                self.announce_presence(&message.room, &name, PresenceEvent::Leave);
            }
        }
    }
}

impl Handler<Say> for ChatServer {
    type Result = ();

    fn handle(&mut self, message: Say, ctx: &mut Context<Self>) {
        let Say {
            session,
            channel,
            text,
            reference,
        } = message;
        let reply = Reply::Session { session, reference };
        let Some(from) = self.registry.name_of(session).cloned() else {
            return;
        };
        if let Channel::Room(room) = &channel {
            if !self.registry.is_member(session, room) {
                return self.reject(reply, ChatError::NotInRoom(room.to_string()));
            }
        }
        let message = NewMessage {
            channel: channel.key(),
            from,
            text: text.into_string(),
        };
        self.enqueue(
            Pending {
                channel,
                message,
                reply,
            },
            ctx,
        );
    }
}

impl Handler<Post> for ChatServer {
    type Result = ResponseFuture<Result<ChatMessage, ChatError>>;

    fn handle(&mut self, message: Post, ctx: &mut Context<Self>) -> Self::Result {
        let (answer, stored) = oneshot::channel();
        let Post { room, from, text } = message;
        if self.registry.add_room(&room, 0) {
            self.outbox.push_room(room.clone());
        }
        let message = NewMessage {
            channel: room.to_string(),
            from,
            text: text.into_string(),
        };
        self.enqueue(
            Pending {
                channel: Channel::Room(room),
                message,
                reply: Reply::Http(answer),
            },
            ctx,
        );
        Box::pin(async move { stored.await.unwrap_or(Err(ChatError::Internal)) })
    }
}

impl Handler<Typing> for ChatServer {
    type Result = ();

    fn handle(&mut self, message: Typing, _: &mut Context<Self>) {
        let Some(from) = self.registry.name_of(message.session).cloned() else {
            return;
        };
        match &message.channel {
            Channel::Room(room) => {
                let frame = encode(&ServerEvent::Typing {
                    room: room.as_str(),
                    from: &from,
                });
                self.announce(room, &from, frame);
            }
            Channel::Direct(conversation) => {
                let key = conversation.to_string();
                let frame = encode(&ServerEvent::Typing {
                    room: &key,
                    from: &from,
                });
                for user in distinct_users(conversation)
                    .into_iter()
                    .filter(|user| **user != from)
                {
                    for (_, handle, _) in self.registry.sessions_of(user) {
                        handle.do_send(SessionEvent::Deliver {
                            frame: frame.clone(),
                            room: None,
                            id: None,
                        });
                    }
                }
            }
        }
    }
}

impl Handler<ListRooms> for ChatServer {
    type Result = MessageResult<ListRooms>;

    fn handle(&mut self, _: ListRooms, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.registry.summaries())
    }
}

impl Handler<Who> for ChatServer {
    type Result = MessageResult<Who>;

    fn handle(&mut self, message: Who, _: &mut Context<Self>) -> Self::Result {
        let members = self
            .registry
            .room(&message.room)
            .map(|room| room.member_names());
        MessageResult(members.unwrap_or_default())
    }
}

impl Handler<RoomExists> for ChatServer {
    type Result = bool;

    fn handle(&mut self, message: RoomExists, _: &mut Context<Self>) -> bool {
        self.registry.room(&message.room).is_some()
    }
}

impl Handler<RouteMentions> for ChatServer {
    type Result = ();

    fn handle(&mut self, message: RouteMentions, _: &mut Context<Self>) {
        for Mention { message, users } in message.mentions {
            let Ok(room) = RoomName::parse(message.room.as_str()) else {
                continue;
            };
            let frame = encode(&ServerEvent::Mention {
                room: &message.room,
                id: message.id,
                from: &message.from,
                text: &message.text,
            });
            for user in users {
                if !self.registry.is_online(&user) {
                    self.notifier.do_send(KeepMention {
                        recipient: user,
                        message: message.clone(),
                    });
                    continue;
                }
                for (_, handle, rooms) in self.registry.sessions_of(&user) {
                    if !rooms.contains(&room) {
                        handle.do_send(SessionEvent::Deliver {
                            frame: frame.clone(),
                            room: None,
                            id: None,
                        });
                    }
                }
            }
        }
    }
}

impl Handler<Shutdown> for ChatServer {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) -> Self::Result {
        let (done, finished) = oneshot::channel();
        match &mut self.lifecycle {
            Lifecycle::Running => self.lifecycle = Lifecycle::Draining(vec![done]),
            Lifecycle::Draining(waiters) => waiters.push(done),
            Lifecycle::Closed => {
                // ignore: the receiver is right below.
                let _ = done.send(());
            }
        }
        self.flush(ctx);
        Box::pin(async move {
            // ignore: a dropped sender means the server stopped, which is
            // what the caller waits for anyway.
            let _ = finished.await;
        })
    }
}
