//! Joining rooms and reading history, so that history and live messages
//! meet exactly: no message missed, none shown twice.
//!
//! The `ChatServer` answers a `Join` with the last id it has delivered in
//! the room; from then on the session gets the room's messages live. The
//! session reads history up to that id and holds back the room's live
//! frames until `joined` is sent. Later `history` reads stop at the last id
//! the session has passed on, for the same reason.

use actix::prelude::*;
use actix_web_actors::ws;
use bytestring::ByteString;

use super::WsSession;
use crate::chat::{Join, JoinReply, Leave};
use crate::domain::{Channel, Limit, MessageId, Ref, RoomName};
use crate::error::ChatError;
use crate::protocol::{encode, ServerEvent};
use crate::store::{Page, PageQuery};

/// Where a session stands in one room.
#[derive(Debug)]
pub enum RoomState {
    /// `join` sent, history loading: the room's frames wait here.
    Joining {
        generation: u64,
        held: Vec<(ByteString, Option<MessageId>)>,
    },
    /// `joined` sent; `last_id` is the last message id passed on.
    Joined { last_id: MessageId },
}

type Ctx = ws::WebsocketContext<WsSession>;

impl WsSession {
    /// A frame from the server: held while its room's history loads.
    pub(super) fn on_deliver(
        &mut self,
        frame: ByteString,
        room: Option<std::sync::Arc<str>>,
        id: Option<MessageId>,
        ctx: &mut Ctx,
    ) {
        if let Some(state) = room.as_deref().and_then(|room| self.rooms.get_mut(room)) {
            match state {
                RoomState::Joining { held, .. } => return held.push((frame, id)),
                RoomState::Joined { last_id } => *last_id = id.unwrap_or(*last_id).max(*last_id),
            }
        }
        self.send_frame(ctx, frame);
    }

    /// `join`: see the module doc. A session already in the room reads
    /// history up to what it was sent and stays in the room throughout.
    pub(super) fn join(
        &mut self,
        room: RoomName,
        since: Option<MessageId>,
        limit: Limit,
        reference: Option<Ref>,
        ctx: &mut Ctx,
    ) {
        self.join_generation += 1;
        let generation = self.join_generation;
        let already = match self.rooms.get(&room) {
            Some(RoomState::Joined { last_id }) => Some(*last_id),
            _ => None,
        };
        if already.is_none() {
            self.rooms.insert(
                room.clone(),
                RoomState::Joining {
                    generation,
                    held: Vec::new(),
                },
            );
        }
        let request = self.chat.send(Join {
            session: self.id,
            room: room.clone(),
        });
        let store = self.store.clone();
        let channel = room.to_string();
        let loaded = async move {
            let JoinReply { members, last_id } = request.await.map_err(|error| {
                log::error!("the chat server did not answer a join: {error}");
                ChatError::Internal
            })??;
            let upto = already.unwrap_or(last_id);
            let query = PageQuery {
                channel,
                since,
                before: None,
                upto: Some(upto),
                limit: limit.get(),
            };
            let page = store.page(query).await.map_err(|error| {
                log::error!("reading history for a join failed: {error}");
                ChatError::Internal
            })?;
            Ok::<_, ChatError>((members, upto, page))
        };
        ctx.spawn(loaded.into_actor(self).map(move |result, session, ctx| {
            let current = match session.rooms.get(&room) {
                Some(RoomState::Joining { generation: g, .. }) => *g == generation,
                Some(RoomState::Joined { .. }) => already.is_some(),
                None => false,
            };
            if !current {
                return; // a later join or a leave took over
            }
            match result {
                Ok((members, upto, page)) => {
                    session.finish_join(room, members, upto, page, reference, ctx)
                }
                Err(error) => {
                    if already.is_none() {
                        session.rooms.remove(&room);
                        session.chat.do_send(Leave {
                            session: session.id,
                            room,
                        });
                    }
                    session.send_error(ctx, &error, reference.as_ref());
                }
            }
        }));
    }

    fn finish_join(
        &mut self,
        room: RoomName,
        members: Vec<crate::domain::UserName>,
        upto: MessageId,
        page: Page,
        reference: Option<Ref>,
        ctx: &mut Ctx,
    ) {
        let joined = ServerEvent::Joined {
            room: &room,
            members: &members,
            history: &page.messages,
            more: page.more,
            reference: reference.as_ref(),
        };
        self.send_frame(ctx, encode(&joined));
        let previous = self
            .rooms
            .insert(room.clone(), RoomState::Joined { last_id: upto });
        if let Some(RoomState::Joining { held, .. }) = previous {
            for (frame, id) in held {
                self.on_deliver(frame, Some(room.as_str().into()), id, ctx);
            }
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
            Channel::Direct(conversation) => {
                if !conversation.includes(&self.name) {
                    let error =
                        ChatError::Forbidden(format!("{conversation} is not your conversation"));
                    return self.send_error(ctx, &error, reference.as_ref());
                }
                None
            }
        };
        let key = channel.key();
        let query = PageQuery {
            channel: key.clone(),
            since,
            before,
            upto,
            limit: limit.get(),
        };
        let page = self.store.page(query);
        ctx.spawn(
            page.into_actor(self)
                .map(move |result, session, ctx| match result {
                    Ok(page) => {
                        let frame = ServerEvent::History {
                            room: &key,
                            messages: &page.messages,
                            more: page.more,
                            reference: reference.as_ref(),
                        };
                        session.send_frame(ctx, encode(&frame));
                    }
                    Err(error) => {
                        log::error!("reading history of {key} failed: {error}");
                        session.send_error(ctx, &ChatError::Internal, reference.as_ref());
                    }
                }),
        );
    }
}
