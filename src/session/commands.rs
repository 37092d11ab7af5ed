//! What a session does with each client command.

use actix::prelude::*;
use actix_web_actors::ws;

use super::WsSession;
use crate::chat::{Leave, ListRooms, Read, Say, Typing, Who};
use crate::domain::{Channel, Conversation, IdempotencyKey, MessageId, Ref, RoomName, Text};
use crate::error::ChatError;
use crate::protocol::{decode, encode, ClientCommand, Frame, InboxEntry, ServerEvent};

type Ctx = ws::WebsocketContext<WsSession>;

impl WsSession {
    /// One complete text message from the client.
    pub(super) fn on_text(&mut self, text: &str, ctx: &mut Ctx) {
        log::debug!("session {} sent {text}", self.id);
        match decode(text, self.limits.max_text_chars) {
            Ok(frame) if self.quiescing => {
                self.send_error(ctx, &ChatError::ShuttingDown, frame.reference.as_ref())
            }
            Ok(frame) => self.dispatch(frame, ctx),
            Err(rejected) => self.send_error(ctx, &rejected.error, rejected.reference.as_ref()),
        }
    }

    /// One arm per client command: a new command adds its arm and its
    /// method here (docs/architecture.md, "Adding a command").
    fn dispatch(&mut self, frame: Frame, ctx: &mut Ctx) {
        let Frame { reference, command } = frame;
        match command {
            ClientCommand::Join { room, since, limit } => {
                self.join(room, since, limit.unwrap_or_default(), reference, ctx)
            }
            ClientCommand::Leave { room } => self.leave(room, reference, ctx),
            ClientCommand::Say { room, text, idempotency_key } => {
                if self.check_member(&room, reference.as_ref(), ctx) {
                    self.say(Channel::Room(room), text, reference, idempotency_key);
                }
            }
            ClientCommand::Direct { to, text, idempotency_key } => {
                let conversation = Conversation::between(self.name.clone(), to);
                self.say(Channel::Direct(conversation), text, reference, idempotency_key);
            }
            ClientCommand::History { room, before, since, limit } => {
                self.history(room, since, before, limit.unwrap_or_default(), reference, ctx)
            }
            ClientCommand::Rooms {} => self.rooms(reference, ctx),
            ClientCommand::Who { room } => self.who(room, reference, ctx),
            ClientCommand::Typing { room } => self.typing(room, reference, ctx),
            ClientCommand::Read { room, id } => self.read(room, id, reference, ctx),
            ClientCommand::Inbox {} => self.inbox(reference, ctx),
        }
    }

    /// `rooms`: every room with its member count.
    fn rooms(&mut self, reference: Option<Ref>, ctx: &mut Ctx) {
        let request = self.chat.send(ListRooms);
        self.reply(request, reference, ctx, |rooms, reference| {
            encode(&ServerEvent::Rooms { rooms: &rooms }.answering(reference))
        });
    }

    /// `who`: a room's members, joined or not.
    fn who(&mut self, room: RoomName, reference: Option<Ref>, ctx: &mut Ctx) {
        let request = self.chat.send(Who { room: room.clone() });
        self.reply(request, reference, ctx, move |members, reference| {
            let frame = ServerEvent::Members { room: &room, members: &members };
            encode(&frame.answering(reference))
        });
    }

    /// `read`: moves the user's cursor; the `ChatServer` answers once stored.
    fn read(&mut self, channel: Channel, id: MessageId, reference: Option<Ref>, ctx: &mut Ctx) {
        if self.check_own(&channel, reference.as_ref(), ctx) {
            self.chat.do_send(Read { session: self.id, channel, id, reference });
        }
    }

    /// Whether the session is in `room`; if not, answers `not_in_room`.
    fn check_member(&mut self, room: &RoomName, reference: Option<&Ref>, ctx: &mut Ctx) -> bool {
        if self.rooms.contains_key(room) {
            return true;
        }
        self.send_error(ctx, &ChatError::NotInRoom(room.to_string()), reference);
        false
    }

    fn leave(&mut self, room: RoomName, reference: Option<Ref>, ctx: &mut Ctx) {
        if !self.check_member(&room, reference.as_ref(), ctx) {
            return;
        }
        self.rooms.remove(&room);
        self.inbox.leave(Leave { session: self.id, room: room.clone() });
        self.send_frame(
            ctx,
            encode(&ServerEvent::Left { room: &room }.answering(reference.as_ref())),
        );
    }

    fn say(
        &mut self,
        channel: Channel,
        text: Text,
        reference: Option<Ref>,
        idempotency_key: Option<IdempotencyKey>,
    ) {
        self.inbox.say(Say { session: self.id, channel, text, reference, idempotency_key });
    }

    /// Whether `channel` is not someone else's conversation; if it is,
    /// answers `forbidden`.
    pub(super) fn check_own(
        &mut self,
        channel: &Channel,
        reference: Option<&Ref>,
        ctx: &mut Ctx,
    ) -> bool {
        match channel {
            Channel::Direct(conversation) if !conversation.includes(&self.name) => {
                let error =
                    ChatError::Forbidden(format!("{conversation} is not your conversation"));
                self.send_error(ctx, &error, reference);
                false
            }
            _ => true,
        }
    }

    fn typing(&mut self, channel: Channel, reference: Option<Ref>, ctx: &mut Ctx) {
        let allowed = match &channel {
            Channel::Room(room) => self.check_member(room, reference.as_ref(), ctx),
            Channel::Direct(_) => self.check_own(&channel, reference.as_ref(), ctx),
        };
        if allowed {
            self.chat.do_send(Typing { session: self.id, channel });
        }
    }

    /// `inbox`: the user's read state everywhere, most recent first.
    fn inbox(&mut self, reference: Option<Ref>, ctx: &mut Ctx) {
        let inbox = self.store.inbox(self.name.clone());
        ctx.spawn(inbox.into_actor(self).map(move |result, session, ctx| match result {
            Ok(states) => {
                let conversations: Vec<InboxEntry> = states
                    .into_iter()
                    .map(|state| InboxEntry {
                        room: state.room,
                        last_id: state.last_id,
                        last_read: state.last_read,
                        unread: state.unread,
                        mentions: state.mentions,
                    })
                    .collect();
                let reference = reference.as_ref();
                let frame = ServerEvent::Inbox { conversations: &conversations };
                session.send_frame(ctx, encode(&frame.answering(reference)));
            }
            Err(error) => {
                log::error!("reading the inbox of {} failed: {error}", session.name);
                session.send_error(ctx, &ChatError::Internal, reference.as_ref());
            }
        }));
    }

    /// Sends the answer of a `ChatServer` query to the client.
    fn reply<M, T>(
        &mut self,
        request: actix::dev::Request<crate::chat::ChatServer, M>,
        reference: Option<Ref>,
        ctx: &mut Ctx,
        render: impl FnOnce(T, Option<&Ref>) -> bytestring::ByteString + 'static,
    ) where
        M: Message<Result = T> + Send + 'static,
        T: Send + 'static,
        crate::chat::ChatServer: Handler<M>,
    {
        ctx.spawn(request.into_actor(self).map(move |result, session, ctx| match result {
            Ok(answer) => {
                let frame = render(answer, reference.as_ref());
                session.send_frame(ctx, frame);
            }
            Err(error) => {
                log::error!("the chat server did not answer: {error}");
                session.send_error(ctx, &ChatError::Internal, reference.as_ref());
            }
        }));
    }
}
