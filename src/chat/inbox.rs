//! [`Inbox`]: `say`s on their way from sessions to the [`ChatServer`].
//!
//! Why not one mailbox message each: sessions and the `ChatServer` run on
//! different threads, and a message to a parked thread wakes it, an eventfd
//! write and a task switch per `say` (the waker alone was 6.6 % of the core
//! at 30,000 messages/s; docs/performance.md). Here a session queues its
//! `say` and wakes the server only when the server is not going to look
//! anyway: while a batch is being committed, or during the pause before the
//! next one, the server takes what waits here into its next batch by
//! itself. Under load no `say` wakes anyone.
//!
//! Order: the server empties the inbox before it handles a `Leave`,
//! `Disconnect` or `Quiesced`, so none of them overtakes a session's earlier
//! `say`. A `Join` needs no care: a session says something in a room only
//! after its `joined`.

use std::sync::{Mutex, MutexGuard};

use actix::prelude::*;

use super::messages::Say;
use super::ChatServer;

/// Tells the server that `say`s wait in its [`Inbox`].
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SaysWaiting;

/// See the module doc. Shared by the server and every session.
#[derive(Debug)]
pub struct Inbox {
    state: Mutex<Waiting>,
    server: Addr<ChatServer>,
}

#[derive(Debug, Default)]
struct Waiting {
    says: Vec<Say>,
    /// The server will look here without being told: it is committing, its
    /// pause is running, or a `SaysWaiting` is on its way.
    watched: bool,
}

impl Inbox {
    /// An empty inbox for the server at `server`.
    pub fn new(server: Addr<ChatServer>) -> Self {
        Self { state: Mutex::new(Waiting::default()), server }
    }

    /// Queues `say` for the server, waking it unless it is watching.
    pub fn send(&self, say: Say) {
        let wake = {
            let mut waiting = self.lock();
            waiting.says.push(say);
            !std::mem::replace(&mut waiting.watched, true)
        };
        if wake {
            self.server.do_send(SaysWaiting);
        }
    }

    /// Everything queued; the server goes on watching.
    pub(super) fn take(&self) -> Vec<Say> {
        std::mem::take(&mut self.lock().says)
    }

    /// The server will look again soon (a batch in flight, a timer set).
    pub(super) fn watch(&self) {
        self.lock().watched = true;
    }

    /// The server goes idle and stops watching, unless a `say` arrived in
    /// the meantime: `false` then, and the server must take it first.
    pub(super) fn unwatch(&self) -> bool {
        let mut waiting = self.lock();
        if waiting.says.is_empty() {
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
