//! Joining rooms and reading history, so that history and live messages
//! meet exactly: no message missed, none shown twice.
//!
//! The `ChatServer` answers a `Join` with the last id it has delivered in
//! the room; from then on the session gets the room's messages live. The
//! session reads history up to that id and holds back the room's live
//! frames until `joined` is sent. Later `history` reads stop at the last id
//! the session has passed on, for the same reason.

use std::sync::Arc;

use actix::prelude::*;
use actix_web_actors::ws;
use tokio::sync::oneshot;

use super::WsSession;
use crate::chat::{Join, JoinReply, Leave};
use crate::domain::{Channel, Limit, MessageId, Ref, RoomName, UserName};
use crate::error::ChatError;
use crate::outbound::Delivery;
use crate::protocol::{encode, ServerEvent};
use crate::store::{MessageStore, Page, PageQuery};

/// Where a session stands in one room.
#[derive(Debug)]
pub enum RoomState {
    /// `join` sent, history loading: the room's frames wait here.
    /// `previous` is where the session stood if it was already in the room.
    Joining { generation: u64, held: Vec<Delivery>, previous: Option<MessageId> },
    /// `joined` sent; `last_id` is the last message id passed on.
    Joined { last_id: MessageId },
}

type Ctx = ws::WebsocketContext<WsSession>;

impl WsSession {
    /// A frame from the server: held while its room's history loads,
    /// dropped if the history already held it or the session left the room.
    pub(super) fn on_deliver(&mut self, delivery: Delivery, ctx: &mut Ctx) {
        // An acknowledgement answers the client's own frame: it is never
        // held back (a held frame is lost if the join fails or the session
        // closes first) nor dropped, but it does count as passed on.
        if let Some(room) = delivery.room.as_deref() {
            let acknowledgement = delivery.acknowledgement;
            match self.rooms.get_mut(room) {
                Some(RoomState::Joining { held, .. }) if !acknowledgement => {
                    return held.push(delivery);
                }
                Some(RoomState::Joined { last_id }) => {
                    if let Some(id) = delivery.id {
                        if id <= *last_id && !acknowledgement {
                            return; // already sent, in `joined.history`
                        }
                        *last_id = (*last_id).max(id);
                    }
                }
                None if !acknowledgement => return, // left the room
                _ => {}
            }
        }
        self.send_frame(ctx, delivery.frame);
    }

    /// `join`: see the module doc. Joining a room the session is already in
    /// goes the same way, and keeps the session in the room throughout.
    pub(super) fn join(
        &mut self,
        room: RoomName,
        since: Option<MessageId>,
        limit: Limit,
        reference: Option<Ref>,
        ctx: &mut Ctx,
    ) {
        if !self.rooms.contains_key(&room) && self.rooms.len() >= self.limits.max_rooms {
            let error = ChatError::BadRequest(format!(
                "a session may be in at most {} rooms: leave one first",
                self.limits.max_rooms
            ));
            return self.send_error(ctx, &error, reference.as_ref());
        }
        let generation = self.start_joining(&room);
        let (reply, answer) = oneshot::channel();
        self.inbox.join(Join { session: self.id, room: room.clone(), reply });
        let request = JoinRequest { room: room.clone(), since, limit, reader: self.name.clone() };
        let loaded = request.load(self.store.clone(), answer);
        ctx.spawn(loaded.into_actor(self).map(move |result, session, ctx| {
            session.finish_join(room, generation, result, reference, ctx)
        }));
    }

    /// Marks `room` as joining (keeping what the session held or where it
    /// stood in it); returns the join's generation.
    fn start_joining(&mut self, room: &RoomName) -> u64 {
        self.join_generation += 1;
        let generation = self.join_generation;
        let (previous, held) = match self.rooms.remove(room) {
            Some(RoomState::Joined { last_id }) => (Some(last_id), Vec::new()),
            Some(RoomState::Joining { held, previous, .. }) => (previous, held),
            None => (None, Vec::new()),
        };
        self.rooms.insert(room.clone(), RoomState::Joining { generation, held, previous });
        generation
    }

    /// Answers a join with `joined` (or the error), unless a later join or
    /// a leave of the room took over meanwhile.
    fn finish_join(
        &mut self,
        room: RoomName,
        generation: u64,
        result: Result<Loaded, ChatError>,
        reference: Option<Ref>,
        ctx: &mut Ctx,
    ) {
        let current = matches!(
            self.rooms.get(&room),
            Some(RoomState::Joining { generation: g, .. }) if *g == generation
        );
        if !current {
            return;
        }
        match result {
            Ok(Loaded { members, upto, page, last_read, unread }) => {
                let joined = ServerEvent::Joined {
                    room: &room,
                    members: &members,
                    history: &page.messages,
                    more: page.more,
                    last_read,
                    unread,
                };
                self.send_frame(ctx, encode(&joined.answering(reference.as_ref())));
                self.settle(room, Some(upto), ctx);
            }
            Err(error) => {
                self.send_error(ctx, &error, reference.as_ref());
                self.settle(room, None, ctx);
            }
        }
    }

    /// Ends a join: the session is in the room up to `upto` (or where it was
    /// before, if the join failed), and the frames held meanwhile follow.
    /// A first join that failed takes the session out of the room.
    fn settle(&mut self, room: RoomName, upto: Option<MessageId>, ctx: &mut Ctx) {
        let Some(RoomState::Joining { held, previous, .. }) = self.rooms.remove(&room) else {
            return;
        };
        match upto.or(previous) {
            Some(last_id) => {
                let last_id = last_id.max(previous.unwrap_or(0));
                self.rooms.insert(room, RoomState::Joined { last_id });
                for delivery in held {
                    self.on_deliver(delivery, ctx);
                }
            }
            None => self.inbox.leave(Leave { session: self.id, room }),
        }
    }

    /// `history` of a room the session is in, or of the user's own
    /// conversation.
    pub(super) fn history(
        &mut self,
        channel: Channel,
        since: Option<MessageId>,
        before: Option<MessageId>,
        limit: Limit,
        reference: Option<Ref>,
        ctx: &mut Ctx,
    ) {
        let upto = match &channel {
            Channel::Room(room) => match self.rooms.get(room) {
                Some(RoomState::Joined { last_id }) => Some(*last_id),
                Some(RoomState::Joining { .. }) => None,
                None => {
                    let error = ChatError::NotInRoom(room.to_string());
                    return self.send_error(ctx, &error, reference.as_ref());
                }
            },
            Channel::Direct(_) if !self.check_own(&channel, reference.as_ref(), ctx) => return,
            Channel::Direct(_) => None,
        };
        let query = PageQuery { channel: channel.clone(), since, before, upto, limit: limit.get() };
        let page = self.store.page(query);
        ctx.spawn(page.into_actor(self).map(move |result, session, ctx| match result {
            Ok(page) => {
                let frame = ServerEvent::History {
                    room: channel.as_str(),
                    messages: &page.messages,
                    more: page.more,
                };
                session.send_frame(ctx, encode(&frame.answering(reference.as_ref())));
            }
            Err(error) => {
                log::error!("reading history of {channel} failed: {error}");
                session.send_error(ctx, &ChatError::Internal, reference.as_ref());
            }
        }));
    }
}

/// A join's reads, done off the session: the `ChatServer`'s answer, then
/// the history up to the id it gave, and the user's read state.
struct JoinRequest {
    room: RoomName,
    since: Option<MessageId>,
    limit: Limit,
    reader: UserName,
}

/// What `joined` is made of.
struct Loaded {
    /// `joined.members`.
    members: Vec<UserName>,
    /// The last id the `ChatServer` delivered in the room: history ends here.
    upto: MessageId,
    page: Page,
    last_read: MessageId,
    unread: u64,
}

impl JoinRequest {
    async fn load(
        self,
        store: Arc<dyn MessageStore>,
        answer: oneshot::Receiver<Result<JoinReply, ChatError>>,
    ) -> Result<Loaded, ChatError> {
        let JoinReply { members, last_id } = answer.await.map_err(|_| {
            log::error!("the chat server dropped a join without answering");
            ChatError::Internal
        })??;
        let channel = Channel::Room(self.room);
        let query = PageQuery {
            channel: channel.clone(),
            since: self.since,
            before: None,
            upto: Some(last_id),
            limit: self.limit.get(),
        };
        let page = store.page(query).await;
        let state = store.read_state(self.reader, channel).await;
        let (page, state) = page.and_then(|page| Ok((page, state?))).map_err(|error| {
            log::error!("reading history for a join failed: {error}");
            ChatError::Internal
        })?;
        // No cursor yet: this is the user's first join, and their cursor
        // starts at the latest message.
        let (last_read, unread) = state.map_or((last_id, 0), |s| (s.last_read, s.unread));
        Ok(Loaded { members, upto: last_id, page, last_read, unread })
    }
}
