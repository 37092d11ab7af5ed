//! `walkie-bench`: a load generator for walkie, or for any server speaking
//! its wire protocol v1 (`docs/protocol.md`), so the same run can measure a
//! reference server beside walkie.
//!
//! Everything runs on one thread: pin it to its own core (`taskset -c 1`)
//! and the server to another, or the two fight for the CPU and the figures
//! measure the fight. See `docs/performance.md` for the workloads' meaning
//! and the numbers measured with it.

mod conn;
mod procs;
mod report;
mod stats;
mod workloads;

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Command line: the target and what to measure.
#[derive(Debug, Parser)]
#[command(name = "walkie-bench", version, about)]
struct Cli {
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    workload: Workload,
}

/// Where the server is and how to log in; shared by every workload.
#[derive(Debug, Args, Clone)]
pub struct Target {
    /// Server address (`host:port`); the upgrade goes to `ws://ADDR/ws`.
    /// TLS is not spoken: measure the server itself, not its proxy. Several
    /// (comma separated) spread the connections over the nodes of a
    /// cluster: connection i goes to the (i mod n)-th, and deliveries from
    /// a sender on another node are also reported apart (`cross_*`).
    #[arg(long, global = true, value_delimiter = ',', default_value = "127.0.0.1:8080")]
    pub addr: Vec<String>,
    /// The server's auth secret, when it runs with one: every connection
    /// gets an HS256 token for its own name.
    #[arg(long, global = true, env = "WALKIE_AUTH_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Process ids (comma separated) of the server when it runs on this
    /// machine: their CPU and RSS are reported.
    #[arg(long, global = true, value_delimiter = ',')]
    pub pid: Vec<u32>,
    /// Bind client sockets to 127.0.0.1 .. 127.0.0.N (loopback targets only)
    /// so that many connections do not run out of ephemeral ports.
    #[arg(long, global = true, default_value_t = 1)]
    pub sources: u8,
    /// Connections opened at once while setting up.
    #[arg(long, global = true, default_value_t = 64)]
    pub concurrency: usize,
    /// Prefix of user and room names, so that runs do not mix.
    #[arg(long, global = true, default_value = "b")]
    pub prefix: String,
}

/// How a rate sweep runs and when a step passes.
#[derive(Debug, Args, Clone)]
pub struct Sweep {
    /// Explicit rates to run, instead of a doubling sweep.
    #[arg(long, value_delimiter = ',')]
    pub rates: Vec<f64>,
    /// First rate of the doubling sweep.
    #[arg(long)]
    pub start_rate: Option<f64>,
    /// Seconds each step sends for.
    #[arg(long, default_value_t = 5.0)]
    pub step_secs: f64,
    /// Seconds to wait for late deliveries after a step.
    #[arg(long, default_value_t = 2.0)]
    pub drain_secs: f64,
    /// A step fails when the 99th percentile latency exceeds this.
    #[arg(long, default_value_t = 100.0)]
    pub p99_ms: f64,
    /// A step fails when more than this fraction of deliveries is missing.
    #[arg(long, default_value_t = 0.001)]
    pub max_loss: f64,
    /// Bytes of each message's text.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
}

/// The workloads.
#[derive(Debug, Subcommand)]
enum Workload {
    /// One room, `members` connections, `senders` of them sending;
    /// rate = messages/s of all senders together.
    Fanout {
        /// Connections in the room.
        #[arg(long, default_value_t = 1000)]
        members: usize,
        /// How many of them send.
        #[arg(long, default_value_t = 4)]
        senders: usize,
        #[command(flatten)]
        sweep: Sweep,
    },
    /// `rooms` rooms of `members`, every member sending; rate = messages/s
    /// per member.
    Rooms {
        /// Number of rooms.
        #[arg(long, default_value_t = 500)]
        rooms: usize,
        /// Connections per room, all sending.
        #[arg(long, default_value_t = 10)]
        members: usize,
        #[command(flatten)]
        sweep: Sweep,
    },
    /// One room, `senders` members each keeping `window` messages waiting for
    /// their acknowledgement: stored (acknowledged) messages/s.
    Store {
        /// Connections in the room, all sending.
        #[arg(long, default_value_t = 8)]
        senders: usize,
        /// Messages each keeps waiting for acknowledgement.
        #[arg(long, default_value_t = 64)]
        window: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 10.0)]
        secs: f64,
        /// Bytes of each message's text.
        #[arg(long, default_value_t = 100)]
        size: usize,
    },
    /// Hold `conns` connections joined to rooms of `room_size`; report the
    /// server's RSS per connection.
    Idle {
        /// Connections to hold.
        #[arg(long, default_value_t = 10_000)]
        conns: usize,
        /// Connections per room.
        #[arg(long, default_value_t = 10)]
        room_size: usize,
        /// Seconds to hold them before measuring (a ping round included).
        #[arg(long, default_value_t = 6.0)]
        hold_secs: f64,
    },
    /// A node's death: hold `conns` joined connections on the first
    /// address, kill the process `--victim` (kill -9), and time until every
    /// one is back on the other addresses, joined with `since` (caught up).
    Failover {
        /// Connections on the node that dies.
        #[arg(long, default_value_t = 5000)]
        conns: usize,
        /// Connections per room.
        #[arg(long, default_value_t = 10)]
        room_size: usize,
        /// The pid of the node at the first address.
        #[arg(long)]
        victim: u32,
    },
    /// Handshakes/s: open, wait for `welcome`, close.
    Connect {
        /// Handshakes in all (`--concurrency` at a time).
        #[arg(long, default_value_t = 5000)]
        conns: usize,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("walkie-bench: cannot start the runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    let target = cli.target;
    let result = local.block_on(&runtime, async move {
        match cli.workload {
            Workload::Fanout { members, senders, sweep } => {
                workloads::fanout(&target, &sweep, members, senders).await
            }
            Workload::Rooms { rooms, members, sweep } => {
                workloads::rooms(&target, &sweep, rooms, members).await
            }
            Workload::Store { senders, window, secs, size } => {
                workloads::store(&target, senders, window, Duration::from_secs_f64(secs), size)
                    .await
            }
            Workload::Idle { conns, room_size, hold_secs } => {
                workloads::idle(&target, conns, room_size, Duration::from_secs_f64(hold_secs)).await
            }
            Workload::Connect { conns } => workloads::connect(&target, conns).await,
            Workload::Failover { conns, room_size, victim } => {
                workloads::failover(&target, conns, room_size, victim).await
            }
        }
    });
    match result {
        Ok(summary) => {
            report::json_line(&summary);
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("walkie-bench: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
