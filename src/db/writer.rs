//! [`PersistenceActor`]: the one thread that writes messages.
//!
//! It receives whole batches from the `ChatServer` (which gathers what
//! arrives while a commit is under way: group commit), writes each in one
//! transaction and answers with the stored messages. Ids come from the
//! rooms' counters in that transaction (`queries::commit`), so nothing is
//! cached between batches: several writers (one per node) can share a
//! Postgres database.

use actix::{Actor, ActorContext, Handler, Message, SyncContext};
use diesel::QueryResult;

use super::connection::{lost_a_race, AnyConnection};
use super::{queries, DbPool};
use crate::store::{Batch, Committed, StoreError};

/// Stores a batch in one transaction.
///
/// Sent by `DieselStore::commit`; handled by [`PersistenceActor`].
/// Replies with the stored messages in the batch's order, or an error when
/// nothing was stored.
#[derive(Debug, Message)]
#[rtype(result = "Result<Committed, StoreError>")]
pub struct Commit {
    pub batch: Batch,
}

/// Tries at one batch; see [`PersistenceActor::commit`].
const ATTEMPTS: u32 = 3;

/// How a batch is written: [`queries::commit`] (tests put a faulty one in).
type WriteBatch = fn(&mut AnyConnection, &Batch) -> QueryResult<Committed>;

/// The node's single writer; see the module doc.
pub struct PersistenceActor {
    pool: DbPool,
    write: WriteBatch,
}

impl PersistenceActor {
    /// A writer on `pool`.
    pub fn new(pool: DbPool) -> Self {
        Self { pool, write: queries::commit }
    }

    /// Writes `batch`, again (up to [`ATTEMPTS`] in all) when the database
    /// rolled it back only to let another writer through (see
    /// [`lost_a_race`]): nothing of it was stored, so trying again is safe.
    fn commit(&mut self, batch: &Batch) -> Result<Committed, StoreError> {
        let mut conn = self.pool.get()?;
        let started = std::time::Instant::now();
        let mut attempt = 1;
        let stored = loop {
            match (self.write)(&mut conn, batch) {
                Err(error) if attempt < ATTEMPTS && lost_a_race(&error) => {
                    log::warn!("a batch lost a race with another writer, trying again: {error}");
                    attempt += 1;
                }
                stored => break stored,
            }
        };
        match &stored {
            Ok(committed) => log::debug!(
                "committed {} messages and {} rooms in {:?}",
                committed.messages.len(),
                batch.rooms.len(),
                started.elapsed()
            ),
            Err(error) => {
                log::error!(
                    "storing a batch of {} messages failed, none was stored: {error}",
                    batch.messages.len()
                );
            }
        }
        Ok(stored?)
    }
}

impl Actor for PersistenceActor {
    type Context = SyncContext<Self>;
}

impl Handler<Commit> for PersistenceActor {
    type Result = Result<Committed, StoreError>;

    /// A panic while storing is caught: the batch is answered with an error
    /// (nothing of it was committed), and the actor is stopped, which makes
    /// its `SyncArbiter` start a fresh one on the same thread. Batches
    /// queued behind it wait in the mailbox, in order, for the new actor.
    fn handle(&mut self, message: Commit, ctx: &mut Self::Context) -> Self::Result {
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.commit(&message.batch)));
        outcome.unwrap_or_else(|_| {
            log::error!(
                "the persistence worker panicked storing {} messages (not stored); restarting it",
                message.batch.messages.len()
            );
            ctx.stop();
            Err(StoreError::Panicked)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Channel, Text, UserName};
    use crate::store::{Appended, NewMessage};
    use actix::SyncArbiter;

    fn batch(text: &str) -> Batch {
        let from = UserName::parse("alice").unwrap();
        let messages = vec![NewMessage {
            channel: Channel::parse("r").unwrap(),
            from,
            text: Text::parse(text, 100).unwrap(),
            idempotency_key: None,
        }];
        Batch { messages, ..Batch::default() }
    }

    #[actix::test]
    async fn a_panicking_writer_is_restarted_and_loses_nothing_queued() {
        let dir = tempfile::TempDir::new().unwrap();
        let pool = super::super::open(&dir.path().join("t.db").to_string_lossy(), 2).unwrap();
        let writer = SyncArbiter::start(1, move || PersistenceActor {
            write: |conn, batch| {
                assert!(
                    !batch.messages.iter().any(|m| m.text.as_str() == "boom"),
                    "injected fault"
                );
                queries::commit(conn, batch)
            },
            ..PersistenceActor::new(pool.clone())
        });
        let first = writer.send(Commit { batch: batch("one") });
        let failing = writer.send(Commit { batch: batch("boom") });
        let queued = writer.send(Commit { batch: batch("two") });
        let first = first.await.unwrap().unwrap();
        assert_eq!(
            first.messages[0],
            Appended::Stored(first.messages[0].message().unwrap().clone())
        );
        assert_eq!(first.messages[0].message().unwrap().id, 1);
        assert!(matches!(failing.await.unwrap(), Err(StoreError::Panicked)));
        let after = queued.await.unwrap().unwrap().messages[0].message().unwrap().clone();
        assert_eq!((after.id, after.text.as_str()), (2, "two"), "no id taken by the panic");
    }
}
