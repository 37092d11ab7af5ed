//! The `walkie` binary: parses the command line, starts the server, and
//! shuts it down gracefully on SIGINT or SIGTERM.

use clap::Parser;
use walkie::{Application, Config};

/// walkie: a real-time chat server (WebSocket rooms with durable history).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    config: Config,
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
