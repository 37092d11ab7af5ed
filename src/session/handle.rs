//! [`SessionHandle`]: how the `ChatServer` reaches a session, with the
//! bytes it has queued for it.
//!
//! A client that stops reading stops its session too (actix polls a
//! WebSocket actor only while its socket takes data), so whatever is sent to
//! it piles up in its mailbox. The handle counts those bytes and refuses to
//! queue past the limit: the server then closes the session (1008), and
//! the memory a slow client can hold is bounded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix::Recipient;
use bytestring::ByteString;

use super::{CloseReason, Delivery, SessionEvent};

/// The session's queue is full; nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow {
    /// Bytes already queued for the session when the frame was refused.
    pub queued: usize,
}

/// Bytes queued for one session, shared by its handle and the session.
#[derive(Debug)]
pub struct OutboundQueue {
    bytes: AtomicUsize,
    limit: usize,
}

impl OutboundQueue {
    /// An empty queue refusing frames beyond `limit` bytes (`--max-outbound-bytes`).
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self { bytes: AtomicUsize::new(0), limit })
    }

    /// The session took `len` bytes out of its mailbox.
    pub fn taken(&self, len: usize) {
        self.bytes.fetch_sub(len, Ordering::Relaxed);
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
    /// A handle sending to `recipient` and counting bytes in `queue`, shared with the session.
    pub fn new(recipient: Recipient<SessionEvent>, queue: Arc<OutboundQueue>) -> Self {
        Self { recipient, queue }
    }

    /// Queues a frame unless that would take the session past its limit.
    pub fn deliver(&self, delivery: Delivery) -> Result<(), Overflow> {
        let len = delivery.frame.len();
        let queued = self.queue.bytes.fetch_add(len, Ordering::Relaxed) + len;
        if queued > self.queue.limit {
            self.queue.bytes.fetch_sub(len, Ordering::Relaxed);
            return Err(Overflow { queued: queued - len });
        }
        self.recipient.do_send(SessionEvent::Deliver(delivery));
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

    /// Tells the session to close.
    pub fn close(&self, reason: CloseReason) {
        self.recipient.do_send(SessionEvent::Close(reason));
    }
}
