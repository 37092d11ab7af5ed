//! walkie inside your own actix-web app: your routes at the root, walkie's
//! chat (web client, WebSocket, HTTP API) under `/chat`, and a handler of
//! yours that posts to a room — the equivalent of Django Channels'
//! `channel_layer.group_send`.
//!
//! ```sh
//! cargo run --example embed            # then open http://127.0.0.1:8090/chat/
//! curl -X POST -d 'deploy finished' http://127.0.0.1:8090/announce
//! ```
//!
//! `EMBED_BIND` and `EMBED_DATABASE` override the address and the file.

use actix_web::dev::Server;
use actix_web::{web, App, HttpResponse, HttpServer};
use walkie::{Config, Walkie};

/// Your own route: posts its body to the `announcements` room, where every
/// member sees it live.
async fn announce(walkie: web::Data<Walkie>, body: String) -> HttpResponse {
    match walkie.post("announcements", "webapp", &body).await {
        Ok(message) => HttpResponse::Created().json(message),
        Err(error) => HttpResponse::build(error.http_status()).body(error.to_string()),
    }
}

async fn home() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html").body(r#"<a href="/chat/">chat</a>"#)
}

/// Your app: its own routes, and walkie's under `/chat`.
fn app(walkie: &Walkie) -> impl FnOnce(&mut web::ServiceConfig) {
    let walkie = walkie.clone();
    move |config| {
        config
            .app_data(web::Data::new(walkie.clone()))
            .route("/", web::get().to(home))
            .route("/announce", web::post().to(announce))
            .service(web::scope("/chat").configure(walkie.routes()));
    }
}

/// Starts walkie's actors and your server on `bind`.
fn serve(bind: &str, database: &str) -> std::io::Result<(Walkie, Server, std::net::SocketAddr)> {
    let walkie = Walkie::start(&Config::with_database(database)).map_err(std::io::Error::other)?;
    let routes = walkie.clone();
    let server = HttpServer::new(move || App::new().configure(app(&routes)))
        .workers(1)
        .shutdown_timeout(5)
        .bind(bind)?;
    let address = server.addrs()[0];
    Ok((walkie, server.run(), address))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let bind = std::env::var("EMBED_BIND").unwrap_or_else(|_| "127.0.0.1:8090".into());
    let database = std::env::var("EMBED_DATABASE").unwrap_or_else(|_| "embed.db".into());
    let (walkie, server, address) = serve(&bind, &database)?;
    log::info!("listening on http://{address}");
    server.await?;
    // Store and acknowledge whatever the sessions handed on before exit.
    walkie.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    use super::*;

    /// Runs the example app on a free port in its own thread.
    fn spawn_app(database: String) -> std::net::SocketAddr {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let (_walkie, server, address) = serve("127.0.0.1:0", &database).unwrap();
                tx.send(address).unwrap();
                server.await
            })
        });
        rx.recv().unwrap()
    }

    async fn next_json(
        socket: &mut tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    ) -> serde_json::Value {
        loop {
            let message = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            if let Message::Text(text) = message {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    #[tokio::test]
    async fn your_handler_posts_to_a_room_walkie_serves_under_chat() {
        let dir = tempfile::TempDir::new().unwrap();
        let address = spawn_app(dir.path().join("embed.db").to_string_lossy().into_owned());
        let url = move |path: &str| format!("http://{address}{path}");

        let (mut socket, _) =
            tokio_tungstenite::connect_async(format!("ws://{address}/chat/ws?name=alice"))
                .await
                .unwrap();
        assert_eq!(next_json(&mut socket).await["type"], "welcome");
        socket.send(Message::text(r#"{"type":"join","room":"announcements"}"#)).await.unwrap();
        assert_eq!(next_json(&mut socket).await["type"], "joined");

        let (home, page, posted) = tokio::task::spawn_blocking(move || {
            let home = ureq::get(&url("/")).call().unwrap().into_string().unwrap();
            let page = ureq::get(&url("/chat/")).call().unwrap().into_string().unwrap();
            let posted = ureq::post(&url("/announce")).send_string("deploy finished").unwrap();
            (home, page, (posted.status(), posted.into_string().unwrap()))
        })
        .await
        .unwrap();
        assert!(home.contains("/chat/"));
        assert!(page.contains("data-testid=\"composer\""));
        assert_eq!(posted.0, 201);

        let live = next_json(&mut socket).await;
        assert_eq!(
            (live["from"].as_str(), live["text"].as_str()),
            (Some("webapp"), Some("deploy finished"))
        );
        assert_eq!(serde_json::from_str::<serde_json::Value>(&posted.1).unwrap(), live);
    }
}
