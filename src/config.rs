//! Server configuration: command-line flags, each also read from an
//! environment variable (the flag wins). The table is the contract's
//! "Command line" section; `--workers` is an addition.

use std::time::Duration;

use clap::{Args, FromArgMatches};

/// How the server runs. Build one with [`Config::with_database`] in code,
/// or parse it from the command line (`walkie --help`).
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on; port 0 picks any free port.
    #[arg(long, env = "WALKIE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// Where rooms and history are stored.
    #[command(flatten)]
    pub database: Database,

    /// Period of the WebSocket pings the server sends, in milliseconds.
    #[arg(long, env = "WALKIE_PING_INTERVAL_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub ping_interval_ms: u64,

    /// Silence (no pong, no frame) after which a connection is closed, in ms.
    #[arg(long, env = "WALKIE_CLIENT_TIMEOUT_MS", default_value_t = 10000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub client_timeout_ms: u64,

    /// Largest accepted message (after reassembling fragments), in bytes;
    /// a larger one closes the connection with code 1009.
    #[arg(long, env = "WALKIE_MAX_FRAME_BYTES", default_value_t = 65536,
          value_parser = clap::value_parser!(u64).range(64..=(u32::MAX as u64)))]
    pub max_frame_bytes: u64,

    /// Longest message text, in Unicode scalar values.
    #[arg(long, env = "WALKIE_MAX_TEXT_CHARS", default_value_t = 4000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_text_chars: u64,

    /// Frames per second a session may send before getting `rate_limited`.
    #[arg(long, env = "WALKIE_RATE", default_value_t = 20.0)]
    pub rate: f64,

    /// Frames a session may send at once, beyond its rate.
    #[arg(long, env = "WALKIE_BURST", default_value_t = 40,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub burst: u32,

    /// HS256 secret; when set, every connection needs a token (JWT) whose
    /// `sub` is the user's name, and HTTP posts need `Authorization: Bearer`.
    #[arg(long, env = "WALKIE_AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<Secret>,

    /// Origins allowed to open WebSockets besides the server's own host
    /// (e.g. `https://chat.example.com`); repeatable.
    #[arg(long = "allowed-origin", env = "WALKIE_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Open WebSockets beyond which upgrades get 503.
    #[arg(long, env = "WALKIE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Rooms one session may be in at once (an addition to the contract).
    #[arg(long, env = "WALKIE_MAX_ROOMS_PER_SESSION", default_value_t = 100)]
    pub max_rooms_per_session: usize,

    /// Bytes waiting for a client that does not read: a session whose
    /// backlog (frames queued, and those handed to its socket until it took
    /// them) stays over this for 2 s, or would pass 4 times it, is closed
    /// with 1008 (an addition to the contract).
    #[arg(long, env = "WALKIE_MAX_OUTBOUND_BYTES", default_value_t = 4 << 20)]
    pub max_outbound_bytes: usize,

    /// HTTP worker threads (an addition to the contract); default: one per core.
    #[arg(long, env = "WALKIE_WORKERS")]
    pub workers: Option<usize>,

    /// Cluster mode: nodes sharing rooms through Redis (an addition to the contract).
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `--redis-url` and `--node-id`: several nodes behind a load balancer,
/// sharing a Postgres database (docs/scale-out.md).
#[derive(Clone, Args)]
pub struct ClusterArgs {
    /// Redis for fan-out and presence between nodes (`redis://host:port`);
    /// turns cluster mode on, and needs a Postgres --database-url.
    #[arg(long, env = "WALKIE_REDIS_URL")]
    pub redis_url: Option<String>,

    /// This node's name in the cluster, unique among the nodes; default:
    /// the host's name and the process id.
    #[arg(long, env = "WALKIE_NODE_ID")]
    pub node_id: Option<String>,
}

/// Shown with the Redis password hidden: the configuration is logged at start.
impl std::fmt::Debug for ClusterArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterArgs")
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("node_id", &self.node_id)
            .finish()
    }
}

/// The defaults of the command line, read from its declaration above (so
/// they are written once), ignoring environment variables.
impl Default for Config {
    fn default() -> Self {
        let command =
            Self::augment_args(clap::Command::new("walkie")).mut_args(|arg| arg.env(None));
        // ok: no argument is given and every flag has a default or is
        // optional, so neither step can fail; a unit test runs them.
        let matches = command.try_get_matches_from(["walkie"]).expect("no arguments parse");
        Self::from_arg_matches(&matches).expect("the command line's defaults parse")
    }
}

impl Config {
    /// The defaults, storing into `database_url`.
    pub fn with_database(database_url: impl Into<String>) -> Self {
        Self { database: Database { url: database_url.into() }, ..Self::default() }
    }

    /// The session-level limits derived from this configuration.
    pub fn limits(&self) -> Limits {
        Limits {
            ping_interval: Duration::from_millis(self.ping_interval_ms),
            client_timeout: Duration::from_millis(self.client_timeout_ms),
            max_frame_bytes: usize::try_from(self.max_frame_bytes).unwrap_or(usize::MAX),
            max_text_chars: usize::try_from(self.max_text_chars).unwrap_or(usize::MAX),
            rate: self.rate.max(0.0),
            burst: self.burst,
            max_rooms: self.max_rooms_per_session,
            max_outbound_bytes: self.max_outbound_bytes,
        }
    }
}

/// `--database-url`, shared by the server and the commands that read its
/// database (`walkie rooms`, `walkie history`).
#[derive(Clone, Args)]
pub struct Database {
    /// Where rooms and history live: a SQLite file (created at start), or
    /// a Postgres database (`postgres://user:password@host:port/db`,
    /// several walkie nodes may share it). Migrated at start.
    #[arg(
        id = "database_url",
        long = "database-url",
        env = "DATABASE_URL",
        default_value = "walkie.db"
    )]
    pub url: String,
}

/// Shown with its password hidden: the configuration is logged at start.
impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("url", &redact_url(&self.url)).finish()
    }
}

/// `url` for logs and messages: the password of a `scheme://user:password@host`
/// URL, and a `password=` parameter, are replaced by `***`; anything else
/// (a file path) is left as it is.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (address, query) = match rest.split_once('?') {
        Some((address, query)) => (address, Some(query)),
        None => (rest, None),
    };
    let address = match address.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => address.to_owned(),
        },
        None => address.to_owned(),
    };
    let Some(query) = query else {
        return format!("{scheme}://{address}");
    };
    let query: Vec<&str> = query
        .split('&')
        .map(|pair| if pair.starts_with("password=") { "password=***" } else { pair })
        .collect();
    format!("{scheme}://{address}?{}", query.join("&"))
}

/// What every session enforces; shared by all sessions.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How often the server pings each socket (`--ping-interval-ms`).
    pub ping_interval: Duration,
    /// Silence after which a socket is closed (`--client-timeout-ms`).
    pub client_timeout: Duration,
    /// Largest reassembled WebSocket message; larger closes with 1009.
    pub max_frame_bytes: usize,
    /// Longest `text`, in Unicode scalar values; longer is a `bad_request`.
    pub max_text_chars: usize,
    /// Flood control: frames per second, and burst.
    pub rate: f64,
    /// Flood control: frames a session may send at once beyond its `rate`.
    pub burst: u32,
    /// Rooms a session may be in at once.
    pub max_rooms: usize,
    /// A session's backlog limit: over it for 2 s, or past 4 times it, and
    /// the session is closed (see `outbound::handle`).
    pub max_outbound_bytes: usize,
}

/// A secret that never shows in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value` (unlike parsing from the command line, accepts an empty one).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw bytes, for the HS256 keys only: never log them.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        if value.is_empty() {
            return Err("the auth secret must not be empty".into());
        }
        Ok(Self(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_command_lines() {
        let config = Config::default();
        assert_eq!(
            (config.bind.as_str(), config.database.url.as_str()),
            ("127.0.0.1:8080", "walkie.db")
        );
        assert_eq!((config.ping_interval_ms, config.max_outbound_bytes), (5000, 4 << 20));
        assert!(config.auth_secret.is_none() && config.allowed_origins.is_empty());
    }
}
