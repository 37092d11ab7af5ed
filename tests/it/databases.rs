//! The store a test runs on. The whole suite runs once per store:
//! SQLite by default, Postgres with `WALKIE_TEST_STORE=postgres` and
//! `WALKIE_PG_URL` set to a cluster every test may create databases in
//! (scripts/test starts one with scripts/postgres and runs the suite
//! again). Each test gets a database of its own.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use tempfile::TempDir;

/// True when the suite runs on Postgres.
pub fn on_postgres() -> bool {
    match std::env::var("WALKIE_TEST_STORE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("WALKIE_TEST_STORE={other}: use sqlite or postgres"),
    }
}

/// A test's database, kept across restarts of its server: its
/// `--database-url`, and the temp dir a SQLite file lives in (deleted with
/// the `TestDb`).
pub struct TestDb {
    pub url: String,
    _dir: Option<TempDir>,
}

impl TestDb {
    /// A fresh, empty database on the suite's store.
    pub fn new() -> Arc<Self> {
        if on_postgres() {
            let cluster = std::env::var("WALKIE_PG_URL")
                .expect("WALKIE_PG_URL: start a cluster with `eval \"$(scripts/postgres start)\"`");
            return Self::on_cluster(&cluster);
        }
        let dir = TempDir::new().expect("a temp dir");
        let url = dir.path().join("walkie.db").to_string_lossy().into_owned();
        Arc::new(Self { url, _dir: Some(dir) })
    }

    /// A fresh database in the Postgres cluster at `cluster`.
    pub fn on_cluster(cluster: &str) -> Arc<Self> {
        Arc::new(Self { url: fresh_database(cluster), _dir: None })
    }
}

/// Creates a database of its own in the cluster at `cluster` (a URL to
/// any of its databases) and returns its URL.
pub fn fresh_database(cluster: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!("test_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let mut admin = PgConnection::establish(cluster).expect("the test cluster accepts connections");
    admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("a fresh database");
    let (server, _) = cluster.rsplit_once('/').expect("a URL ending in /DATABASE");
    format!("{server}/{name}")
}

/// A server of one test's own, from `scripts/postgres` or `scripts/redis`,
/// to kill and start again; deleted when dropped.
pub struct Throwaway {
    script: &'static str,
    dir: String,
    pub url: String,
}

/// A Postgres cluster (`scripts/postgres`).
pub type Cluster = Throwaway;

/// A `redis-server` (`scripts/redis`; no persistence: a restart loses
/// everything, as a failover to an empty replica would).
pub type Redis = Throwaway;

impl Throwaway {
    /// A fresh Postgres cluster.
    pub fn postgres() -> Self {
        Self::start("postgres", "WALKIE_PG")
    }

    /// A fresh Redis.
    pub fn redis() -> Self {
        Self::start("redis", "WALKIE_REDIS")
    }

    /// Runs `scripts/NAME start` and reads `PREFIX_DIR` and `PREFIX_URL`
    /// from the `export` line it prints.
    fn start(name: &'static str, prefix: &str) -> Self {
        let line = String::from_utf8(script(name, &["start"])).expect("UTF-8");
        let value = |key: String| {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(&key))
                .unwrap_or_else(|| panic!("scripts/{name} prints {key}"))
                .to_owned()
        };
        let (dir, url) = (value(format!("{prefix}_DIR=")), value(format!("{prefix}_URL=")));
        Self { script: name, dir, url }
    }

    /// Kills the server at once, as a crash would (Postgres: `pg_ctl -m
    /// immediate`; Redis: SIGKILL).
    pub fn halt(&self) {
        script(self.script, &["halt", &self.dir]);
    }

    /// Starts it again on the same port (Postgres: with its data; Redis: empty).
    pub fn resume(&self) {
        script(self.script, &["resume", &self.dir]);
    }

    /// Runs a command with `redis-cli` against this Redis and returns what it printed.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = std::process::Command::new("redis-cli")
            .args(["-u", &self.url])
            .args(args)
            .output()
            .expect("redis-cli runs");
        assert!(output.status.success(), "redis-cli {args:?} failed");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(self.script);
        let _ = std::process::Command::new(path).args(["stop", &self.dir]).status();
    }
}

fn script(name: &str, args: &[&str]) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name);
    let output = std::process::Command::new(path)
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|error| panic!("scripts/{name} runs: {error}"));
    assert!(output.status.success(), "scripts/{name} {args:?} failed");
    output.stdout
}
