//! How the [`ChatServer`] puts every stored message in order before its
//! sessions see it, and reads back from the store what it missed.
//!
//! Every stored message, committed here or heard of from another node,
//! goes through the [`Sequencer`](super::sequence::Sequencer). A gap it
//! reports is usually a message still on its way through Redis (two nodes
//! writing to one room commit in one order and publish in another), so it
//! is given [`GAP_GRACE`] to arrive before it is read from the store. It
//! is never read while a batch of this node's is in flight: that batch
//! may already be committed, and a read could return its messages before
//! the commit's answer delivers them with their acknowledgements (the
//! sender would see its message twice). A
//! batch that starts during the read takes ids above everything the read
//! looks for (ids commit in order), so only the start is held back.
//!
//! With a cluster, a user's first session here reads the user's direct
//! conversations and their latest ids, and the node follows them from
//! there: a message of theirs lost by Redis afterwards is read back like
//! a room's. A conversation that a batch of this node wrote to while that
//! read ran is left out (the read may hold the batch's message before its
//! acknowledgement went out); it is followed from its next message.
//!
//! A join of a room whose ids this node does not follow (created here, or
//! only heard of) reads the room's latest id first, so that the joiner's
//! history ends where live messages begin. That read has no upper bound,
//! so no batch may commit while it runs either: it starts only with no
//! batch in flight, and batches wait for it (see `server::flush`).
//!
//! With a cluster, every [`CHECK_PERIOD`] (and after the Redis
//! subscription comes back) the channels someone here listens to are
//! compared with the store: a message whose publish was lost (Redis
//! hiccup, a node killed between its commit and its publish) is read back
//! within that period.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::outbox::Reply;
use super::remote::JoinAnswer;
use super::rooms::Registry;
use super::sequence::Gap;
use super::server::{distinct_users, ChatServer};
use super::Arrival;
use crate::domain::{Channel, MessageId, RoomName, SessionId, UserName};
use crate::error::ChatError;
use crate::outbound::SessionHandle;
use crate::protocol::ChatMessage;
use crate::store::{Batch, MessageStore, PageQuery, StoreError};

/// How often, with a cluster, each channel with an audience here is
/// compared with the store.
pub const CHECK_PERIOD: Duration = Duration::from_secs(1);

/// How long a gap waits for its messages to arrive from Redis before they
/// are read from the store.
pub const GAP_GRACE: Duration = Duration::from_millis(25);

/// How long to wait before reading a gap again after the store failed.
const RETRY_READ: Duration = Duration::from_secs(1);

/// Messages per read of a gap.
const PAGE: usize = 200;

/// The reads from the store that put channels in order, and what must
/// not overlap with them; part of the [`ChatServer`].
#[derive(Default)]
pub(super) struct Reads {
    /// Gaps to read, with when each was noted.
    gaps: Vec<(Instant, Gap)>,
    /// A timer will come back for the gaps still in their grace period.
    gap_timer: bool,
    /// Joins waiting to read their room's latest id.
    pub lookups: Vec<(SessionId, RoomName, JoinAnswer)>,
    /// Those reads under way: no batch starts meanwhile.
    pub looking_up: usize,
    /// A periodic check of the channels against the store is under way.
    checking: bool,
    /// The conversations the batch in flight writes to.
    in_flight_conversations: HashSet<Channel>,
    /// Reads of users' conversations under way, each with the
    /// conversations a batch of this node wrote to meanwhile.
    conversation_reads: HashMap<u64, HashSet<Channel>>,
    next_read: u64,
}

impl Reads {
    /// A batch is handed to the store: the conversations it writes to may
    /// be in what the reads under way return.
    pub fn batch_starts(&mut self, batch: &Batch) {
        self.in_flight_conversations.clear();
        let conversations = batch.messages.iter().map(|message| &message.channel);
        for channel in conversations.filter(|channel| channel.room().is_none()) {
            self.in_flight_conversations.insert(channel.clone());
            for suspects in self.conversation_reads.values_mut() {
                suspects.insert(channel.clone());
            }
        }
    }
}

impl ChatServer {
    /// Whether anyone on this node gets `channel`'s messages: a session in
    /// the room, or of one of the conversation's users.
    pub(super) fn has_audience(&self, channel: &Channel) -> bool {
        audience(&self.registry, channel)
    }

    /// Puts a stored message in order: delivers what is ready, answers a
    /// sender whose message was delivered already, notes a gap to read.
    pub(super) fn sequence(&mut self, message: ChatMessage, reply: Option<Reply>) {
        let (channel, id) = (message.room.clone(), message.id);
        let registry = &self.registry;
        let arrival = Arrival { message, reply };
        let done = self.sequencer.offer(&channel, id, arrival, || audience(registry, &channel));
        for Arrival { message, reply } in done.ready {
            self.deliver(&message, reply);
        }
        if let Some(Arrival { message, reply: Some(reply) }) = done.stale {
            self.answer_stored(&message, reply, true);
        }
        self.note_gap(done.gap);
    }

    /// Keeps `gap` for [`start_reads`](Self::start_reads).
    pub(super) fn note_gap(&mut self, gap: Option<Gap>) {
        self.reads.gaps.extend(gap.map(|gap| (Instant::now(), gap)));
    }

    /// Starts the joins' lookups and reads the gaps that waited
    /// [`GAP_GRACE`] from the store, unless a batch is in flight (its end
    /// calls this again); comes back for the younger gaps.
    pub(super) fn start_reads(&mut self, ctx: &mut Context<Self>) {
        if self.outbox.in_flight() {
            return;
        }
        for (session, room, reply) in std::mem::take(&mut self.reads.lookups) {
            self.look_up(session, room, reply, ctx);
        }
        let (due, young): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads.gaps)
            .into_iter()
            .partition(|(noted, _)| noted.elapsed() >= GAP_GRACE);
        self.reads.gaps = young;
        if let Some((noted, _)) = self.reads.gaps.iter().min_by_key(|(noted, _)| *noted) {
            if !self.reads.gap_timer {
                self.reads.gap_timer = true;
                let wait = GAP_GRACE.saturating_sub(noted.elapsed());
                ctx.run_later(wait, |server, ctx| {
                    server.reads.gap_timer = false;
                    server.start_reads(ctx);
                });
            }
        }
        for (_, gap) in due {
            self.read_gap(gap, ctx);
        }
    }

    /// Reads `gap` from the store and offers what it finds (unless it was
    /// delivered meanwhile, from Redis or by a commit's answer).
    fn read_gap(&mut self, gap: Gap, ctx: &mut Context<Self>) {
        let after = self.sequencer.delivered(&gap.channel);
        if after >= gap.upto {
            let next = self.sequencer.filled(&gap.channel);
            self.note_gap(next);
            return;
        }
        self.metrics.gap_reads.inc();
        let (channel, upto) = (gap.channel.clone(), gap.upto);
        let read = read_range(self.store.clone(), gap.channel, after, upto);
        ctx.spawn(read.into_actor(self).map(move |result, server, ctx| {
            match result {
                Ok(messages) => {
                    server.metrics.gap_messages.inc_by(messages.len() as u64);
                    let reached = messages.last().map_or(after, |message| message.id);
                    for message in messages {
                        server.sequence(message, None);
                    }
                    let next = server.sequencer.filled(&channel);
                    if reached >= upto {
                        server.note_gap(next);
                    } else {
                        // The store holds less than a message held here
                        // says it should (a node on another database
                        // publishing on the same Redis?): no tight loop.
                        log::warn!(
                            "{channel}: the store has messages up to {reached}, not {upto}; \
                             reading again in {RETRY_READ:?}"
                        );
                        server.retry_later(next, ctx);
                    }
                }
                Err(error) => {
                    log::error!(
                        "reading missed messages of {channel} failed ({error}); \
                         retrying in {RETRY_READ:?}"
                    );
                    let again = server.sequencer.filled(&channel);
                    server.retry_later(again, ctx);
                }
            }
            server.start_reads(ctx);
        }));
    }

    /// Notes `gap` again after [`RETRY_READ`].
    fn retry_later(&mut self, gap: Option<Gap>, ctx: &mut Context<Self>) {
        ctx.run_later(RETRY_READ, move |server, ctx| {
            server.note_gap(gap);
            server.start_reads(ctx);
        });
    }

    /// Reads the latest id of a room a session joins, then answers it (see
    /// the module doc). Batches wait until it is done.
    fn look_up(
        &mut self,
        session: SessionId,
        room: RoomName,
        reply: JoinAnswer,
        ctx: &mut Context<Self>,
    ) {
        self.reads.looking_up += 1;
        let channel = Channel::Room(room.clone());
        let read = self.store.last_ids(vec![channel.clone()]);
        ctx.spawn(read.into_actor(self).map(move |result, server, ctx| {
            server.reads.looking_up -= 1;
            match result {
                Ok(found) => {
                    let stored = found.first().map_or(0, |(_, id)| *id);
                    server.sequencer.start(channel.clone(), stored);
                    let gap = server.sequencer.behind(&channel, stored);
                    server.note_gap(gap);
                    server.answer_join(session, room, reply);
                }
                Err(error) => {
                    log::error!("reading the latest id of {room} for a join failed: {error}");
                    // ignore: the session may have gone.
                    let _ = reply.send(Err(ChatError::Internal));
                }
            }
            server.flush(ctx);
            server.start_reads(ctx);
        }));
    }

    /// With a cluster, follows the direct conversations of `user` (whose
    /// first session here just connected) from their latest ids.
    pub(super) fn follow_conversations(&mut self, user: UserName, ctx: &mut Context<Self>) {
        let id = self.reads.next_read;
        self.reads.next_read += 1;
        let suspects = match self.outbox.in_flight() {
            true => self.reads.in_flight_conversations.clone(),
            false => HashSet::new(),
        };
        self.reads.conversation_reads.insert(id, suspects);
        let read = self.store.conversations(user);
        ctx.spawn(read.into_actor(self).map(move |result, server, _| {
            let suspects = server.reads.conversation_reads.remove(&id).unwrap_or_default();
            match result {
                Ok(found) => {
                    for (channel, last_id) in found {
                        if !suspects.contains(&channel) {
                            server.sequencer.start(channel, last_id);
                        }
                    }
                }
                Err(error) => log::warn!(
                    "reading a user's conversations failed ({error}): they are followed \
                     from their next message"
                ),
            }
        }));
    }

    /// Compares the channels someone here listens to with the store, and
    /// reads what was missed (see the module doc).
    pub(super) fn check_channels(&mut self, ctx: &mut Context<Self>) {
        if self.reads.checking {
            return;
        }
        let registry = &self.registry;
        self.sequencer.forget_conversations(|channel| audience(registry, channel));
        let channels: Vec<Channel> = self
            .sequencer
            .channels()
            .filter(|channel| self.has_audience(channel))
            .cloned()
            .collect();
        if channels.is_empty() {
            return;
        }
        self.reads.checking = true;
        let read = self.store.last_ids(channels);
        ctx.spawn(read.into_actor(self).map(|result, server, ctx| {
            server.reads.checking = false;
            match result {
                Ok(stored) => {
                    for (channel, last_id) in stored {
                        if server.has_audience(&channel) {
                            let gap = server.sequencer.behind(&channel, last_id);
                            server.note_gap(gap);
                        }
                    }
                    server.start_reads(ctx);
                }
                Err(error) => log::warn!(
                    "comparing the rooms with the store failed ({error}): messages whose \
                     publish Redis lost wait until the store answers again"
                ),
            }
        }));
    }
}

/// See [`ChatServer::has_audience`].
fn audience(registry: &Registry<SessionHandle>, channel: &Channel) -> bool {
    match channel {
        Channel::Room(room) => registry.room(room).is_some_and(|r| !r.members.is_empty()),
        Channel::Direct(conversation) => {
            distinct_users(conversation).into_iter().any(|user| registry.is_online(user))
        }
    }
}

/// The messages of `channel` after `after` up to `upto`, oldest first.
async fn read_range(
    store: std::sync::Arc<dyn MessageStore>,
    channel: Channel,
    mut after: MessageId,
    upto: MessageId,
) -> Result<Vec<ChatMessage>, StoreError> {
    let mut messages = Vec::new();
    loop {
        let query = PageQuery {
            channel: channel.clone(),
            since: Some(after),
            before: None,
            upto: Some(upto),
            limit: PAGE,
        };
        let page = store.page(query).await?;
        let Some(last) = page.messages.last().map(|message| message.id) else {
            return Ok(messages);
        };
        messages.extend(page.messages);
        if !page.more || last >= upto {
            return Ok(messages);
        }
        after = last;
    }
}
