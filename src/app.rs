//! [`Application`]: walkie as a standalone server, the same for `main` and
//! for the tests (which bind port 0 and read the port back).

use std::future::Future;
use std::net::SocketAddr;

use actix_web::dev::Server;
use actix_web::{middleware::Logger, App, HttpServer};

use crate::config::Config;
use crate::walkie::{StartError, Walkie};

/// How long graceful shutdown waits for connections to finish.
const SHUTDOWN_TIMEOUT_SECS: u64 = 5;

/// Makes the kernel abort a connection whose sent data stays unacknowledged
/// for `timeout`: a client that stops reading (zero window) would otherwise
/// hold its socket, and its `--max-connections` slot, forever, since actix
/// stops running a session whose socket takes no data.
fn abort_stalled_sockets(connection: &dyn std::any::Any, timeout: std::time::Duration) {
    if let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
        if let Err(error) = socket2::SockRef::from(stream).set_tcp_user_timeout(Some(timeout)) {
            log::warn!("cannot set TCP_USER_TIMEOUT on a connection: {error}");
        }
    }
}

/// A bound, not yet running, server.
pub struct Application {
    server: Server,
    address: SocketAddr,
    walkie: Walkie,
}

impl Application {
    /// Starts the actors and binds `config.bind`. Call inside an actix
    /// system.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        log::info!("starting walkie {} with {config:?}", env!("CARGO_PKG_VERSION"));
        let walkie = Walkie::start(&config)?;
        let user_timeout = config.limits().client_timeout * 3;
        let routes = walkie.clone();
        let mut server = HttpServer::new(move || {
            // The path only: query strings may carry tokens.
            App::new().wrap(Logger::new("%a %U %s %Dms")).configure(routes.routes())
        })
        .on_connect(move |connection, _| abort_stalled_sockets(connection, user_timeout))
        // Frames are small and must leave at once: with Nagle's algorithm a
        // frame waits for the client's delayed ACK (docs/performance.md, item 4).
        .tcp_nodelay(true)
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS);
        if let Some(workers) = config.workers {
            server = server.workers(workers.max(1));
        }
        let bind_error = |source| StartError::Bind { address: config.bind.clone(), source };
        let server = server.bind(&config.bind).map_err(bind_error)?;
        let address = *server.addrs().first().ok_or_else(|| {
            bind_error(std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no address"))
        })?;
        let server = server.run();
        log::info!("listening on http://{address}");
        Ok(Self { server, address, walkie })
    }

    /// The address actually listened on (port 0 resolved).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The running actors, e.g. to [`Walkie::post`] from outside a socket.
    pub fn walkie(&self) -> &Walkie {
        &self.walkie
    }

    /// Serves until `stop` completes, then shuts down gracefully: stop
    /// accepting, store and acknowledge every message already received,
    /// close the sockets with 1001, and return.
    pub async fn run_until_stopped(self, stop: impl Future<Output = ()>) -> std::io::Result<()> {
        let Self { server, walkie, .. } = self;
        let handle = server.handle();
        // The server future runs the accept loop and handles `handle`'s
        // commands, so it must keep running while we shut down.
        let mut server = actix_web::rt::spawn(server);
        tokio::select! {
            result = &mut server => return result.map_err(std::io::Error::other)?,
            () = stop => {}
        }
        log::info!("shutting down: no new connections; storing what was received");
        handle.pause().await;
        walkie.shutdown().await;
        handle.stop(true).await;
        server.await.map_err(std::io::Error::other)??;
        log::info!("stopped");
        Ok(())
    }
}
