//! [`PersistenceActor`]: the one thread that writes messages.
//!
//! It receives whole batches from the `ChatServer` (which gathers what
//! arrives while a commit is under way: group commit), writes each in one
//! transaction and answers with the stored messages. Being the only writer,
//! it keeps the latest id of each channel in memory between batches.

use std::collections::HashMap;

use actix::{Actor, Handler, Message, SyncContext};

use super::{queries, DbPool};
use crate::domain::MessageId;
use crate::protocol::ChatMessage;
use crate::store::{Batch, StoreError};

/// Stores a batch in one transaction.
///
/// Sent by [`crate::db::SqliteStore::append`]; handled by [`PersistenceActor`].
/// Replies with the stored messages in the batch's order, or an error when
/// nothing was stored.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<ChatMessage>, StoreError>")]
pub struct Append {
    pub batch: Batch,
}

/// The single writer; see the module doc.
pub struct PersistenceActor {
    pool: DbPool,
    /// Latest stored id per channel; equal to the database's, see
    /// [`queries::append`].
    last_ids: HashMap<String, MessageId>,
}

impl PersistenceActor {
    pub fn new(pool: DbPool) -> Self {
        Self {
            pool,
            last_ids: HashMap::new(),
        }
    }
}

impl Actor for PersistenceActor {
    type Context = SyncContext<Self>;
}

impl Handler<Append> for PersistenceActor {
    type Result = Result<Vec<ChatMessage>, StoreError>;

    fn handle(&mut self, message: Append, _: &mut Self::Context) -> Self::Result {
        let mut conn = self.pool.get()?;
        let started = std::time::Instant::now();
        let stored = queries::append(&mut conn, &mut self.last_ids, &message.batch);
        match &stored {
            Ok(messages) => log::debug!(
                "committed {} messages and {} rooms in {:?}",
                messages.len(),
                message.batch.rooms.len(),
                started.elapsed()
            ),
            Err(error) => {
                // The transaction rolled back: forget cached ids so the next
                // batch reads them again from the database.
                self.last_ids.clear();
                log::error!(
                    "storing a batch of {} messages failed, none was stored: {error}",
                    message.batch.messages.len()
                );
            }
        }
        Ok(stored?)
    }
}
