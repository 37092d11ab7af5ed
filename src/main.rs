//! The `walkie` binary: parses the command line, starts the server, and
//! shuts it down gracefully on SIGINT or SIGTERM.

use std::time::Duration;

use clap::{Parser, Subcommand};
use walkie::access::Tokens;
use walkie::config::{Database, Secret};
use walkie::domain::UserName;
use walkie::{Application, Config};

/// jemalloc: the delivery path allocates and frees small buffers across
/// threads, which it does with less CPU than the system allocator
/// (docs/performance.md, item 6). Embedding apps choose their own.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// walkie: a real-time chat server (WebSocket rooms with durable history).
///
/// Without a subcommand, runs the server.
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Config,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Lists the stored rooms with their message counts.
    Rooms {
        #[command(flatten)]
        database: Database,
    },
    /// Prints a room's stored messages (or a direct conversation's, `@a+b`).
    History {
        /// The room.
        room: String,
        /// How many of the latest messages (1 to 200).
        #[arg(long, default_value_t = 50)]
        limit: u64,
        /// Only messages before this id, to page back.
        #[arg(long)]
        before: Option<u64>,
        #[command(flatten)]
        database: Database,
    },
    /// Prints a token (JWT) for a user, for servers run with --auth-secret.
    Token {
        /// The user's name (the token's `sub`).
        #[arg(long)]
        sub: String,
        /// How long the token is valid: 30m, 1h, 7days...
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// The server's secret.
        #[arg(long, env = "WALKIE_AUTH_SECRET", hide_env_values = true)]
        auth_secret: Secret,
    },
}

/// Prints a subcommand's output (a table, a token) on stdout, or logs why
/// there is none and fails.
#[allow(clippy::print_stdout)]
fn print_output(output: Result<String, String>) -> std::process::ExitCode {
    match output {
        Ok(text) => {
            print!("{text}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            log::error!("{error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `walkie token`: a token for `sub`, valid for `ttl`.
fn make_token(sub: &str, ttl: Duration, secret: &Secret) -> Result<String, String> {
    let name = UserName::parse(sub).map_err(|error| format!("cannot make a token: {error}"))?;
    let token = Tokens::new(secret).mint(&name, ttl).map_err(|error| error.to_string())?;
    Ok(format!("{token}\n"))
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                log::warn!("cannot listen for SIGTERM ({error}); stop the server with Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => log::info!("received SIGINT"),
        () = terminate => log::info!("received SIGTERM"),
    }
}

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match &cli.command {
        Some(Command::Token { sub, ttl, auth_secret }) => {
            return print_output(make_token(sub, *ttl, auth_secret))
        }
        Some(Command::Rooms { database }) => {
            return print_output(walkie::admin::rooms(&database.url).map_err(|e| e.to_string()));
        }
        Some(Command::History { room, limit, before, database }) => {
            let table = walkie::admin::history(&database.url, room, *limit, *before).await;
            return print_output(table.map_err(|e| e.to_string()));
        }
        None => {}
    }
    let application = match Application::build(cli.config).await {
        Ok(application) => application,
        Err(error) => {
            log::error!("walkie could not start: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match application.run_until_stopped(shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            log::error!("walkie stopped with an error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
