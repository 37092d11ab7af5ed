//! [`ChatServer`]: its state, group commit, delivery and shutdown. The
//! message handlers are in `handlers.rs`; the rules live in [`Registry`]
//! and [`Outbox`].

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::catchup::Reads;
use super::inbox::Inbox;
use super::outbox::{Flight, Outbox, Ready};
use super::rooms::Registry;
use super::sequence::Sequencer;
use super::Arrival;
use crate::cluster::{Cluster, Mirror};
use crate::domain::{Channel, Conversation, RoomName, SessionId, UserName};
use crate::metrics::Metrics;
use crate::notify::NotificationActor;
use crate::outbound::{CloseReason, SessionHandle, SLOW_CHECK_INTERVAL};
use crate::store::{MessageStore, RoomRecord};

/// How long to wait before retrying room creations after a failed commit,
/// so a broken database is not hammered.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// How long shutdown waits for sessions to confirm they stopped acting on
/// client frames. A session whose client does not read is not running and
/// never confirms; past this, shutdown goes on without it.
const QUIESCE_DEADLINE: Duration = Duration::from_secs(3);

/// Where the server is in its life.
#[derive(Debug, Default)]
pub(super) enum Lifecycle {
    #[default]
    Running,
    /// Shutting down: sessions were told to stop acting on client frames;
    /// `unconfirmed` have not said they did. Everything received is still
    /// stored and acknowledged.
    Draining { waiters: Vec<oneshot::Sender<()>>, unconfirmed: HashSet<SessionId> },
    /// Sessions were told to close; nothing more is accepted.
    Closed,
}

/// Owns rooms, sessions and their membership; see the module doc.
pub struct ChatServer {
    pub(super) registry: Registry<SessionHandle>,
    pub(super) outbox: Outbox,
    /// What was delivered in each channel, and what waits for a gap.
    pub(super) sequencer: Sequencer<Arrival>,
    /// The reads from the store that put channels in order (see `catchup`).
    pub(super) reads: Reads,
    /// The other nodes, with `--redis-url`.
    pub(super) cluster: Option<Cluster>,
    /// Who is present on the other nodes (empty on a single node).
    pub(super) mirror: Mirror,
    /// Nodes whose whole presence was asked for and has not come yet.
    pub(super) reloading: std::collections::HashSet<crate::cluster::NodeId>,
    /// Sessions' `join`s, `say`s and `leave`s waiting to be taken (see `inbox`).
    inbox: Arc<Inbox>,
    pub(super) store: Arc<dyn MessageStore>,
    pub(super) notifier: Addr<NotificationActor>,
    pub(super) lifecycle: Lifecycle,
    /// Room creations whose commit failed, retried after a pause.
    failed_rooms: Vec<RoomName>,
    pub(super) metrics: Arc<Metrics>,
}

impl Actor for ChatServer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(SLOW_CHECK_INTERVAL, |server, _| server.close_slow_sessions());
        if self.cluster.is_some() {
            ctx.run_interval(super::catchup::CHECK_PERIOD, |server, ctx| {
                server.check_channels(ctx);
            });
        }
    }
}

impl ChatServer {
    /// A server that knows the stored `rooms`, writes through `store` and
    /// takes sessions' ordered commands from `inbox`; with a `cluster`, it
    /// shares its rooms with the other nodes.
    pub fn new(
        store: Arc<dyn MessageStore>,
        notifier: Addr<NotificationActor>,
        inbox: Arc<Inbox>,
        rooms: Vec<RoomRecord>,
        cluster: Option<Cluster>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let mut registry = Registry::default();
        let mut sequencer = Sequencer::default();
        for room in rooms {
            registry.add_room(&room.name);
            sequencer.start(Channel::Room(room.name), room.last_id);
        }
        Self {
            registry,
            outbox: Outbox::default(),
            sequencer,
            reads: Reads::default(),
            cluster,
            mirror: Mirror::default(),
            reloading: Default::default(),
            inbox,
            store,
            notifier,
            lifecycle: Lifecycle::Running,
            failed_rooms: Vec::new(),
            metrics,
        }
    }

    /// Takes the inbox's commands, then sends the next batch to the store
    /// unless one is in flight or a pause is under way.
    ///
    /// While a batch or a pause is under way the inbox stays watched: no
    /// session need wake the server, because the batch's end (or the
    /// pause's) flushes again. Only an idle server stops watching it.
    pub(super) fn flush(&mut self, ctx: &mut Context<Self>) {
        loop {
            for command in self.inbox.take() {
                self.take_command(command, ctx);
            }
            // A join's lookup must not overlap a commit (see `catchup`).
            let ready = if self.reads.looking_up > 0 { Ready::NotYet } else { self.outbox.ready() };
            match ready {
                Ready::Now(flight) => {
                    self.inbox.watch();
                    return self.commit(flight, ctx);
                }
                Ready::After(pause) => {
                    self.inbox.watch();
                    ctx.run_later(pause, |server, ctx| {
                        server.outbox.timer_fired();
                        server.flush(ctx);
                    });
                    return;
                }
                // A batch is in flight: its end flushes.
                Ready::NotYet if !self.outbox.is_idle() => return self.inbox.watch(),
                // Idle; a command that came in meanwhile is taken first.
                Ready::NotYet => {
                    if self.inbox.unwatch() {
                        return self.finish_shutdown_if_drained();
                    }
                }
            }
        }
    }

    /// Sends one batch to the store; once it is committed (or failed),
    /// answers everyone waiting on it and flushes again.
    fn commit(&mut self, flight: Flight, ctx: &mut Context<Self>) {
        let Flight { batch, replies, cursors } = flight;
        let rooms = batch.rooms.clone();
        self.reads.batch_starts(&batch);
        self.metrics.batch_size.observe(batch.messages.len() as f64);
        let started = std::time::Instant::now();
        let committed = self.store.commit(batch);
        ctx.spawn(committed.into_actor(self).map(move |result, server, ctx| {
            server.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
            server.outbox.finish();
            match result {
                Ok(committed) => server.on_committed(replies, cursors, committed, ctx),
                Err(error) => {
                    server.fail(replies, cursors, &error);
                    server.retry_rooms_later(rooms, ctx);
                }
            }
            // Before the next batch starts: see `catchup` for why.
            server.start_reads(ctx);
            server.flush(ctx);
        }));
    }

    /// Keeps room creations that failed for a retry after a pause (unless
    /// shutting down: then they are lost like any unstored write).
    fn retry_rooms_later(&mut self, rooms: Vec<RoomName>, ctx: &mut Context<Self>) {
        if rooms.is_empty() || !matches!(self.lifecycle, Lifecycle::Running) {
            return;
        }
        if self.failed_rooms.is_empty() {
            ctx.run_later(RETRY_AFTER_FAILURE, |server, ctx| {
                for room in std::mem::take(&mut server.failed_rooms) {
                    server.outbox.push_room(room);
                }
                server.flush(ctx);
            });
        }
        self.failed_rooms.extend(rooms);
    }

    /// Begins graceful shutdown: sessions stop acting on client frames.
    pub(super) fn begin_shutdown(&mut self, done: oneshot::Sender<()>, ctx: &mut Context<Self>) {
        match &mut self.lifecycle {
            Lifecycle::Running => {
                let mut unconfirmed = HashSet::new();
                for (session, handle) in self.registry.sessions() {
                    handle.quiesce();
                    unconfirmed.insert(session);
                }
                log::info!("shutting down: waiting for {} sessions to stop", unconfirmed.len());
                self.lifecycle = Lifecycle::Draining { waiters: vec![done], unconfirmed };
                ctx.run_later(QUIESCE_DEADLINE, |server, _| {
                    if let Lifecycle::Draining { unconfirmed, .. } = &mut server.lifecycle {
                        if !unconfirmed.is_empty() {
                            log::warn!("{} sessions did not stop in time", unconfirmed.len());
                        }
                        unconfirmed.clear();
                    }
                    server.finish_shutdown_if_drained();
                });
            }
            Lifecycle::Draining { waiters, .. } => waiters.push(done),
            Lifecycle::Closed => {
                // ignore: the caller is told at once; nobody else waits.
                let _ = done.send(());
            }
        }
        self.finish_shutdown_if_drained();
    }

    /// A session will forward nothing more; see [`Lifecycle::Draining`].
    pub(super) fn confirm_quiesced(&mut self, session: SessionId) {
        if let Lifecycle::Draining { unconfirmed, .. } = &mut self.lifecycle {
            unconfirmed.remove(&session);
        }
    }

    /// Once every session stopped forwarding and everything received is
    /// stored and acknowledged, closes every session with 1001.
    pub(super) fn finish_shutdown_if_drained(&mut self) {
        let drained = matches!(&self.lifecycle,
            Lifecycle::Draining { unconfirmed, .. } if unconfirmed.is_empty())
            && self.outbox.is_idle();
        if !drained {
            return;
        }
        if let Lifecycle::Draining { waiters, .. } =
            std::mem::replace(&mut self.lifecycle, Lifecycle::Closed)
        {
            // Stored messages still held for an earlier one (with several
            // nodes): their senders get the acknowledgement now.
            for arrival in self.sequencer.take_held(|arrival| arrival.reply.is_some()) {
                if let Some(reply) = arrival.reply {
                    self.answer_stored(&arrival.message, reply, true);
                }
            }
            log::info!("every received message is stored and acknowledged; closing all sessions");
            for (_, handle) in self.registry.sessions() {
                handle.close(CloseReason::ShuttingDown);
            }
            for waiter in waiters {
                // ignore: nobody waits any more if the caller gave up.
                let _ = waiter.send(());
            }
        }
    }
}

/// The users of a conversation, once each (`@bo+bo` has one).
pub(super) fn distinct_users(conversation: &Conversation) -> Vec<&UserName> {
    let [first, second] = conversation.users();
    if first == second {
        vec![first]
    } else {
        vec![first, second]
    }
}
