//! [`Inbox`]: a session's `Connect`, `join`, `say` and `leave` on their
//! way to the [`ChatServer`], in the order the session sent them.
//!
//! Why one queue for them: a client may pipeline `join` and `say` and
//! close at once (a script, `printf ... | websocat`). When the `join` went
//! through the server's mailbox and the `say` through this queue, the
//! server could take the `say` first (at the end of a commit) and answer
//! `not_in_room` to a client that was gone: the message was lost. One
//! queue keeps a session's commands in its order; the server takes them
//! all, in that order, every time it looks.
//!
//! Why not the mailbox for all of them: a mailbox message to the server's
//! parked thread wakes it, once per `say` (docs/performance.md, item 7).
//! A `say` wakes the server only when it is not going to look anyway:
//! during a commit or the pause before the next one, it takes what waits
//! here by itself. A `Connect`, `join` or `leave` always wakes it: the
//! session's next commands depend on it.
//!
//! What a session sends through the mailbox instead (`read`, `typing`,
//! `rooms`, `who`, `Disconnect`, `Quiesced`) makes the server take this
//! inbox first, so it never overtakes the session's earlier commands.

use std::sync::{Mutex, MutexGuard};

use actix::prelude::*;

use super::messages::{Connect, Join, Leave, Say};
use super::ChatServer;

/// Tells the server that commands wait in its [`Inbox`].
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct CommandsWaiting;

/// A session's command that must keep its place among the session's others.
#[derive(Debug)]
pub enum Command {
    /// A new session, before anything it sends.
    Connect(Connect),
    /// `join`; the answer goes back through the `Join`'s channel.
    Join(Join),
    /// `say` or `direct`.
    Say(Say),
    /// `leave`.
    Leave(Leave),
}

/// See the module doc. Shared by the server and every session.
#[derive(Debug)]
pub struct Inbox {
    state: Mutex<Waiting>,
    server: Addr<ChatServer>,
}

#[derive(Debug, Default)]
struct Waiting {
    commands: Vec<Command>,
    /// The server will look here without being told: it is committing, its
    /// pause is running, or a `CommandsWaiting` is on its way.
    watched: bool,
}

impl Inbox {
    /// An empty inbox for the server at `server`.
    pub fn new(server: Addr<ChatServer>) -> Self {
        Self { state: Mutex::new(Waiting::default()), server }
    }

    /// Queues a new session's `Connect` and wakes the server: the session's
    /// commands that follow need it known.
    pub fn connect(&self, connect: Connect) {
        self.push(Command::Connect(connect), true);
    }

    /// Queues `say` for the server, waking it unless it is watching.
    pub fn say(&self, say: Say) {
        self.push(Command::Say(say), false);
    }

    /// Queues `join` and wakes the server: the session waits for its answer.
    pub fn join(&self, join: Join) {
        self.push(Command::Join(join), true);
    }

    /// Queues `leave` and wakes the server (see the module doc).
    pub fn leave(&self, leave: Leave) {
        self.push(Command::Leave(leave), true);
    }

    fn push(&self, command: Command, urgent: bool) {
        let wake = {
            let mut waiting = self.lock();
            waiting.commands.push(command);
            !std::mem::replace(&mut waiting.watched, true) || urgent
        };
        if wake {
            self.server.do_send(CommandsWaiting);
        }
    }

    /// Everything queued, in order; the server goes on watching.
    pub(super) fn take(&self) -> Vec<Command> {
        std::mem::take(&mut self.lock().commands)
    }

    /// The server will look again soon (a batch in flight, a timer set).
    pub(super) fn watch(&self) {
        self.lock().watched = true;
    }

    /// The server goes idle and stops watching, unless a command arrived in
    /// the meantime: `false` then, and the server must take it first.
    pub(super) fn unwatch(&self) -> bool {
        let mut waiting = self.lock();
        if waiting.commands.is_empty() {
            waiting.watched = false;
        }
        !waiting.watched
    }

    /// The lock; a panic while holding it left a list and a flag, still
    /// consistent, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
