//! SQLite through diesel: the connection pool, the embedded migrations and
//! [`SqliteStore`], walkie's [`MessageStore`].
//!
//! Writes go to one [`PersistenceActor`] (a `SyncArbiter` of one thread):
//! SQLite has one writer at a time anyway, and a single writer is what lets
//! it number messages from a cache that provably equals the database.
//! Reads go to [`HistoryReader`]s on their own `SyncArbiter`, so a long
//! history query never delays a commit.

pub mod cursors;
mod models;
pub mod queries;
mod reader;
mod writer;

use std::time::Duration;

use actix::{Addr, SyncArbiter};
use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use reader::HistoryReader;
pub use writer::PersistenceActor;

use crate::domain::UserName;
use crate::store::{
    Batch, Committed, MessageStore, Page, PageQuery, ReadState, RoomRecord, StoreFuture,
};

/// The migrations of `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// A pool of SQLite connections, each set up by [`ConnectionSettings`].
pub type DbPool = Pool<ConnectionManager<SqliteConnection>>;

/// Why the database could not be opened at start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file could not be opened (or created).
    #[error(
        "cannot open the SQLite database {url}: {source} (check the path and its permissions)"
    )]
    Pool {
        /// The `--database-url` given (a file path).
        url: String,
        /// Why no connection could be made: a bad path, missing permissions...
        source: diesel::r2d2::PoolError,
    },
    /// The file opened but its migrations failed (not a walkie database?).
    #[error("cannot migrate the SQLite database {url}: {message}")]
    Migrate {
        /// The `--database-url` given (a file path).
        url: String,
        /// The migration harness's error, as text.
        message: String,
    },
}

/// How long a connection waits for another's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Per-connection settings, applied whenever the pool opens a connection.
///
/// - `busy_timeout`: wait for a lock rather than fail at once.
/// - WAL: readers never block the writer, nor the writer readers.
/// - `synchronous = FULL`: every commit is on disk before it returns, so an
///   acknowledged message survives a crash of the machine, not only of
///   the process.
/// - `foreign_keys`: SQLite leaves them off unless asked.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionSettings;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for ConnectionSettings {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        let pragmas = format!(
            "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
             PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
            BUSY_TIMEOUT.as_millis()
        );
        conn.batch_execute(&pragmas).map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Opens (creating if needed) and migrates the database at `url`.
pub fn open(url: &str, connections: u32) -> Result<DbPool, OpenError> {
    let pool = Pool::builder()
        .max_size(connections)
        .connection_customizer(Box::new(ConnectionSettings))
        .build(ConnectionManager::<SqliteConnection>::new(url))
        .map_err(|source| OpenError::Pool { url: url.into(), source })?;
    let mut conn = pool.get().map_err(|source| OpenError::Pool { url: url.into(), source })?;
    conn.run_pending_migrations(MIGRATIONS)
        .map_err(|error| OpenError::Migrate { url: url.into(), message: error.to_string() })?;
    Ok(pool)
}

/// walkie's [`MessageStore`]: a writer and a few readers on `SyncArbiter`s.
#[derive(Clone)]
pub struct SqliteStore {
    writer: Addr<PersistenceActor>,
    reader: Addr<HistoryReader>,
}

impl SqliteStore {
    /// Starts the writer and `readers` reader threads. Call inside a running
    /// actix system.
    pub fn start(pool: &DbPool, readers: usize) -> Self {
        let writer_pool = pool.clone();
        let writer = SyncArbiter::start(1, move || PersistenceActor::new(writer_pool.clone()));
        let reader_pool = pool.clone();
        let reader =
            SyncArbiter::start(readers.max(1), move || HistoryReader::new(reader_pool.clone()));
        Self { writer, reader }
    }
}

impl MessageStore for SqliteStore {
    fn commit(&self, batch: Batch) -> StoreFuture<Committed> {
        let request = self.writer.send(writer::Commit { batch });
        Box::pin(async move { request.await? })
    }

    fn page(&self, query: PageQuery) -> StoreFuture<Page> {
        let request = self.reader.send(reader::LoadPage { query });
        Box::pin(async move { request.await? })
    }

    fn rooms(&self) -> StoreFuture<Vec<RoomRecord>> {
        let request = self.reader.send(reader::ListRooms);
        Box::pin(async move { request.await? })
    }

    fn check(&self) -> StoreFuture<()> {
        let request = self.reader.send(reader::Check);
        Box::pin(async move { request.await? })
    }

    fn read_state(&self, reader: UserName, channel: String) -> StoreFuture<Option<ReadState>> {
        let request = self.reader.send(reader::LoadReadState { reader, channel });
        Box::pin(async move { request.await? })
    }

    fn inbox(&self, reader: UserName) -> StoreFuture<Vec<ReadState>> {
        let request = self.reader.send(reader::LoadInbox { reader });
        Box::pin(async move { request.await? })
    }
}
