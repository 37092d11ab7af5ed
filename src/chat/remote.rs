//! The [`ChatServer`] and the other nodes: what it publishes, what it does
//! with their news, and membership seen cluster-wide.
//!
//! Each node tells its own sessions about everyone: a `presence` frame
//! goes out when a name appears in a room where it was on no node, or
//! leaves the last one. Names here are in the registry; the other nodes'
//! in the [`Mirror`](crate::cluster::Mirror). On a single node the mirror
//! stays empty and none of this changes anything.

use std::collections::BTreeSet;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::messages::JoinReply;
use super::server::{distinct_users, ChatServer};
use crate::cluster::{Applied, Entry, Event, Hear, NodeId, Scope, Transition};
use crate::domain::{Channel, RoomName, SessionId, UserName};
use crate::error::ChatError;
use crate::protocol::{encode, PresenceEvent, RoomSummary, ServerEvent};
use crate::store::{CursorKind, CursorMove};

/// Where a join's answer goes.
pub(super) type JoinAnswer = oneshot::Sender<Result<JoinReply, ChatError>>;

impl ChatServer {
    /// Tells the other nodes the event `make` builds (built only with a
    /// cluster).
    pub(super) fn publish(&self, make: impl FnOnce() -> Event) {
        if let Some(cluster) = &self.cluster {
            cluster.publish(make());
        }
    }

    /// `entry` appeared on this node or left it: the cluster hears of it,
    /// and the sessions here get a `presence` frame unless another node
    /// has the name there already.
    pub(super) fn local_presence(&mut self, entry: Entry, present: bool) {
        if let Scope::Room(room) = &entry.scope {
            if !self.mirror.contains(&entry) {
                let event = if present { PresenceEvent::Join } else { PresenceEvent::Leave };
                self.announce_presence(room, &entry.name, event);
            }
        }
        if let Some(cluster) = &self.cluster {
            cluster.presence(entry, present);
        }
    }

    /// A name appeared on, or left, every other node: the sessions here
    /// hear of it unless the name has a session here in that room.
    fn remote_presence(&mut self, transitions: Vec<Transition>) {
        for Transition { entry, present } in transitions {
            let Scope::Room(room) = entry.scope else {
                continue;
            };
            self.registry.add_room(&room);
            if self.registry.room(&room).is_some_and(|state| state.has_name(&entry.name)) {
                continue;
            }
            let event = if present { PresenceEvent::Join } else { PresenceEvent::Leave };
            self.announce_presence(&room, &entry.name, event);
        }
    }

    /// The distinct names in `room` on every node, sorted.
    pub(super) fn members(&self, room: &RoomName) -> Vec<UserName> {
        let mut names: BTreeSet<&UserName> = self.mirror.names_in(room).collect();
        if let Some(state) = self.registry.room(room) {
            names.extend(state.names());
        }
        names.into_iter().cloned().collect()
    }

    /// Every room with its distinct names on every node, sorted by name.
    /// The registry knows every room the mirror does (`remote_presence`
    /// adds them), so only the other nodes' names of each room are walked.
    pub(super) fn summaries(&self) -> Vec<RoomSummary> {
        let summary = |(name, state): (&RoomName, &super::rooms::Room<_>)| {
            let elsewhere = self.mirror.names_in(name).filter(|other| !state.has_name(other));
            RoomSummary { name: name.clone(), members: state.name_count() + elsewhere.count() }
        };
        self.registry.rooms().map(summary).collect()
    }

    /// `typing` of `from` in `channel`, to the sessions here of everyone else.
    pub(super) fn typing_here(&mut self, channel: &Channel, from: &UserName) {
        let frame = encode(&ServerEvent::Typing { room: channel.as_str(), from });
        match channel {
            Channel::Room(room) => self.announce(room, from, frame),
            Channel::Direct(conversation) => {
                for user in distinct_users(conversation) {
                    if user != from {
                        self.notify_user(&user.clone(), &frame, None, |_| true);
                    }
                }
            }
        }
    }

    /// Answers a join: the members everywhere and the last id delivered
    /// here, and starts the user's read cursor there if they have none.
    pub(super) fn answer_join(&mut self, session: SessionId, room: RoomName, reply: JoinAnswer) {
        let channel = Channel::Room(room.clone());
        let last_id = self.sequencer.delivered(&channel);
        if let Some(reader) = self.registry.name_of(session).cloned() {
            let cursor = CursorMove { reader, channel, to: last_id, kind: CursorKind::Start };
            self.outbox.push_cursor(super::outbox::PendingCursor { cursor, reply: None });
        }
        // ignore: the session may have gone; it is in the room all the same.
        let _ = reply.send(Ok(JoinReply { members: self.members(&room), last_id }));
    }

    /// Another node's event.
    fn on_event(&mut self, node: NodeId, event: Event, ctx: &mut Context<Self>) {
        match event {
            Event::Message { message } => {
                if message.id == 0 {
                    log::warn!("node {node} published a message without an id: ignored");
                    return;
                }
                self.metrics.remote_messages.inc();
                if let Some(room) = message.room.room() {
                    self.registry.add_room(room);
                }
                self.sequence(message, None);
                self.start_reads(ctx);
            }
            Event::Typing { channel, from } => self.typing_here(&channel, &from),
            Event::Read { reader, channel, id } => {
                let frame = encode(&ServerEvent::Read { room: channel.as_str(), id });
                self.notify_user(&reader, &frame, None, |_| true);
            }
            Event::Mention { message, users } => self.notify_mentioned(&message, &users),
            Event::Presence { seq, entry, present } => {
                let Some(entry) = Entry::parse(&entry) else {
                    log::warn!("node {node} sent a presence entry that does not parse");
                    return;
                };
                match self.mirror.apply(&node, seq, entry, present) {
                    Applied::Done(transition) => {
                        self.remote_presence(transition.into_iter().collect())
                    }
                    Applied::Reload => self.reload(node),
                }
            }
            Event::Resync => self.reload(node),
            Event::Left => self.node_gone(node),
        }
    }

    /// `node` left or died: its members leave wherever they have no other
    /// session.
    fn node_gone(&mut self, node: NodeId) {
        let transitions = self.mirror.remove_node(&node);
        log::info!("node {node} is gone: {} of its presences ended", transitions.len());
        self.remote_presence(transitions);
    }

    /// Asks for `node`'s whole presence, unless that is under way.
    fn reload(&mut self, node: NodeId) {
        if let Some(cluster) = &self.cluster {
            if self.reloading.insert(node.clone()) {
                cluster.reload(node);
            }
        }
    }

    /// Adds the stored rooms this node has not heard of (created on a
    /// node whose news was lost), for `rooms`.
    fn reload_rooms(&mut self, ctx: &mut Context<Self>) {
        let read = self.store.rooms();
        ctx.spawn(read.into_actor(self).map(|result, server, _| match result {
            Ok(rooms) => {
                for room in rooms {
                    server.registry.add_room(&room.name);
                }
            }
            Err(error) => log::warn!("reading the stored rooms failed: {error}"),
        }));
    }
}

impl Handler<Hear> for ChatServer {
    type Result = ();

    fn handle(&mut self, message: Hear, ctx: &mut Context<Self>) {
        match message {
            Hear::Event { node, event } => self.on_event(node, event, ctx),
            Hear::Snapshot { node, seq, entries } => {
                self.reloading.remove(&node);
                let transitions = self.mirror.replace(&node, seq, entries);
                self.remote_presence(transitions);
            }
            Hear::NodeGone { node } => self.node_gone(node),
            Hear::CatchUp => {
                // Every node's presence was just read again.
                self.reloading.clear();
                self.check_channels(ctx);
                self.reload_rooms(ctx);
            }
        }
    }
}
