//! The [`ChatServer`]'s message handlers: each routes to the registry, the
//! outbox or the notification worker and returns at once.

use actix::prelude::*;
use tokio::sync::oneshot;

use super::inbox::{Command, CommandsWaiting};
use super::messages::*;
use super::outbox::{Pending, PendingCursor, Reply};
use super::remote::JoinAnswer;
use super::server::{ChatServer, Lifecycle};
use crate::cluster::{Entry, Event, Scope};
use crate::domain::{Channel, RoomName, SessionId, UserName};
use crate::error::ChatError;
use crate::notify::TakePendingMentions;
use crate::outbound::CloseReason;
use crate::store::{CursorKind, CursorMove, NewMessage};

impl ChatServer {
    /// Queues a message for storage (the caller flushes), or refuses it once
    /// sessions are closed.
    fn enqueue(&mut self, pending: Pending) {
        if matches!(self.lifecycle, Lifecycle::Closed) {
            return self.reject(pending.reply, ChatError::ShuttingDown);
        }
        self.metrics.received.inc();
        self.outbox.push_message(pending);
    }

    /// A session's `say` or `direct`, from the inbox or the mailbox: checked
    /// against membership, then queued (the caller flushes).
    pub(super) fn accept(&mut self, say: Say) {
        let Say { session, channel, text, reference, idempotency_key } = say;
        let reply = Reply::Session { session, reference };
        let Some(from) = self.registry.name_of(session).cloned() else {
            return;
        };
        if let Channel::Room(room) = &channel {
            if !self.registry.is_member(session, room) {
                return self.reject(reply, ChatError::NotInRoom(room.to_string()));
            }
        }
        let message = NewMessage { channel, from, text, idempotency_key };
        self.enqueue(Pending { message, reply });
    }
}

impl ChatServer {
    /// A new session: known by name from now on; see [`Connect`].
    fn connect(&mut self, connect: Connect, ctx: &mut Context<Self>) {
        let Connect { session, name, handle } = connect;
        if !matches!(self.lifecycle, Lifecycle::Running) {
            return handle.close(CloseReason::ShuttingDown);
        }
        if self.registry.connect(session, name.clone(), handle.clone()) {
            self.local_presence(Entry { scope: Scope::Online, name: name.clone() }, true);
            if self.cluster.is_some() {
                self.follow_conversations(name.clone(), ctx);
            }
            // The worker answers the session itself, after any mention it is
            // still to keep for this user (its mailbox keeps our order).
            self.metrics.notification_queue.inc();
            self.notifier.do_send(TakePendingMentions { name, session: handle });
        } else {
            handle.pending_mentions(Vec::new());
        }
    }
}

impl Handler<Disconnect> for ChatServer {
    type Result = ();

    fn handle(&mut self, message: Disconnect, ctx: &mut Context<Self>) {
        self.flush(ctx); // the session's last commands first (see `inbox`)
        if let Some((name, rooms)) = self.registry.disconnect(message.session) {
            self.left(name, rooms);
        }
        self.confirm_quiesced(message.session);
        self.finish_shutdown_if_drained();
    }
}

impl ChatServer {
    /// One command from the inbox, in the order its session sent it (the
    /// caller flushes).
    pub(super) fn take_command(&mut self, command: Command, ctx: &mut Context<Self>) {
        match command {
            Command::Connect(connect) => self.connect(connect, ctx),
            Command::Join(Join { session, room, reply }) => self.join(session, room, reply, ctx),
            Command::Say(say) => self.accept(say),
            Command::Leave(Leave { session, room }) => {
                if self.registry.leave(session, &room) == Some(true) {
                    if let Some(name) = self.registry.name_of(session).cloned() {
                        self.local_presence(Entry { scope: Scope::Room(room), name }, false);
                    }
                }
            }
        }
    }

    /// Puts `session` in `room`; see [`Join`]. The answer waits for the
    /// room's latest id when this node has not followed the room's ids
    /// (with a cluster; on one node every room is known from the start or
    /// created here).
    fn join(
        &mut self,
        session: SessionId,
        room: RoomName,
        reply: JoinAnswer,
        ctx: &mut Context<Self>,
    ) {
        let Some(joined) = self.registry.join(session, &room) else {
            // ignore: the session may have gone.
            let _ = reply.send(Err(ChatError::Internal));
            return;
        };
        if joined.created {
            self.outbox.push_room(room.clone());
        }
        if joined.first_of_name {
            if let Some(name) = self.registry.name_of(session).cloned() {
                self.local_presence(Entry { scope: Scope::Room(room.clone()), name }, true);
            }
        }
        let channel = Channel::Room(room.clone());
        if !self.sequencer.knows(&channel) {
            if self.cluster.is_some() {
                // Stored (again) in case its creator died before storing it.
                self.outbox.push_room(room.clone());
                self.reads.lookups.push((session, room, reply));
                return self.start_reads(ctx);
            }
            self.sequencer.start(channel, 0);
        }
        self.answer_join(session, room, reply);
    }

    /// `name`'s session ended: it left `rooms` (its name's last session in
    /// each), and maybe this node.
    pub(super) fn left(&mut self, name: UserName, rooms: Vec<RoomName>) {
        for room in rooms {
            self.local_presence(Entry { scope: Scope::Room(room), name: name.clone() }, false);
        }
        if !self.registry.is_online(&name) {
            self.local_presence(Entry { scope: Scope::Online, name }, false);
        }
    }
}

impl Handler<CommandsWaiting> for ChatServer {
    type Result = ();

    fn handle(&mut self, _: CommandsWaiting, ctx: &mut Context<Self>) {
        self.flush(ctx); // takes the inbox first
    }
}

impl Handler<Post> for ChatServer {
    type Result = ResponseFuture<Result<Posted, ChatError>>;

    fn handle(&mut self, message: Post, ctx: &mut Context<Self>) -> Self::Result {
        if !matches!(self.lifecycle, Lifecycle::Running) {
            return Box::pin(async { Err(ChatError::ShuttingDown) });
        }
        let (answer, stored) = oneshot::channel();
        let Post { room, from, text, idempotency_key } = message;
        if self.registry.add_room(&room) {
            self.outbox.push_room(room.clone());
        }
        let message = NewMessage { channel: Channel::Room(room), from, text, idempotency_key };
        self.enqueue(Pending { message, reply: Reply::Http(answer) });
        self.flush(ctx);
        Box::pin(async move { stored.await.unwrap_or(Err(ChatError::Internal)) })
    }
}

impl Handler<Read> for ChatServer {
    type Result = ();

    fn handle(&mut self, message: Read, ctx: &mut Context<Self>) {
        self.flush(ctx); // the session's earlier commands first (see `inbox`)
        let Read { session, channel, id, reference } = message;
        let Some(reader) = self.registry.name_of(session).cloned() else {
            return;
        };
        if matches!(self.lifecycle, Lifecycle::Closed) {
            return self.reject(Reply::Session { session, reference }, ChatError::ShuttingDown);
        }
        let cursor = CursorMove { reader, channel, to: id, kind: CursorKind::Read };
        self.outbox.push_cursor(PendingCursor { cursor, reply: Some((session, reference)) });
        self.flush(ctx);
    }
}

impl Handler<Typing> for ChatServer {
    type Result = ();

    fn handle(&mut self, message: Typing, ctx: &mut Context<Self>) {
        self.flush(ctx); // the session's earlier commands first (see `inbox`)
        let Some(from) = self.registry.name_of(message.session).cloned() else {
            return;
        };
        let channel = message.channel;
        self.typing_here(&channel, &from);
        self.publish(|| Event::Typing { channel, from });
    }
}

impl Handler<ListRooms> for ChatServer {
    type Result = MessageResult<ListRooms>;

    fn handle(&mut self, _: ListRooms, ctx: &mut Context<Self>) -> Self::Result {
        self.flush(ctx); // the asking session's earlier joins first (see `inbox`)
        MessageResult(self.summaries())
    }
}

impl Handler<Who> for ChatServer {
    type Result = MessageResult<Who>;

    fn handle(&mut self, message: Who, ctx: &mut Context<Self>) -> Self::Result {
        self.flush(ctx); // the asking session's earlier joins first (see `inbox`)
        MessageResult(self.members(&message.room))
    }
}

impl Handler<GetStats> for ChatServer {
    type Result = Stats;

    fn handle(&mut self, _: GetStats, _: &mut Context<Self>) -> Stats {
        Stats {
            rooms: self.registry.rooms().count(),
            members: self.registry.memberships(),
            waiting_writes: self.outbox.waiting(),
        }
    }
}

impl Handler<RoomExists> for ChatServer {
    type Result = bool;

    fn handle(&mut self, message: RoomExists, _: &mut Context<Self>) -> bool {
        self.registry.room(&message.room).is_some()
    }
}

impl Handler<Quiesced> for ChatServer {
    type Result = ();

    fn handle(&mut self, message: Quiesced, ctx: &mut Context<Self>) {
        self.flush(ctx); // the session's last commands first (see `inbox`)
        self.confirm_quiesced(message.session);
        self.finish_shutdown_if_drained();
    }
}

impl Handler<Shutdown> for ChatServer {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) -> Self::Result {
        let (done, finished) = oneshot::channel();
        self.begin_shutdown(done, ctx);
        Box::pin(async move {
            // ignore: a dropped sender means the server stopped, which is
            // what the caller waits for anyway.
            let _ = finished.await;
        })
    }
}
