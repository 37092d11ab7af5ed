//! [`NotificationActor`]: works out `mention`s and keeps those of offline
//! users.
//!
//! A background worker on a `SyncArbiter` of one thread, beside the
//! persistence workers: the `ChatServer` hands it stored messages and goes
//! on delivering; the worker finds who they mention and hands that back
//! for routing ([`RouteMentions`]). The server asks it to keep a mention
//! when the user is offline, and to hand a user's kept mentions to their
//! first new session. Both requests come from the server, in the server's
//! order, to this one thread: a mention kept before a user connects is
//! always in what that connection takes.
//!
//! The mention rows that unread mention counts are made from are not
//! written here: the writer stores them with the message, in one
//! transaction. What this worker keeps for offline users is the `mention`
//! frame itself; a crash between a commit and that write loses the frame
//! (the user still sees the count in `joined` and `inbox`).

use actix::{Actor, Addr, Handler, Message, SyncContext};

use std::sync::Arc;

use crate::chat::{ChatServer, Mention, RouteMentions};
use crate::db::{queries, DbPool};
use crate::domain::UserName;
use crate::mentions::mentioned_users;
use crate::metrics::Metrics;
use crate::protocol::{encode, ChatMessage, ServerEvent};
use crate::session::SessionHandle;
use crate::store::StoreError;

/// Finds the mentions in stored room messages. Sent by the `ChatServer`
/// after each commit; answered with [`RouteMentions`] when there are any.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct FindMentions {
    /// The batch's stored room messages (direct messages never mention).
    pub messages: Vec<ChatMessage>,
}

/// Keeps a message's mention of users who are offline, in one
/// transaction. Sent by the `ChatServer`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct KeepMentions {
    /// The mentioned users with no session online; each gets it on next connect.
    pub recipients: Vec<UserName>,
    /// The stored message that mentions them, sent as a `mention` frame later.
    pub message: ChatMessage,
}

/// Hands the mentions kept for `name` to its new session (as
/// `SessionEvent::PendingMentions`, empty when there are none) and
/// forgets them. Sent by the `ChatServer` when a name's first session
/// connects.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct TakePendingMentions {
    /// The user whose kept mentions are taken (and deleted).
    pub name: UserName,
    /// The new session, which gets them right after `welcome`.
    pub session: SessionHandle,
}

/// The mention worker; see the module doc.
pub struct NotificationActor {
    pool: DbPool,
    chat: Addr<ChatServer>,
    metrics: Arc<Metrics>,
}

impl NotificationActor {
    /// A worker keeping mentions in `pool`'s database and routing them through `chat`.
    pub fn new(pool: DbPool, chat: Addr<ChatServer>, metrics: Arc<Metrics>) -> Self {
        Self { pool, chat, metrics }
    }

    /// Runs `query` on a pooled connection.
    fn with_connection<T>(
        &self,
        query: impl FnOnce(&mut diesel::SqliteConnection) -> diesel::QueryResult<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self.pool.get()?;
        Ok(query(&mut conn)?)
    }
}

impl Actor for NotificationActor {
    type Context = SyncContext<Self>;
}

impl Handler<FindMentions> for NotificationActor {
    type Result = ();

    fn handle(&mut self, message: FindMentions, _: &mut Self::Context) {
        self.metrics.notification_queue.dec();
        let mentions: Vec<Mention> = message
            .messages
            .into_iter()
            .filter_map(|message| {
                let users = mentioned_users(&message.text, &message.from);
                (!users.is_empty()).then_some(Mention { message, users })
            })
            .collect();
        if mentions.is_empty() {
            return;
        }
        // The mention rows behind unread counts were written with the
        // messages, in their transaction: only routing is left.
        self.chat.do_send(RouteMentions { mentions });
    }
}

impl Handler<KeepMentions> for NotificationActor {
    type Result = ();

    fn handle(&mut self, message: KeepMentions, _: &mut Self::Context) {
        self.metrics.notification_queue.dec();
        let kept = self.with_connection(|conn| {
            queries::add_pending_mentions(conn, &message.recipients, &message.message)
        });
        if let Err(error) = kept {
            log::error!(
                "could not keep the mentions of message {} in {} for {} offline users: {error}",
                message.message.id,
                message.message.room,
                message.recipients.len()
            );
        }
    }
}

impl Handler<TakePendingMentions> for NotificationActor {
    type Result = ();

    fn handle(&mut self, message: TakePendingMentions, _: &mut Self::Context) {
        self.metrics.notification_queue.dec();
        if !message.session.connected() {
            return; // gone already: the mentions stay for a later connection
        }
        let taken =
            self.with_connection(|conn| queries::take_pending_mentions(conn, &message.name));
        let mentions = taken.unwrap_or_else(|error| {
            log::error!(
                "could not read the mentions kept for {}; they stay for a later connection: {error}",
                message.name
            );
            Vec::new()
        });
        let frames = mentions
            .iter()
            .map(|mention| {
                encode(&ServerEvent::Mention {
                    room: &mention.room,
                    id: mention.id,
                    from: &mention.from,
                    text: &mention.text,
                })
            })
            .collect();
        message.session.pending_mentions(frames);
    }
}
