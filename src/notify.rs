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

use actix::{Actor, Addr, Handler, Message, SyncContext};

use std::sync::Arc;

use crate::chat::{ChatServer, Mention, RouteMentions};
use crate::db::{cursors, queries, DbPool};
use crate::domain::{is_name_char, UserName};
use crate::metrics::Metrics;
use crate::protocol::{encode, ChatMessage, ServerEvent};
use crate::session::SessionHandle;
use crate::store::StoreError;

/// Most users one message mentions: a text full of `@names` must not turn
/// into thousands of notifications (and kept rows).
pub const MAX_MENTIONS_PER_MESSAGE: usize = 20;

/// The users a text mentions: for each `@`, the longest run of name
/// characters after it with trailing dots dropped, when that is a valid
/// name; once each, in order, never `sender`, at most
/// [`MAX_MENTIONS_PER_MESSAGE`].
pub fn mentioned_users(text: &str, sender: &UserName) -> Vec<UserName> {
    let mut users: Vec<UserName> = Vec::new();
    for (at, _) in text.match_indices('@') {
        if users.len() == MAX_MENTIONS_PER_MESSAGE {
            break;
        }
        let after = &text[at + 1..];
        let end = after.find(|c: char| !is_name_char(c)).unwrap_or(after.len());
        let candidate = after[..end].trim_end_matches('.');
        let Ok(user) = UserName::parse(candidate) else {
            continue;
        };
        if &user != sender && !users.contains(&user) {
            users.push(user);
        }
    }
    users
}

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
        // Route first: live mentions must not wait for the disk.
        self.chat.do_send(RouteMentions { mentions: mentions.clone() });
        let recorded = self.with_connection(|conn| {
            conn.immediate_transaction(|conn| {
                for Mention { message, users } in &mentions {
                    cursors::add_mentions(conn, &message.room, message.id, users)?;
                }
                Ok(())
            })
        });
        if let Err(error) = recorded {
            log::error!("could not record {} mentions for unread counts: {error}", mentions.len());
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str, sender: &str) -> Vec<String> {
        let sender = UserName::parse(sender).unwrap();
        mentioned_users(text, &sender).into_iter().map(String::from).collect()
    }

    #[test]
    fn a_mention_is_the_longest_run_of_name_characters() {
        assert_eq!(names("hi @bob, and @carol_2!", "alice"), ["bob", "carol_2"]);
        assert_eq!(names("@bob.smith is here", "alice"), ["bob.smith"]);
    }

    #[test]
    fn trailing_dots_are_dropped() {
        assert_eq!(names("thanks @bob.", "alice"), ["bob"]);
        assert_eq!(names("thanks @bob...", "alice"), ["bob"]);
    }

    #[test]
    fn each_user_once_never_the_sender_case_sensitive() {
        assert_eq!(names("@bob @bob @alice @Bob", "alice"), ["bob", "Bob"]);
    }

    #[test]
    fn a_message_mentions_a_bounded_number_of_users() {
        let text: String = (0..50).map(|i| format!("@u{i} ")).collect();
        let mentioned = names(&text, "alice");
        assert_eq!(mentioned.len(), MAX_MENTIONS_PER_MESSAGE);
        assert_eq!(mentioned[0], "u0");
    }

    #[test]
    fn non_names_mention_nobody() {
        assert!(names("@ @. @@ a@", "alice").is_empty());
        assert!(names(&format!("@{}", "x".repeat(33)), "alice").is_empty());
        assert_eq!(names("mail@bob", "alice"), ["bob"]);
    }
}
