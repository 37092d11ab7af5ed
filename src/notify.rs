//! [`NotificationActor`]: works out `mention`s and keeps those of offline
//! users.
//!
//! A background worker on a `SyncArbiter` of one thread, beside the
//! persistence workers: the `ChatServer` hands it stored messages and goes
//! on delivering; the worker finds who they mention and answers with that
//! ([`FindMentions`]), for the server to route. The server asks it to keep
//! a mention when the user is offline, and to hand a user's kept mentions
//! to their first new session. Both requests come from the server, in the
//! server's order, to this one thread: a mention kept before a user
//! connects is always in what that connection takes.
//!
//! It knows neither the `ChatServer` (it only answers) nor the database (it
//! keeps mentions through [`PendingMentions`]).
//!
//! The mention rows that unread mention counts are made from are not
//! written here: the writer stores them with the message, in one
//! transaction. What this worker keeps for offline users is the `mention`
//! frame itself; a crash between a commit and that write loses the frame
//! (the user still sees the count in `joined` and `inbox`).

use std::sync::Arc;

use actix::{Actor, Handler, Message, SyncContext};

use crate::domain::UserName;
use crate::mentions::mentioned_users;
use crate::metrics::Metrics;
use crate::outbound::SessionHandle;
use crate::protocol::{encode, ChatMessage, ServerEvent};
use crate::store::PendingMentions;

/// A stored message and the users it mentions.
#[derive(Debug, Clone)]
pub struct Mention {
    /// The stored room message, with its `id`, sent in each `mention` frame.
    pub message: ChatMessage,
    /// The users it names, each once, never the sender.
    pub users: Vec<UserName>,
}

impl Mention {
    /// The `mention` frame for this message: what a mentioned user outside
    /// the room gets, now or on their next connection.
    pub fn frame(message: &ChatMessage) -> bytestring::ByteString {
        encode(&ServerEvent::Mention {
            room: message.room.as_str(),
            id: message.id,
            from: &message.from,
            text: &message.text,
        })
    }
}

/// Finds the mentions in stored room messages. Sent by the `ChatServer`
/// after each commit; answered with the messages that mention anyone.
#[derive(Debug, Message)]
#[rtype(result = "Vec<Mention>")]
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
    pending: Arc<dyn PendingMentions>,
    metrics: Arc<Metrics>,
}

impl NotificationActor {
    /// A worker keeping the mentions of offline users in `pending`.
    pub fn new(pending: Arc<dyn PendingMentions>, metrics: Arc<Metrics>) -> Self {
        Self { pending, metrics }
    }
}

impl Actor for NotificationActor {
    type Context = SyncContext<Self>;
}

impl Handler<FindMentions> for NotificationActor {
    type Result = Vec<Mention>;

    fn handle(&mut self, message: FindMentions, _: &mut Self::Context) -> Vec<Mention> {
        self.metrics.notification_queue.dec();
        message
            .messages
            .into_iter()
            .filter_map(|message| {
                let users = mentioned_users(&message.text, &message.from);
                (!users.is_empty()).then_some(Mention { message, users })
            })
            .collect()
    }
}

impl Handler<KeepMentions> for NotificationActor {
    type Result = ();

    fn handle(&mut self, message: KeepMentions, _: &mut Self::Context) {
        self.metrics.notification_queue.dec();
        if let Err(error) = self.pending.keep(&message.recipients, &message.message) {
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
        let mentions = self.pending.take(&message.name).unwrap_or_else(|error| {
            log::error!(
                "could not read the mentions kept for {}; they stay for a later connection: {error}",
                message.name
            );
            Vec::new()
        });
        message.session.pending_mentions(mentions.iter().map(Mention::frame).collect());
    }
}
