//! [`Sequencer`]: the last message id delivered in each room and direct
//! conversation, and the messages that wait for an earlier one.
//!
//! Sessions count on a channel's messages arriving in id order with no
//! hole: a session drops a live message whose id it has passed, and
//! history read up to the delivered id meets live messages exactly. On one
//! node ids come in order by themselves. With several nodes sharing a
//! database a message can arrive ahead of an earlier one (another node's,
//! not heard of yet, or lost by Redis): it is held, and the caller reads
//! the missing ids from the store ([`Gap`]) and offers them too. Ids commit
//! in order per channel, so whatever is missing below a stored id is
//! already in the store.
//!
//! A channel nobody on this node listens to needs no order: its offers
//! pass at once and move the delivered id up (`audience` says false;
//! it is asked only when the message is not simply the next in line). The
//! delivered id never moves on a read of the store's latest id alone: a
//! read taken while this node's own batch commits could pass a message
//! whose acknowledgement is still to come.
//!
//! Plain data with no actix in it; `T` is what the caller delivers.

use std::collections::{BTreeMap, HashMap};

use crate::domain::{Channel, MessageId};

/// Messages the caller must read from the store: every id after the
/// channel's delivered one up to `upto`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The room or conversation.
    pub channel: Channel,
    /// The last id to read.
    pub upto: MessageId,
}

/// What an offer let through.
#[derive(Debug, PartialEq, Eq)]
pub struct Sequenced<T> {
    /// Deliver these, in this order.
    pub ready: Vec<T>,
    /// The offered item was delivered before (a duplicate): drop it, but
    /// answer whoever waits on it.
    pub stale: Option<T>,
    /// Read these ids from the store and offer them.
    pub gap: Option<Gap>,
}

#[derive(Debug)]
struct Line<T> {
    delivered: MessageId,
    held: BTreeMap<MessageId, T>,
    /// A read of the gap is under way (see [`Sequencer::filled`]).
    filling: bool,
}

/// See the module doc.
#[derive(Debug)]
pub struct Sequencer<T> {
    lines: HashMap<Channel, Line<T>>,
}

impl<T> Default for Sequencer<T> {
    fn default() -> Self {
        Self { lines: HashMap::new() }
    }
}

impl<T> Sequencer<T> {
    /// Starts `channel` at `delivered` (a room read at start, or created
    /// here), unless it is known already.
    pub fn start(&mut self, channel: Channel, delivered: MessageId) {
        self.lines.entry(channel).or_insert_with(|| Line::new(delivered));
    }

    /// Whether `channel`'s delivered id is followed here.
    pub fn knows(&self, channel: &Channel) -> bool {
        self.lines.contains_key(channel)
    }

    /// The last id delivered in `channel` (0 for one never heard of).
    pub fn delivered(&self, channel: &Channel) -> MessageId {
        self.lines.get(channel).map_or(0, |line| line.delivered)
    }

    /// Offers message `id` (1 or more) of `channel`. A channel never heard
    /// of starts right before it (a conversation first seen here).
    pub fn offer(
        &mut self,
        channel: &Channel,
        id: MessageId,
        item: T,
        audience: impl FnOnce() -> bool,
    ) -> Sequenced<T> {
        let line = match self.lines.get_mut(channel) {
            Some(line) => line,
            None => self.lines.entry(channel.clone()).or_insert(Line::new(id.saturating_sub(1))),
        };
        let mut done = Sequenced { ready: Vec::new(), stale: None, gap: None };
        if id == line.delivered + 1 && line.held.is_empty() {
            // The usual case, and the only one on a single node.
            line.delivered = id;
            done.ready.push(item);
            return done;
        }
        if id <= line.delivered {
            done.stale = Some(item);
            return done;
        }
        if !audience() {
            line.held.insert(id, item);
            let last = line.held.keys().next_back().copied().unwrap_or(id);
            done.ready = std::mem::take(&mut line.held).into_values().collect();
            line.delivered = last;
            return done;
        }
        // A copy read from the store never replaces the one held (which
        // may carry its sender's acknowledgement).
        line.held.entry(id).or_insert(item);
        done.ready = line.release();
        done.gap = line.gap(channel);
        done
    }

    /// The store holds messages of `channel` up to `stored`: the gap to
    /// read if some were not delivered here.
    pub fn behind(&mut self, channel: &Channel, stored: MessageId) -> Option<Gap> {
        let line = self.lines.get_mut(channel)?;
        if stored <= line.delivered || line.filling {
            return None;
        }
        line.filling = true;
        Some(Gap { channel: channel.clone(), upto: stored })
    }

    /// A read of `channel`'s gap ended (with what it found, offered by the
    /// caller before this): the next gap, if one is left.
    pub fn filled(&mut self, channel: &Channel) -> Option<Gap> {
        let line = self.lines.get_mut(channel)?;
        line.filling = false;
        line.gap(channel)
    }

    /// Every channel followed, for the periodic check.
    pub fn channels(&self) -> impl Iterator<Item = &Channel> {
        self.lines.keys()
    }

    /// Forgets the conversations for which `keep` is false and that hold
    /// nothing: a conversation seen again starts again (see [`offer`](Self::offer)).
    pub fn forget_conversations(&mut self, keep: impl Fn(&Channel) -> bool) {
        self.lines.retain(|channel, line| {
            channel.room().is_some() || keep(channel) || !line.held.is_empty() || line.filling
        });
    }

    /// Takes every held item for which `answer` is true (shutdown: their
    /// senders are answered before the sessions close).
    pub fn take_held(&mut self, answer: impl Fn(&T) -> bool) -> Vec<T> {
        let mut taken = Vec::new();
        for line in self.lines.values_mut() {
            let keys: Vec<MessageId> =
                line.held.iter().filter(|(_, item)| answer(item)).map(|(id, _)| *id).collect();
            taken.extend(keys.into_iter().filter_map(|id| line.held.remove(&id)));
        }
        taken
    }
}

impl<T> Line<T> {
    fn new(delivered: MessageId) -> Self {
        Self { delivered, held: BTreeMap::new(), filling: false }
    }

    /// Takes the held items that now follow the delivered id.
    fn release(&mut self) -> Vec<T> {
        let mut ready = Vec::new();
        while let Some(item) = self.held.remove(&(self.delivered + 1)) {
            self.delivered += 1;
            ready.push(item);
        }
        ready
    }

    /// The gap below the first held item, unless one is being read.
    fn gap(&mut self, channel: &Channel) -> Option<Gap> {
        if self.held.is_empty() || self.filling {
            return None;
        }
        self.filling = true;
        Some(Gap { channel: channel.clone(), upto: self.held.keys().next().map_or(0, |id| id - 1) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lobby() -> Channel {
        Channel::parse("lobby").unwrap()
    }

    #[test]
    fn messages_in_order_pass_and_duplicates_are_stale() {
        let mut sequencer = Sequencer::default();
        sequencer.start(lobby(), 0);
        assert_eq!(sequencer.offer(&lobby(), 1, "one", || true).ready, vec!["one"]);
        let again = sequencer.offer(&lobby(), 1, "one again", || true);
        assert_eq!((again.ready.len(), again.stale), (0, Some("one again")));
        assert_eq!(sequencer.delivered(&lobby()), 1);
    }

    #[test]
    fn a_message_ahead_waits_for_the_gap_to_be_read() {
        let mut sequencer = Sequencer::default();
        sequencer.start(lobby(), 1);
        let ahead = sequencer.offer(&lobby(), 4, "four", || true);
        assert!(ahead.ready.is_empty());
        assert_eq!(ahead.gap, Some(Gap { channel: lobby(), upto: 3 }));
        assert_eq!(sequencer.offer(&lobby(), 5, "five", || true).gap, None, "one read at a time");
        assert_eq!(sequencer.offer(&lobby(), 2, "two", || true).ready, vec!["two"]);
        assert_eq!(
            sequencer.offer(&lobby(), 3, "three", || true).ready,
            vec!["three", "four", "five"]
        );
        assert_eq!(sequencer.filled(&lobby()), None);
        assert_eq!(sequencer.delivered(&lobby()), 5);
    }

    #[test]
    fn a_read_that_came_short_leaves_the_gap_to_read_again() {
        let mut sequencer = Sequencer::default();
        sequencer.start(lobby(), 0);
        sequencer.offer(&lobby(), 3, "three", || true);
        sequencer.offer(&lobby(), 1, "one", || true);
        assert_eq!(sequencer.filled(&lobby()), Some(Gap { channel: lobby(), upto: 2 }));
    }

    #[test]
    fn the_held_copy_is_kept_over_the_one_read_back() {
        let mut sequencer = Sequencer::default();
        sequencer.start(lobby(), 0);
        sequencer.offer(&lobby(), 2, "mine, with its ack", || true);
        sequencer.offer(&lobby(), 2, "read back", || true);
        assert_eq!(
            sequencer.offer(&lobby(), 1, "one", || true).ready,
            vec!["one", "mine, with its ack"]
        );
    }

    #[test]
    fn without_audience_everything_passes_and_a_store_ahead_is_read() {
        let mut sequencer = Sequencer::default();
        sequencer.start(lobby(), 0);
        assert_eq!(sequencer.offer(&lobby(), 7, "seven", || false).ready, vec!["seven"]);
        assert_eq!(sequencer.delivered(&lobby()), 7);
        assert_eq!(sequencer.behind(&lobby(), 7), None);
        assert_eq!(sequencer.behind(&lobby(), 12), Some(Gap { channel: lobby(), upto: 12 }));
        assert_eq!(sequencer.behind(&lobby(), 13), None, "one read at a time");
        assert_eq!(sequencer.delivered(&lobby()), 7, "a latest id alone moves nothing");
    }

    #[test]
    fn a_conversation_starts_at_its_first_message() {
        let mut sequencer = Sequencer::default();
        let dm = Channel::parse("@alice+bob").unwrap();
        assert_eq!(sequencer.offer(&dm, 41, "hi", || true).ready, vec!["hi"]);
        assert_eq!(sequencer.delivered(&dm), 41);
    }
}
