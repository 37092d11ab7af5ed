//! How the [`ChatServer`] puts every stored message in order before its
//! sessions see it, and reads back from the store what it missed.
//!
//! Every stored message, committed here or heard of from another node,
//! goes through the [`Sequencer`](super::sequence::Sequencer). A gap it
//! reports is read from the store, but never while a batch of this node's
//! is in flight: that batch may already be committed, and a read could
//! return its messages before the commit's answer delivers them with
//! their acknowledgements (the sender would see its message twice). A
//! batch that starts during the read takes ids above everything the read
//! looks for (ids commit in order), so only the start is held back.
//!
//! With a cluster, every [`CHECK_PERIOD`] (and after the Redis
//! subscription comes back) the channels someone here listens to are
//! compared with the store: a message whose publish was lost (Redis
//! hiccup, a node killed between its commit and its publish) is read back
//! within that period.

use std::time::Duration;

use actix::prelude::*;

use super::outbox::Reply;
use super::server::{distinct_users, ChatServer};
use super::Arrival;
use crate::domain::{Channel, MessageId};
use crate::protocol::ChatMessage;
use crate::store::{MessageStore, PageQuery, StoreError};

/// How often, with a cluster, each channel with an audience here is
/// compared with the store.
pub const CHECK_PERIOD: Duration = Duration::from_secs(1);

/// How long to wait before reading a gap again after the store failed.
const RETRY_READ: Duration = Duration::from_secs(1);

/// Messages per read of a gap.
const PAGE: usize = 200;

impl ChatServer {
    /// Whether anyone on this node gets `channel`'s messages: a session in
    /// the room, or of one of the conversation's users.
    pub(super) fn has_audience(&self, channel: &Channel) -> bool {
        match channel {
            Channel::Room(room) => self.registry.room(room).is_some_and(|r| !r.members.is_empty()),
            Channel::Direct(conversation) => {
                distinct_users(conversation).into_iter().any(|user| self.registry.is_online(user))
            }
        }
    }

    /// Puts a stored message in order: delivers what is ready, answers a
    /// sender whose message was delivered already, notes a gap to read.
    pub(super) fn sequence(&mut self, message: ChatMessage, reply: Option<Reply>) {
        let channel = message.room.clone();
        let audience = self.has_audience(&channel);
        let id = message.id;
        let done = self.sequencer.offer(&channel, id, Arrival { message, reply }, audience);
        for Arrival { message, reply } in done.ready {
            self.deliver(&message, reply);
        }
        if let Some(Arrival { message, reply: Some(reply) }) = done.stale {
            self.answer_stored(&message, reply, true);
        }
        self.gaps.extend(done.gap);
    }

    /// Reads the gaps noted so far from the store, unless a batch is in
    /// flight (its end calls this again).
    pub(super) fn start_fills(&mut self, ctx: &mut Context<Self>) {
        if self.outbox.in_flight() {
            return;
        }
        while let Some(gap) = self.gaps.pop() {
            let after = self.sequencer.delivered(&gap.channel);
            if after >= gap.upto {
                // Delivered meanwhile (by a commit's answer).
                self.gaps.extend(self.sequencer.filled(&gap.channel));
                continue;
            }
            let channel = gap.channel.clone();
            let read = read_range(self.store.clone(), gap.channel, after, gap.upto);
            ctx.spawn(read.into_actor(self).map(move |result, server, ctx| {
                match result {
                    Ok(messages) => {
                        for message in messages {
                            server.sequence(message, None);
                        }
                        server.gaps.extend(server.sequencer.filled(&channel));
                    }
                    Err(error) => {
                        log::error!(
                            "reading missed messages of {channel} failed ({error}); \
                             retrying in {RETRY_READ:?}"
                        );
                        let again = server.sequencer.filled(&channel);
                        ctx.run_later(RETRY_READ, move |server, ctx| {
                            server.gaps.extend(again);
                            server.start_fills(ctx);
                        });
                    }
                }
                server.start_fills(ctx);
            }));
        }
    }

    /// Compares the channels someone here listens to with the store, and
    /// reads what was missed (see the module doc).
    pub(super) fn check_channels(&mut self, ctx: &mut Context<Self>) {
        if self.checking {
            return;
        }
        let channels: Vec<Channel> = self
            .sequencer
            .channels()
            .map(|(channel, _)| channel)
            .filter(|channel| self.has_audience(channel))
            .cloned()
            .collect();
        if channels.is_empty() {
            return;
        }
        self.checking = true;
        let read = self.store.last_ids(channels);
        ctx.spawn(read.into_actor(self).map(|result, server, ctx| {
            server.checking = false;
            match result {
                Ok(stored) => {
                    for (channel, last_id) in stored {
                        let audience = server.has_audience(&channel);
                        server.gaps.extend(server.sequencer.behind(&channel, last_id, audience));
                    }
                    server.start_fills(ctx);
                }
                Err(error) => log::warn!("comparing the channels with the store failed: {error}"),
            }
        }));
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
