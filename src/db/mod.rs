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

/// WAL pages between automatic checkpoints; see [`ConnectionSettings`].
const CHECKPOINT_PAGES: u32 = 10_000;

/// Per-connection settings, applied whenever the pool opens a connection.
///
/// - `busy_timeout`: wait for a lock rather than fail at once.
/// - WAL: readers never block the writer, nor the writer readers.
/// - `synchronous = FULL`: every commit is on disk before it returns, so an
///   acknowledged message survives a crash of the machine, not only of
///   the process.
/// - `foreign_keys`: SQLite leaves them off unless asked.
/// - `wal_autocheckpoint`: the writer copies the WAL back into the database
///   every [`CHECKPOINT_PAGES`] pages rather than SQLite's 1,000. A
///   checkpoint writes each page it finds once and syncs the database file,
///   so a longer WAL folds many commits to the same busy pages into one
///   write: with 500 busy rooms a batch took 35 % less time
///   (`cargo bench -- batch_insert_rooms`, docs/performance.md). The cost
///   is a WAL file of ~40 MB, reused rather than regrown (more while a long
///   read holds an old snapshot: checkpoints are passive).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionSettings;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for ConnectionSettings {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        let pragmas = format!(
            "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
             PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
             PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES};",
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

#[cfg(test)]
mod tests {
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Text};
    use diesel_migrations::MigrationHarness;

    use super::*;

    #[derive(QueryableByName, Debug, PartialEq)]
    struct Cursor {
        #[diesel(sql_type = Text)]
        reader: String,
        #[diesel(sql_type = BigInt)]
        last_read: i64,
    }

    /// A conversation from before cursors existed gets cursors at 0 from
    /// migration 2; migration 3 moves each past its user's own messages,
    /// so unread counts (which no longer look at senders) stay right.
    #[test]
    fn migration_3_moves_old_cursors_past_their_users_own_messages() {
        let dir = tempfile::TempDir::new().unwrap();
        let url = dir.path().join("old.db").to_string_lossy().into_owned();
        let mut conn = SqliteConnection::establish(&url).unwrap();
        conn.run_next_migration(MIGRATIONS).unwrap();
        conn.batch_execute(
            "INSERT INTO rooms VALUES ('@alice+bob', 't'); \
             INSERT INTO messages (room, id, sender, body, created_at) VALUES \
             ('@alice+bob', 1, 'alice', 'a', 't'), ('@alice+bob', 2, 'bob', 'b', 't'), \
             ('@alice+bob', 3, 'alice', 'c', 't'), ('@alice+bob', 4, 'bob', 'd', 't');",
        )
        .unwrap();
        conn.run_next_migration(MIGRATIONS).unwrap(); // backfills cursors at 0
        conn.run_pending_migrations(MIGRATIONS).unwrap();
        let cursors: Vec<Cursor> =
            diesel::sql_query("SELECT reader, last_read FROM read_cursors ORDER BY reader")
                .load(&mut conn)
                .unwrap();
        let at = |reader: &str, last_read| Cursor { reader: reader.into(), last_read };
        assert_eq!(cursors, [at("alice", 3), at("bob", 4)]);
        let alice = UserName::parse("alice").unwrap();
        let state = cursors::read_state(&mut conn, &alice, "@alice+bob").unwrap().unwrap();
        assert_eq!((state.last_read, state.unread), (3, 1), "bob's last message is unread");
    }
}
