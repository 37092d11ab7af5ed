//! [`HistoryReader`]: threads that answer history and room queries.

use actix::{Actor, Handler, Message, SyncContext};
use diesel::connection::SimpleConnection;

use super::{cursors, queries, DbPool};
use crate::domain::{Channel, MessageId, UserName};
use crate::store::{Page, PageQuery, ReadState, RoomRecord, StoreError};

/// Reads one page of history. Sent by `DieselStore::page`.
#[derive(Debug, Message)]
#[rtype(result = "Result<Page, StoreError>")]
pub struct LoadPage {
    pub query: PageQuery,
}

/// Lists stored rooms with their latest ids. Sent by `DieselStore::rooms`.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<RoomRecord>, StoreError>")]
pub struct ListRooms;

/// Reads the latest ids of some channels. Sent by `DieselStore::last_ids`.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<(Channel, MessageId)>, StoreError>")]
pub struct LastIds {
    pub channels: Vec<Channel>,
}

/// Reads a user's direct conversations and their latest ids. Sent by
/// `DieselStore::conversations`.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<(Channel, MessageId)>, StoreError>")]
pub struct LoadConversations {
    pub user: UserName,
}

/// Reads a user's read state in one channel. Sent by `DieselStore::read_state`.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<ReadState>, StoreError>")]
pub struct LoadReadState {
    /// Whose state.
    pub reader: UserName,
    /// The room or conversation.
    pub channel: Channel,
}

/// Reads a user's read state everywhere. Sent by `DieselStore::inbox`.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<ReadState>, StoreError>")]
pub struct LoadInbox {
    /// Whose inbox.
    pub reader: UserName,
}

/// Runs a trivial query, for `/healthz`. Sent by `DieselStore::check`.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct Check;

/// A reader thread; several run side by side on one `SyncArbiter`.
pub struct HistoryReader {
    pool: DbPool,
}

impl HistoryReader {
    /// A reader taking connections from `pool`, shared with the other readers.
    pub fn new(pool: DbPool) -> Self {
        Self { pool }
    }
}

impl Actor for HistoryReader {
    type Context = SyncContext<Self>;
}

impl Handler<LoadPage> for HistoryReader {
    type Result = Result<Page, StoreError>;

    fn handle(&mut self, message: LoadPage, _: &mut Self::Context) -> Self::Result {
        let mut conn = self.pool.get()?;
        Ok(queries::page(&mut conn, &message.query)?)
    }
}

impl Handler<ListRooms> for HistoryReader {
    type Result = Result<Vec<RoomRecord>, StoreError>;

    fn handle(&mut self, _: ListRooms, _: &mut Self::Context) -> Self::Result {
        let mut conn = self.pool.get()?;
        Ok(queries::rooms(&mut conn)?)
    }
}

impl Handler<LastIds> for HistoryReader {
    type Result = Result<Vec<(Channel, MessageId)>, StoreError>;

    fn handle(&mut self, message: LastIds, _: &mut Self::Context) -> Self::Result {
        let mut conn = self.pool.get()?;
        Ok(queries::last_ids(&mut conn, &message.channels)?)
    }
}

impl Handler<LoadConversations> for HistoryReader {
    type Result = Result<Vec<(Channel, MessageId)>, StoreError>;

    fn handle(&mut self, message: LoadConversations, _: &mut Self::Context) -> Self::Result {
        let mut conn = self.pool.get()?;
        Ok(queries::conversations(&mut conn, &message.user)?)
    }
}

impl Handler<Check> for HistoryReader {
    type Result = Result<(), StoreError>;

    fn handle(&mut self, _: Check, _: &mut Self::Context) -> Self::Result {
        Ok(self.pool.get()?.batch_execute("SELECT 1")?)
    }
}

impl Handler<LoadReadState> for HistoryReader {
    type Result = Result<Option<ReadState>, StoreError>;

    fn handle(&mut self, message: LoadReadState, _: &mut Self::Context) -> Self::Result {
        let mut conn = self.pool.get()?;
        Ok(cursors::read_state(&mut conn, &message.reader, &message.channel)?)
    }
}

impl Handler<LoadInbox> for HistoryReader {
    type Result = Result<Vec<ReadState>, StoreError>;

    fn handle(&mut self, message: LoadInbox, _: &mut Self::Context) -> Self::Result {
        let mut conn = self.pool.get()?;
        Ok(cursors::inbox(&mut conn, &message.reader)?)
    }
}
