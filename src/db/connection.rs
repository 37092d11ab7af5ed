//! One connection type for both stores, and everything that differs
//! between them: which backend a URL names, how a connection is made and
//! set up, the migrations, how a write transaction begins, the row-lock
//! clause ([`row_lock`]), which errors are worth another try.
//!
//! The queries are written once, against [`AnyConnection`]; diesel turns
//! them into each backend's SQL (`?` or `$1` placeholders and so on).
//! Statements diesel's multi-backend query builder cannot express (upserts,
//! multi-row statements) are in [`super::sql`], in SQL both backends read
//! the same.

use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// The migrations of `migrations/sqlite/`, compiled into the binary.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// The migrations of `migrations/postgres/`, compiled into the binary.
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

pub use any::AnyConnection;

/// The derive writes undocumented items of its own next to the enum.
#[allow(missing_docs)]
mod any {
    use diesel::pg::PgConnection;
    use diesel::sqlite::SqliteConnection;

    /// A connection to either store.
    #[derive(diesel::MultiConnection)]
    pub enum AnyConnection {
        /// A Postgres database, shared by every node that names it.
        Postgres(PgConnection),
        /// A SQLite file, walkie's embedded default.
        Sqlite(SqliteConnection),
    }
}

/// The backend of [`AnyConnection`], for hand-written query fragments.
pub type AnyBackend = <AnyConnection as Connection>::Backend;

/// Which store a `--database-url` names: the scheme decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `postgres://` or `postgresql://`.
    Postgres,
    /// Anything else: a file path.
    Sqlite,
}

impl Backend {
    /// The store `url` names.
    pub fn of(url: &str) -> Self {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    /// The name operators know it by, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "Postgres",
            Backend::Sqlite => "SQLite",
        }
    }

    /// What to check when no connection can be made.
    pub fn hint(self) -> &'static str {
        match self {
            Backend::Postgres => {
                "check the URL, that the Postgres server is up, and that it accepts this \
                 user, password and database"
            }
            Backend::Sqlite => "check the path, and that its directory exists and is writable",
        }
    }
}

/// How long a SQLite connection waits for another's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// WAL pages between automatic checkpoints; see [`Connector::set_up`].
const CHECKPOINT_PAGES: u32 = 10_000;

/// Makes the pool's connections: the backend the URL names, set up by
/// `Connector::set_up`. Each is made for its backend (never "try one,
/// then the other"), so a Postgres URL with a wrong password fails as
/// such instead of becoming a SQLite file of that name.
#[derive(Debug, Clone)]
pub struct Connector {
    url: String,
    backend: Backend,
}

impl Connector {
    /// Connections to `url`; a Postgres URL gets [`POSTGRES_DEFAULTS`].
    pub fn new(url: &str) -> Self {
        let backend = Backend::of(url);
        let url = match backend {
            Backend::Postgres => with_defaults(url),
            Backend::Sqlite => url.to_owned(),
        };
        Self { url, backend }
    }

    /// Which store the connections go to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Opens one connection, set up.
    pub fn connect(&self) -> Result<AnyConnection, r2d2::Error> {
        let mut conn = match self.backend {
            Backend::Postgres => AnyConnection::Postgres(PgConnection::establish(&self.url)?),
            Backend::Sqlite => AnyConnection::Sqlite(SqliteConnection::establish(&self.url)?),
        };
        Self::set_up(&mut conn).map_err(r2d2::Error::QueryError)?;
        Ok(conn)
    }

    /// Per-connection settings.
    ///
    /// Postgres: `synchronous_commit = on`, whatever the server's default,
    /// so a commit (and so an acknowledgement) waits for the WAL on disk.
    ///
    /// SQLite:
    /// - `busy_timeout`: wait for a lock rather than fail at once.
    /// - WAL: readers never block the writer, nor the writer readers.
    /// - `synchronous = FULL`: every commit is on disk before it returns, so
    ///   an acknowledged message survives a crash of the machine, not only
    ///   of the process.
    /// - `foreign_keys`: SQLite leaves them off unless asked.
    /// - `wal_autocheckpoint`: every [`CHECKPOINT_PAGES`] pages rather than
    ///   SQLite's 1,000, so one checkpoint folds many commits to the same
    ///   busy pages into one write (docs/performance.md, item 10). The cost
    ///   is a WAL file of ~40 MB, reused rather than regrown.
    fn set_up(conn: &mut AnyConnection) -> diesel::QueryResult<()> {
        let settings = match conn {
            AnyConnection::Postgres(_) => "SET synchronous_commit = on".to_owned(),
            AnyConnection::Sqlite(_) => format!(
                "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
                 PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
                 PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES};",
                BUSY_TIMEOUT.as_millis()
            ),
        };
        conn.batch_execute(&settings)
    }
}

/// libpq parameters walkie adds to a Postgres URL that does not set them,
/// so that a database host that stops answering fails requests (`internal`)
/// within seconds instead of holding the writer until TCP gives up:
/// connecting waits at most 5 s, and data sent but unacknowledged for 10 s
/// drops the connection (the pool then makes a new one).
pub const POSTGRES_DEFAULTS: [(&str, &str); 2] =
    [("connect_timeout", "5"), ("tcp_user_timeout", "10000")];

fn with_defaults(url: &str) -> String {
    let mut url = url.to_owned();
    for (key, value) in POSTGRES_DEFAULTS {
        if !url.contains(&format!("{key}=")) {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&format!("{key}={value}"));
        }
    }
    url
}

impl ManageConnection for Connector {
    type Connection = AnyConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, r2d2::Error> {
        Connector::connect(self)
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    /// A connection diesel found broken (a transaction it could not end)
    /// is dropped when handed back. One that lost its server (Postgres
    /// restarted) fails the ping r2d2 runs at each check-out
    /// ([`ManageConnection::is_valid`]) and is replaced then.
    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

/// What ends a `SELECT` that locks the rows it reads until the transaction
/// ends: `FOR NO KEY UPDATE` on Postgres (the lock an `UPDATE` of a
/// non-key column takes, so foreign-key checks are not blocked); nothing
/// on SQLite, whose write transaction (`BEGIN IMMEDIATE`) already holds
/// the whole database.
pub fn row_lock(conn: &AnyConnection) -> &'static str {
    match conn {
        AnyConnection::Postgres(_) => " FOR NO KEY UPDATE",
        AnyConnection::Sqlite(_) => "",
    }
}

/// A Postgres advisory lock's key, held while migrating: nodes starting
/// together on a new database take turns, so only the first creates the
/// tables. (Any number; this one spells "walkie".)
const MIGRATION_LOCK: i64 = 0x7761_6c6b_6965;

/// Runs the migrations `conn`'s backend has not run yet.
pub fn migrate(conn: &mut AnyConnection) -> Result<(), String> {
    let ran = match conn {
        AnyConnection::Postgres(conn) => {
            let lock = format!("SELECT pg_advisory_lock({MIGRATION_LOCK})");
            conn.batch_execute(&lock).map_err(|error| error.to_string())?;
            let ran = conn.run_pending_migrations(POSTGRES_MIGRATIONS).map(drop);
            let unlock = format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})");
            conn.batch_execute(&unlock).map_err(|error| error.to_string())?;
            ran
        }
        AnyConnection::Sqlite(conn) => conn.run_pending_migrations(SQLITE_MIGRATIONS).map(drop),
    };
    ran.map_err(|error| error.to_string())
}

/// Runs `body` in a transaction that writes, committed if it returns `Ok`
/// and rolled back otherwise (as diesel's `Connection::transaction`).
///
/// On SQLite it begins `IMMEDIATE`: it takes the write lock at once, so a
/// transaction that reads before it writes never finds, at its first
/// write, that another connection wrote since its read (`SQLITE_BUSY`).
/// On Postgres it is a plain `BEGIN` (read committed): the row locks the
/// writes take are what order concurrent writers (see `queries::commit`).
pub fn write_transaction<T, E>(
    conn: &mut AnyConnection,
    body: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    match conn {
        AnyConnection::Postgres(conn) => AnsiTransactionManager::begin_transaction(conn)?,
        AnyConnection::Sqlite(conn) => {
            AnsiTransactionManager::begin_transaction_sql(conn, "BEGIN IMMEDIATE")?
        }
    }
    match body(conn) {
        Ok(value) => {
            <AnyConnection as TransactionManager<AnyConnection>>::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            match <AnyConnection as TransactionManager<AnyConnection>>::rollback_transaction(conn) {
                Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(error),
                Err(rollback) => {
                    log::error!("a failed transaction could not be rolled back either: {rollback}");
                    Err(rollback.into())
                }
            }
        }
    }
}

/// Whether `error` rolled a transaction back only because another
/// transaction won a race: Postgres broke a deadlock (two nodes' batches
/// waiting on each other's rows, e.g. one user's idempotency keys sent
/// through two nodes in opposite orders) or a serialization failure. The
/// transaction left nothing behind, so running it again is safe.
///
/// diesel names serialization failures but not deadlocks, whose message
/// is matched instead; a server whose messages are translated
/// (`lc_messages`) gets no retry, and the batch is answered `internal`.
pub fn lost_a_race(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        Error::DatabaseError(_, info) => info.message().starts_with("deadlock detected"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use diesel::result::{DatabaseErrorKind, Error};

    use super::*;

    #[test]
    fn postgres_urls_get_timeouts_unless_they_set_them() {
        let defaults = "connect_timeout=5&tcp_user_timeout=10000";
        assert_eq!(with_defaults("postgres://h/db"), format!("postgres://h/db?{defaults}"));
        assert_eq!(
            with_defaults("postgres://h/db?sslmode=require&connect_timeout=1"),
            "postgres://h/db?sslmode=require&connect_timeout=1&tcp_user_timeout=10000"
        );
        assert_eq!(Connector::new("walkie.db").url, "walkie.db");
    }

    #[test]
    fn only_lost_races_are_worth_another_try() {
        let error = |kind, message: &str| Error::DatabaseError(kind, Box::new(message.to_owned()));
        assert!(lost_a_race(&error(DatabaseErrorKind::Unknown, "deadlock detected")));
        assert!(lost_a_race(&error(DatabaseErrorKind::SerializationFailure, "could not")));
        assert!(!lost_a_race(&error(DatabaseErrorKind::UniqueViolation, "duplicate key")));
        assert!(!lost_a_race(&Error::NotFound));
    }
}
