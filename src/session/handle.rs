//! [`SessionHandle`]: how the `ChatServer` reaches a session, through a
//! queue of frames it shares with the session.
//!
//! Why a queue of our own rather than one actix message per frame: the
//! `ChatServer` and the sessions run on different threads, and a broadcast
//! to a room of 1000 is 1000 frames. One mailbox message per frame cost an
//! allocation each and, on a busy core, the session thread spinning on a
//! mailbox another thread was half-way through pushing to (measured in
//! `docs/performance.md`). Frames now go into this queue and the session is
//! woken once ([`SessionEvent::Wake`]) however many pile up before it runs;
//! it takes them all at once and hands them to its socket in one write.
//!
//! A client that stops reading stops its session too (actix polls a
//! WebSocket actor only while its socket takes data), so whatever is sent
//! to it piles up here. The queue counts its bytes and refuses frames past
//! the limit: the server then closes the session (1008), and the memory a
//! slow client can hold is bounded.

use std::sync::{Arc, Mutex, MutexGuard};

use actix::Recipient;
use bytestring::ByteString;

use super::{CloseReason, Delivery, SessionEvent};

/// The session's queue is full; nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow {
    /// Bytes already queued for the session when the frame was refused.
    pub queued: usize,
}

/// Frames waiting for one session, shared by its handle and the session.
#[derive(Debug)]
pub struct OutboundQueue {
    state: Mutex<Waiting>,
    limit: usize,
}

#[derive(Debug, Default)]
struct Waiting {
    deliveries: Vec<Delivery>,
    bytes: usize,
    /// A `Wake` is in the session's mailbox and will take what is here.
    woken: bool,
}

impl OutboundQueue {
    /// An empty queue refusing frames beyond `limit` bytes (`--max-outbound-bytes`).
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self { state: Mutex::new(Waiting::default()), limit })
    }

    /// Swaps everything waiting into `into` (which must be empty), so the
    /// session reuses one buffer instead of allocating per wake-up.
    pub fn take_into(&self, into: &mut Vec<Delivery>) {
        let mut waiting = self.lock();
        std::mem::swap(&mut waiting.deliveries, into);
        waiting.bytes = 0;
        waiting.woken = false;
    }

    /// Queues `delivery`; `Ok(true)` when the session must be woken for it.
    fn push(&self, delivery: Delivery) -> Result<bool, Overflow> {
        let mut waiting = self.lock();
        let len = delivery.frame.len();
        if waiting.bytes + len > self.limit {
            return Err(Overflow { queued: waiting.bytes });
        }
        waiting.bytes += len;
        waiting.deliveries.push(delivery);
        Ok(!std::mem::replace(&mut waiting.woken, true))
    }

    /// The lock; a panic while holding it left plain data (a list and two
    /// counters) that is still consistent, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// See the module doc. Cheap to clone.
#[derive(Clone)]
pub struct SessionHandle {
    recipient: Recipient<SessionEvent>,
    queue: Arc<OutboundQueue>,
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle").field("queue", &self.queue).finish()
    }
}

impl SessionHandle {
    /// A handle sending to `recipient` through `queue`, shared with the session.
    pub fn new(recipient: Recipient<SessionEvent>, queue: Arc<OutboundQueue>) -> Self {
        Self { recipient, queue }
    }

    /// Queues a frame unless that would take the session past its limit.
    pub fn deliver(&self, delivery: Delivery) -> Result<(), Overflow> {
        if self.queue.push(delivery)? {
            self.recipient.do_send(SessionEvent::Wake);
        }
        Ok(())
    }

    /// Whether the session is still running.
    pub fn connected(&self) -> bool {
        self.recipient.connected()
    }

    /// Tells the session that shutdown has begun.
    pub fn quiesce(&self) {
        self.recipient.do_send(SessionEvent::Quiesce);
    }

    /// Sends the kept mentions (not counted: they come once, at connect).
    pub fn pending_mentions(&self, frames: Vec<ByteString>) {
        self.recipient.do_send(SessionEvent::PendingMentions(frames));
    }

    /// Tells the session to close. Frames queued before it are sent first:
    /// the `Wake` that takes them is already ahead of it in the mailbox.
    pub fn close(&self, reason: CloseReason) {
        self.recipient.do_send(SessionEvent::Close(reason));
    }
}
