//! [`SessionHandle`]: how the `ChatServer` reaches a session, through a
//! queue of frames it shares with the session, and the slow-client policy.
//!
//! Why a queue of our own rather than one actix message per frame: the
//! `ChatServer` and the sessions run on different threads, and a broadcast
//! to a room of 1000 is 1000 frames: a mailbox message each costs an
//! allocation and contention (docs/performance.md, item 1). Frames go
//! into this queue and the session is woken once ([`SessionEvent::Wake`])
//! however many pile up before it runs; it takes them all at once and
//! hands them to its socket in one write.
//!
//! # Slow clients
//!
//! A session's *backlog* is what waits for its client inside the server:
//! the frames queued here, plus the frames it last handed to its socket
//! until it runs again. actix runs a WebSocket session only while its
//! socket's write buffer holds less than 32 KiB (actix-http's
//! `h1_write_buffer_size`), so once the session runs, all but that much
//! of its last hand-over has gone to the kernel.
//!
//! With `limit` = `--max-outbound-bytes`:
//! - a backlog over `limit` for [`SLOW_GRACE`] in a row closes the
//!   session (the `ChatServer` checks every [`SLOW_CHECK_INTERVAL`]): a
//!   reader that falls behind in a burst and catches up keeps its socket;
//! - a frame that would take the backlog over [`HARD_LIMIT_FACTOR`] ×
//!   `limit` is refused and the session is closed at once.
//!
//! So the memory a client can hold is at most 4 × `limit` counted here,
//! plus up to 32 KiB in actix's write buffer (and the kernel's socket
//! buffer). An evicted session's queue is emptied at once; its socket
//! closes when it next takes data, or when the kernel aborts it
//! (`TCP_USER_TIMEOUT`, see `app.rs`).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix::Recipient;
use bytestring::ByteString;
use prometheus::IntGauge;

use super::{CloseReason, Delivery, SessionEvent};

/// How long a backlog may stay over `--max-outbound-bytes`.
pub const SLOW_GRACE: Duration = Duration::from_secs(2);

/// How often the `ChatServer` looks for sessions over the grace period.
pub const SLOW_CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// A backlog past this many times `--max-outbound-bytes` closes the
/// session at once.
pub const HARD_LIMIT_FACTOR: usize = 4;

/// The frame would take the session's backlog past the hard limit;
/// nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// Frames waiting for one session, shared by its handle and the session.
#[derive(Debug)]
pub struct OutboundQueue {
    state: Mutex<Waiting>,
    /// `--max-outbound-bytes`.
    limit: usize,
    /// Sessions whose backlog is over `limit` (`walkie_slow_sessions`):
    /// while it is 0 the `ChatServer` skips its check.
    slow_sessions: IntGauge,
}

#[derive(Debug, Default)]
struct Waiting {
    deliveries: Vec<Delivery>,
    /// Bytes of `deliveries`.
    queued: usize,
    /// Bytes of the session's last hand-over to its socket: counted until
    /// the session runs again, which shows its socket took them.
    handed: usize,
    /// Since when the backlog has been over the limit.
    over_since: Option<Instant>,
    /// A `Wake` is in the session's mailbox and will take what is here.
    woken: bool,
}

impl Waiting {
    fn backlog(&self) -> usize {
        self.queued + self.handed
    }
}

impl OutboundQueue {
    /// An empty queue for a backlog limit of `limit` bytes
    /// (`--max-outbound-bytes`); `slow_sessions` counts the queues over it.
    pub fn new(limit: usize, slow_sessions: IntGauge) -> Arc<Self> {
        Arc::new(Self { state: Mutex::new(Waiting::default()), limit, slow_sessions })
    }

    /// Swaps everything waiting into `into` (which must be empty), so the
    /// session reuses one buffer instead of allocating per wake-up. The
    /// session is running, so its previous hand-over has left; this one is
    /// counted instead.
    pub fn take_into(&self, into: &mut Vec<Delivery>) {
        let mut waiting = self.lock();
        std::mem::swap(&mut waiting.deliveries, into);
        waiting.handed = std::mem::take(&mut waiting.queued);
        waiting.woken = false;
        self.track(&mut waiting);
    }

    /// Queues `delivery`; `Ok(true)` when the session must be woken for it.
    fn push(&self, delivery: Delivery) -> Result<bool, Overflow> {
        let mut waiting = self.lock();
        let len = delivery.frame.len();
        if waiting.backlog() + len > self.limit.saturating_mul(HARD_LIMIT_FACTOR) {
            return Err(Overflow);
        }
        waiting.queued += len;
        waiting.deliveries.push(delivery);
        self.track(&mut waiting);
        Ok(!std::mem::replace(&mut waiting.woken, true))
    }

    /// `true` when the session must be woken to show it still runs.
    fn nudge(&self) -> bool {
        !std::mem::replace(&mut self.lock().woken, true)
    }

    /// Since when the backlog has been over the limit, if it is.
    fn over_since(&self) -> Option<Instant> {
        self.lock().over_since
    }

    /// Drops everything waiting: the session is being closed.
    fn discard(&self) {
        let mut waiting = self.lock();
        waiting.deliveries = Vec::new();
        waiting.queued = 0;
        waiting.handed = 0;
        self.track(&mut waiting);
    }

    /// Starts or ends the backlog's time over the limit.
    fn track(&self, waiting: &mut Waiting) {
        let over = waiting.backlog() > self.limit;
        match (over, waiting.over_since) {
            (true, None) => {
                waiting.over_since = Some(Instant::now());
                self.slow_sessions.inc();
            }
            (false, Some(_)) => {
                waiting.over_since = None;
                self.slow_sessions.dec();
            }
            _ => {}
        }
    }

    /// The lock; a panic while holding it left plain data (a list, counters
    /// and flags) that is still consistent, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for OutboundQueue {
    fn drop(&mut self) {
        if self.lock().over_since.is_some() {
            self.slow_sessions.dec();
        }
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

    /// Queues a frame unless that would take the backlog past the hard limit.
    pub fn deliver(&self, delivery: Delivery) -> Result<(), Overflow> {
        if self.queue.push(delivery)? {
            self.recipient.do_send(SessionEvent::Wake);
        }
        Ok(())
    }

    /// Whether the backlog has been over the limit for [`SLOW_GRACE`]. If
    /// it is over but not for that long, the session is woken: if its
    /// socket takes data it runs, and its last hand-over stops counting.
    pub fn too_slow(&self) -> bool {
        match self.queue.over_since() {
            Some(since) if since.elapsed() >= SLOW_GRACE => true,
            Some(_) => {
                if self.queue.nudge() {
                    self.recipient.do_send(SessionEvent::Wake);
                }
                false
            }
            None => false,
        }
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

    /// Tells the session to close. Frames queued before it are sent first
    /// (the `Wake` that takes them is already ahead of it in the mailbox),
    /// except for a client too slow to read them: those are dropped now.
    pub fn close(&self, reason: CloseReason) {
        if reason == CloseReason::TooSlow {
            self.queue.discard();
        }
        self.recipient.do_send(SessionEvent::Close(reason));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(limit: usize) -> (Arc<OutboundQueue>, IntGauge) {
        let slow = IntGauge::new("slow", "test").unwrap();
        (OutboundQueue::new(limit, slow.clone()), slow)
    }

    fn frame(bytes: usize) -> Delivery {
        Delivery::other(ByteString::from("x".repeat(bytes)))
    }

    #[test]
    fn a_backlog_over_the_limit_is_timed_and_refused_past_four_times_it() {
        let (queue, slow) = queue(100);
        assert_eq!(queue.push(frame(100)), Ok(true), "the first frame wakes the session");
        assert_eq!(queue.push(frame(1)), Ok(false));
        assert!(queue.over_since().is_some());
        assert_eq!(slow.get(), 1);
        assert_eq!(queue.push(frame(299)), Ok(false));
        assert_eq!(queue.push(frame(1)), Err(Overflow), "past 4 times the limit");
    }

    #[test]
    fn frames_handed_to_the_socket_count_until_the_session_runs_again() {
        let (queue, slow) = queue(100);
        queue.push(frame(300)).unwrap();
        let mut taken = Vec::new();
        queue.take_into(&mut taken);
        assert!(queue.over_since().is_some(), "handed to the socket, not yet taken by it");
        assert_eq!(queue.push(frame(101)), Err(Overflow), "300 handed + 101 > 400");
        queue.take_into(&mut Vec::new());
        assert_eq!(queue.over_since(), None, "the session ran: the socket took them");
        assert_eq!(slow.get(), 0);
    }

    #[test]
    fn a_discarded_or_dropped_queue_is_no_longer_slow() {
        let (queue, slow) = queue(100);
        queue.push(frame(200)).unwrap();
        queue.discard();
        assert_eq!((queue.over_since(), slow.get()), (None, 0));
        queue.push(frame(200)).unwrap();
        assert_eq!(slow.get(), 1);
        drop(queue);
        assert_eq!(slow.get(), 0);
    }
}
