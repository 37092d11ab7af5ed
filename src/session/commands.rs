//! What a session does with each client command.

use actix::prelude::*;
use actix_web_actors::ws;

use super::WsSession;
use crate::chat::{Leave, ListRooms, Say, Typing, Who};
use crate::domain::{Channel, Conversation, Ref, RoomName, Text};
use crate::error::ChatError;
use crate::protocol::{decode, encode, ClientCommand, Frame, ServerEvent};

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

    fn dispatch(&mut self, frame: Frame, ctx: &mut Ctx) {
        let Frame { reference, command } = frame;
        match command {
            ClientCommand::Join { room, since, limit } => {
                self.join(room, since, limit.unwrap_or_default(), reference, ctx)
            }
            ClientCommand::Leave { room } => self.leave(room, reference, ctx),
            ClientCommand::Say { room, text } => {
                if self.check_member(&room, reference.as_ref(), ctx) {
                    self.say(Channel::Room(room), text, reference);
                }
            }
            ClientCommand::Direct { to, text } => {
                let conversation = Conversation::between(self.name.clone(), to);
                self.say(Channel::Direct(conversation), text, reference);
            }
            ClientCommand::History { room, before, since, limit } => {
                self.history(room, since, before, limit.unwrap_or_default(), reference, ctx)
            }
            ClientCommand::Rooms {} => {
                let request = self.chat.send(ListRooms);
                self.reply(request, reference, ctx, |rooms, reference| {
                    encode(&ServerEvent::Rooms { rooms: &rooms, reference })
                });
            }
            ClientCommand::Who { room } => {
                let request = self.chat.send(Who { room: room.clone() });
                self.reply(request, reference, ctx, move |members, reference| {
                    encode(&ServerEvent::Members { room: &room, members: &members, reference })
                });
            }
            ClientCommand::Typing { room } => self.typing(room, reference, ctx),
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
        self.chat.do_send(Leave { session: self.id, room: room.clone() });
        self.send_frame(
            ctx,
            encode(&ServerEvent::Left { room: &room, reference: reference.as_ref() }),
        );
    }

    fn say(&mut self, channel: Channel, text: Text, reference: Option<Ref>) {
        self.chat.do_send(Say { session: self.id, channel, text, reference });
    }

    fn typing(&mut self, channel: Channel, reference: Option<Ref>, ctx: &mut Ctx) {
        match &channel {
            Channel::Room(room) => {
                if !self.check_member(room, reference.as_ref(), ctx) {
                    return;
                }
            }
            Channel::Direct(conversation) if !conversation.includes(&self.name) => {
                let error =
                    ChatError::Forbidden(format!("{conversation} is not your conversation"));
                return self.send_error(ctx, &error, reference.as_ref());
            }
            Channel::Direct(_) => {}
        }
        self.chat.do_send(Typing { session: self.id, channel });
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
