//! [`Outbox`]: messages waiting to be stored, and group commit.
//!
//! The `ChatServer` never waits for the disk. It queues what must be stored
//! here and hands the writer one batch at a time: everything that arrived
//! while the previous commit was under way goes into the next one. Under
//! load batches grow by themselves, so one fsync serves many messages;
//! when idle, a message is committed alone and at once. One batch in flight
//! at a time also keeps ids in the order the server delivers them.
//!
//! Batches also start at most once per [`COMMIT_INTERVAL`]: each commit
//! has a fixed CPU cost, and on a busy core committing a few messages at a
//! time took that CPU from the sessions (docs/performance.md, item 5).

use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::domain::{Ref, RoomName, SessionId};
use crate::error::ChatError;
use crate::protocol::ChatMessage;
use crate::store::{Batch, CursorMove, NewMessage};

/// Most messages committed in one transaction, so one batch never holds
/// the writer for long.
pub const MAX_BATCH: usize = 1024;

/// Shortest time from the start of one batch to the start of the next.
/// It caps commits at 1000/s, and it is the most a message ever waits for
/// its batch to start: idle, a message goes at once.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(1);

/// What the `ChatServer` should do about the writes waiting.
#[derive(Debug)]
pub enum Ready {
    /// Commit this batch now.
    Now(Flight),
    /// Come back after this long (set a timer; [`Outbox::timer_fired`]).
    After(Duration),
    /// Nothing to do: nothing waits, a batch is in flight, or a timer is set.
    NotYet,
}

/// A message answered over HTTP: the stored message, and whether it was
/// stored now (201) or before, under the same idempotency key (200).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// The stored message.
    pub message: ChatMessage,
    /// Stored by this request.
    pub created: bool,
}

/// Who is waiting for a message to be stored.
#[derive(Debug)]
pub enum Reply {
    /// A session's `say` or `direct`: the sender's copy, with `ref`, is
    /// its acknowledgement.
    Session { session: SessionId, reference: Option<Ref> },
    /// An HTTP POST, answered with the stored message.
    Http(oneshot::Sender<Result<Posted, ChatError>>),
}

/// A message waiting to be stored, and who waits for it.
#[derive(Debug)]
pub struct Pending {
    pub message: NewMessage,
    pub reply: Reply,
}

/// A cursor move waiting to be stored; `reply` is the session that sent
/// `read` (none for the cursor a join starts).
#[derive(Debug)]
pub struct PendingCursor {
    pub cursor: CursorMove,
    pub reply: Option<(SessionId, Option<Ref>)>,
}

/// What the next commit carries, with who waits for each part: `replies`
/// match the batch's messages one to one, `cursors` its cursor moves.
#[derive(Debug)]
pub struct Flight {
    pub batch: Batch,
    pub replies: Vec<Reply>,
    pub cursors: Vec<PendingCursor>,
}

/// Writes waiting for the writer; see the module doc.
#[derive(Debug, Default)]
pub struct Outbox {
    rooms: Vec<RoomName>,
    messages: Vec<Pending>,
    cursors: Vec<PendingCursor>,
    in_flight: bool,
    /// When the last batch started.
    started: Option<Instant>,
    /// A timer is set to come back for the waiting writes.
    timer_set: bool,
}

impl Outbox {
    pub fn push_room(&mut self, room: RoomName) {
        self.rooms.push(room);
    }

    pub fn push_message(&mut self, pending: Pending) {
        self.messages.push(pending);
    }

    pub fn push_cursor(&mut self, pending: PendingCursor) {
        self.cursors.push(pending);
    }

    /// The next batch to commit now, or when to come back for it.
    pub fn ready(&mut self) -> Ready {
        if self.in_flight || self.timer_set || self.waiting() == 0 {
            return Ready::NotYet;
        }
        let since = self.started.map_or(COMMIT_INTERVAL, |started| started.elapsed());
        if since < COMMIT_INTERVAL {
            self.timer_set = true;
            return Ready::After(COMMIT_INTERVAL - since);
        }
        self.next_batch().map_or(Ready::NotYet, Ready::Now)
    }

    /// The timer [`Ready::After`] asked for has fired.
    pub fn timer_fired(&mut self) {
        self.timer_set = false;
    }

    /// The next batch to commit, unless one is in flight or nothing waits.
    pub fn next_batch(&mut self) -> Option<Flight> {
        if self.in_flight || self.waiting() == 0 {
            return None;
        }
        let take = self.messages.len().min(MAX_BATCH);
        let (messages, replies) =
            self.messages.drain(..take).map(|pending| (pending.message, pending.reply)).unzip();
        let take = self.cursors.len().min(MAX_BATCH);
        let cursors: Vec<PendingCursor> = self.cursors.drain(..take).collect();
        let batch = Batch {
            rooms: std::mem::take(&mut self.rooms),
            messages,
            cursors: cursors.iter().map(|p| p.cursor.clone()).collect(),
        };
        self.in_flight = true;
        self.started = Some(Instant::now());
        Some(Flight { batch, replies, cursors })
    }

    /// A batch is being committed.
    pub fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// The batch in flight has been committed or has failed.
    pub fn finish(&mut self) {
        self.in_flight = false;
    }

    /// How many writes wait (not counting the batch in flight).
    pub fn waiting(&self) -> usize {
        self.rooms.len() + self.messages.len() + self.cursors.len()
    }

    /// Nothing waits (rooms, messages or cursor moves) and nothing is in
    /// flight: shutdown may close the sessions, every `read` answered.
    pub fn is_idle(&self) -> bool {
        !self.in_flight && self.waiting() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Channel, Text, UserName};

    fn pending(text: &str) -> Pending {
        let room = RoomName::parse("lobby").unwrap();
        Pending {
            message: NewMessage {
                channel: Channel::Room(room),
                from: UserName::parse("alice").unwrap(),
                text: Text::parse(text, 100).unwrap(),
                idempotency_key: None,
            },
            reply: Reply::Session { session: SessionId::next(), reference: None },
        }
    }

    #[test]
    fn messages_arriving_during_a_commit_form_the_next_batch() {
        let mut outbox = Outbox::default();
        assert!(outbox.next_batch().is_none());
        outbox.push_message(pending("one"));
        let first = outbox.next_batch().unwrap().batch;
        assert_eq!(first.messages.len(), 1);
        outbox.push_message(pending("two"));
        outbox.push_message(pending("three"));
        assert!(outbox.next_batch().is_none(), "one batch in flight at a time");
        assert!(!outbox.is_idle());
        outbox.finish();
        let second = outbox.next_batch().unwrap();
        let texts: Vec<_> = second.batch.messages.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["two", "three"]);
        assert_eq!(second.replies.len(), 2);
        outbox.finish();
        assert!(outbox.is_idle());
    }

    #[test]
    fn a_waiting_cursor_move_keeps_the_outbox_busy() {
        let mut outbox = Outbox::default();
        let cursor = CursorMove {
            reader: UserName::parse("alice").unwrap(),
            channel: Channel::Room(RoomName::parse("lobby").unwrap()),
            to: 1,
            kind: crate::store::CursorKind::Read,
        };
        outbox.push_cursor(PendingCursor { cursor, reply: None });
        assert!(!outbox.is_idle(), "a `read` waits for its answer");
        outbox.next_batch().unwrap();
        assert!(!outbox.is_idle(), "in flight");
        outbox.finish();
        assert!(outbox.is_idle());
    }

    #[test]
    fn batches_are_capped() {
        let mut outbox = Outbox::default();
        for _ in 0..MAX_BATCH + 5 {
            outbox.push_message(pending("x"));
        }
        assert_eq!(outbox.next_batch().unwrap().batch.messages.len(), MAX_BATCH);
        outbox.finish();
        assert_eq!(outbox.next_batch().unwrap().batch.messages.len(), 5);
    }
}
